"""The DuckDB warehouse: one database file per district.

DuckDB allows one writing process per file. Giving each district its own file means two districts never
contend, so district runs can go in parallel on one machine without lock errors. Runs of the *same*
district are serialised by an advisory file lock held for the whole connection (and, in the daemon, by
the ``dagster/partition/district`` run-queue limit in ``dagster.yaml``), so we never lean on
DuckDBResource's retry loop. Offboarding a district deletes its file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from dagster_duckdb import DuckDBResource
from pydantic import Field

from etl_project.files import PRIVATE_FILE_MODE, private_dir
from etl_project.partitions import validate_district_id

# No extension downloads, ever: the machine may have no internet, and nothing should try.
DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


class WarehouseResource(ConfigurableResource):
    """Per-district DuckDB files under ``root``."""

    root: str = Field(description="Folder holding one <district>.duckdb file per district")
    memory_limit: str = Field(default="1GB", description="DuckDB memory_limit; larger work spills to disk")
    threads: int = Field(default=0, description="DuckDB threads (0 = DuckDB's default)")

    def database_path(self, district: str) -> Path:
        return Path(self.root) / f"{validate_district_id(district)}.duckdb"

    def _config(self, district: str) -> dict[str, object]:
        spill = private_dir(Path(self.root) / ".tmp" / district)
        config: dict[str, object] = {
            **DUCKDB_CONFIG,
            "memory_limit": self.memory_limit,
            "temp_directory": str(spill),
            "preserve_insertion_order": True,
        }
        if self.threads:
            config["threads"] = self.threads
        return config

    @contextlib.contextmanager
    def connect(self, district: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the district's database, exclusive across processes."""
        path = self.database_path(district)
        private_dir(path.parent)
        with (
            _district_lock(path),
            DuckDBResource(
                database=str(path), connection_config=self._config(district)
            ).get_connection() as conn,
        ):
            yield conn

    def offboard(self, district: str) -> list[str]:
        """Remove everything the warehouse holds for a district; returns the files removed."""
        path = self.database_path(district)
        removed: list[str] = []
        if not path.parent.exists():
            return removed
        with _district_lock(path):
            for candidate in (path, path.with_suffix(".duckdb.wal")):
                if candidate.exists():
                    candidate.unlink()
                    removed.append(str(candidate))
        spill = Path(self.root) / ".tmp" / district
        if spill.exists():
            for child in sorted(spill.rglob("*"), reverse=True):
                child.unlink() if child.is_file() else child.rmdir()
            spill.rmdir()
        lock = path.with_suffix(".lock")
        if lock.exists():
            lock.unlink()
        return removed

    def districts(self) -> list[str]:
        root = Path(self.root)
        return sorted(p.stem for p in root.glob("*.duckdb")) if root.exists() else []


@contextlib.contextmanager
def _district_lock(db_path: Path) -> Iterator[None]:
    lock_path = db_path.with_suffix(".lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the other run of this district; never errors
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
