"""A night's OneRoster tables kept in the archive, and the local cache every reader reads them through.

The archive and the databases are the state; a worker's disk is scratch. After a night's tables are built
(in the district's DuckDB file, the builder's scratch), every table of that night is written as Parquet
beside the night's snapshot (and the DuckDB file then forgets the older nights the archive holds)::

    district=<id>/date=<night>/table.<table>.parquet   the 9 OneRoster tables, files and rejects
    district=<id>/date=<night>/_tables.json            manifest: size, sha256 and version of each file
    district=<id>/_tables_index.json                   night -> sha256 of that night's manifest

Any worker that needs nights (checks, LMS change set and load, reports, trace, the portal) calls
:func:`read_nights`: it reads the index (one small GET), brings the Parquet files it lacks or whose
manifest changed into ``<warehouse>/.nights/<district>/date=<night>/`` (each verified against its sha256),
and yields an in-memory DuckDB whose ``oneroster.<table>`` views read them. Readers so never take the
district's exclusive warehouse lock, and a fresh worker (or a deleted warehouse folder) sees the same nights.
Entity tables are brought only for the nights asked for; ``files`` and ``rejects`` (small) for every night,
because history, trace and the row-count checks look back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl_project.archive.base import Archive, ArchivedFile, ArchiveIntegrityError
from etl_project.files import private_dir
from etl_project.oneroster.load import TABLES, delete_nights
from etl_project.oneroster.normalize import SCHEMA, ensure_schema
from etl_project.oneroster.validate import lit
from etl_project.partitions import validate_district_id, validate_night
from etl_project.warehouse import DUCKDB_CONFIG, WarehouseResource

MANIFEST_NAME = "_tables.json"
INDEX_NAME = "_tables_index.json"
FORMAT = "etl_project.night_tables/1"
HISTORY_TABLES = ("files", "rejects")  # every night's: history, trace and checks look back
ALL_TABLES = (*TABLES, *HISTORY_TABLES)
CACHE_DIR = ".nights"


def parquet_name(table: str) -> str:
    return f"table.{table}.parquet"


@dataclass(frozen=True)
class NightTables:
    district: str
    date: str
    manifest_sha256: str
    files: dict[str, ArchivedFile]  # table -> archived Parquet file


def cache_root(warehouse: WarehouseResource) -> Path:
    return Path(warehouse.root) / CACHE_DIR


def _night_dir(warehouse: WarehouseResource, district: str, date: str) -> Path:
    return cache_root(warehouse) / validate_district_id(district) / f"date={validate_night(date)}"


def _manifest_bytes(district: str, date: str, files: dict[str, ArchivedFile], rows: dict[str, int]) -> bytes:
    doc = {
        "format": FORMAT,
        "district": district,
        "date": date,
        "tables": {t: {**f.to_manifest(), "rows": rows[t]} for t, f in sorted(files.items())},
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _parse_manifest(district: str, date: str, data: bytes) -> dict[str, ArchivedFile]:
    try:
        doc = json.loads(data)
        return {
            t: ArchivedFile(e["name"], e["size"], e["sha256"], e["uri"], e["version_id"])
            for t, e in doc["tables"].items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise ArchiveIntegrityError(f"{MANIFEST_NAME} of {district} {date} is unreadable: {exc}") from None


def read_index(archive: Archive, district: str) -> dict[str, str]:
    """Night -> sha256 of its tables manifest, for every night whose tables are archived."""
    data = archive.get_district_bytes(district, INDEX_NAME)
    return dict(json.loads(data)["nights"]) if data else {}


def _write_index(archive: Archive, district: str, nights: dict[str, str]) -> None:
    doc = {"format": FORMAT, "district": district, "nights": dict(sorted(nights.items()))}
    data = (json.dumps(doc, indent=2) + "\n").encode()
    archive.put_district_bytes(district, INDEX_NAME, data, "application/json")


def publish_night(
    conn: duckdb.DuckDBPyConnection, archive: Archive, warehouse: WarehouseResource, district: str, date: str
) -> NightTables:
    """Write the night's tables as Parquet (DuckDB COPY), archive them with their manifest and index them.

    The files land in this worker's cache first, so the same worker reads them without a download."""
    final = _night_dir(warehouse, district, date)
    staging = private_dir(final.parent / f".publish-{date}-{os.getpid()}")
    try:
        files, rows = {}, {}
        for table in ALL_TABLES:
            path = staging / parquet_name(table)
            conn.execute(
                f"COPY (SELECT * FROM {SCHEMA}.{table} WHERE _date = DATE {lit(date)}) "
                f"TO {lit(str(path))} (FORMAT parquet, COMPRESSION zstd)"
            )
            files[table] = archive.put_file(district, date, path.name, path)
            rows[table] = conn.execute(f"SELECT count(*) FROM read_parquet({lit(str(path))})").fetchone()[0]
        manifest = _manifest_bytes(district, date, files, rows)
        archive.put_bytes(district, date, MANIFEST_NAME, manifest, "application/json")
        (staging / MANIFEST_NAME).write_bytes(manifest)
        sha = hashlib.sha256(manifest).hexdigest()
        _write_index(archive, district, {**read_index(archive, district), date: sha})
        _swap_in(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return NightTables(district, date, sha, files)


def publish_unarchived(
    conn: duckdb.DuckDBPyConnection, archive: Archive, warehouse: WarehouseResource, district: str
) -> list[str]:
    """Publish the nights this DuckDB file holds that the archive has no tables for (nights built before
    tables were archived); returns them. A night archived by any worker is never overwritten from here."""
    indexed = read_index(archive, district)
    missing = [
        d
        for d in sorted(_held_nights(conn))
        if d not in indexed and archive.get_bytes(district, d, MANIFEST_NAME) is None
    ]
    for date in missing:
        publish_night(conn, archive, warehouse, district, date)
    return missing


def forget_archived_nights(
    conn: duckdb.DuckDBPyConnection, archive: Archive, district: str, keep: str
) -> list[str]:
    """Delete from the builder's DuckDB file every night but ``keep`` whose tables the archive indexes;
    returns them. Readers read nights from the archive, so the file needs only the night being built, and
    DuckDB reuses the freed blocks: the file stays one to two nights' size instead of growing every night."""
    gone = sorted((_held_nights(conn) & set(read_index(archive, district))) - {keep})
    if gone:
        delete_nights(conn, gone)
        conn.execute("CHECKPOINT")
    return gone


def _held_nights(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """The nights the builder's DuckDB file holds."""
    return {d.isoformat() for (d,) in conn.execute(f"SELECT DISTINCT _date FROM {SCHEMA}.files").fetchall()}


def _swap_in(staging: Path, final: Path) -> None:
    old = final.parent / f".old-{final.name}-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def ensure_night(
    warehouse: WarehouseResource,
    archive: Archive,
    district: str,
    date: str,
    manifest_sha256: str,
    tables: Iterable[str] = ALL_TABLES,
) -> Path:
    """The night's cache folder holding ``tables`` as verified Parquet, fetched from the archive when the
    cache lacks them or holds another version of the night (its manifest's sha256 differs)."""
    folder = _night_dir(warehouse, district, date)
    manifest_path = folder / MANIFEST_NAME
    local = manifest_path.read_bytes() if manifest_path.exists() else None
    if local is None or hashlib.sha256(local).hexdigest() != manifest_sha256:
        data = archive.get_bytes(district, date, MANIFEST_NAME)
        if data is None:
            raise ArchiveIntegrityError(f"the tables of {district} {date} are indexed but not archived")
        staging = private_dir(folder.parent / f".fetch-{date}-{os.getpid()}")
        (staging / MANIFEST_NAME).write_bytes(data)
        _swap_in(staging, folder)
        local = data
    archived = _parse_manifest(district, date, local)
    missing = [archived[t] for t in tables if t in archived and not (folder / parquet_name(t)).exists()]
    if missing:
        staging = private_dir(folder.parent / f".download-{date}-{os.getpid()}")
        try:
            for f in archive.download_files(district, date, missing, str(staging)):
                os.replace(f.local_path, folder / f.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


@dataclass
class NightsReader:
    """An open in-memory DuckDB over a district's archived nights, and the spill folder it owns."""

    conn: duckdb.DuckDBPyConnection
    spill: Path
    index: dict[str, str]  # the archive's index it was opened against: night -> manifest sha256

    def close(self) -> None:
        self.conn.close()
        shutil.rmtree(self.spill, ignore_errors=True)


def open_nights(
    warehouse: WarehouseResource,
    archive: Archive,
    district: str,
    nights: Iterable[str] | None = None,
    index: dict[str, str] | None = None,
) -> NightsReader:
    """An in-memory DuckDB with the ``oneroster`` schema over the archived nights (read-only views):
    ``files`` and ``rejects`` of every night, the entity tables of ``nights`` (default: the newest).
    The caller closes it (:func:`read_nights` does)."""
    index = dict(read_index(archive, district) if index is None else index)
    wanted = set(nights) if nights is not None else ({max(index)} if index else set())
    for date in wanted - set(index):  # archived but not indexed (the index lost a race): still found
        if (data := archive.get_bytes(district, date, MANIFEST_NAME)) is not None:
            index[date] = hashlib.sha256(data).hexdigest()
    paths: dict[str, list[str]] = {t: [] for t in ALL_TABLES}
    for date, sha in sorted(index.items()):
        tables = ALL_TABLES if date in wanted else HISTORY_TABLES
        folder = ensure_night(warehouse, archive, district, date, sha, tables)
        for t in tables:
            paths[t].append(str(folder / parquet_name(t)))
    spill = Path(tempfile.mkdtemp(prefix=f"read-{district}-", dir=private_dir(Path(warehouse.root) / ".tmp")))
    config = {**DUCKDB_CONFIG, "memory_limit": warehouse.memory_limit, "temp_directory": str(spill)}
    if warehouse.threads:
        config["threads"] = warehouse.threads
    reader = NightsReader(duckdb.connect(":memory:", config=config), spill, index)
    try:
        ensure_schema(reader.conn)  # every table exists, empty, even with no night archived yet
        for table, files in paths.items():
            if files:
                reader.conn.execute(f"DROP TABLE {SCHEMA}.{table}")
                listed = ", ".join(lit(f) for f in files)
                source = f"read_parquet([{listed}], union_by_name=true)"
                reader.conn.execute(f"CREATE VIEW {SCHEMA}.{table} AS SELECT * FROM {source}")
    except BaseException:
        reader.close()
        raise
    return reader


@contextlib.contextmanager
def read_nights(
    warehouse: WarehouseResource, archive: Archive, district: str, nights: Iterable[str] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`open_nights` for the length of a ``with`` block."""
    reader = open_nights(warehouse, archive, district, nights)
    try:
        yield reader.conn
    finally:
        reader.close()


def offboard_cache(warehouse: WarehouseResource, district: str) -> bool:
    """Remove the district's cached nights from this worker (the archived tables stay)."""
    folder = cache_root(warehouse) / validate_district_id(district)
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True
