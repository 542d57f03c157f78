"""Helpers for the LMS tests: generated drops -> load_drop into a warehouse -> load into an LMS backend."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from etl_project.lms import LmsBackend, Thresholds, load_night
from etl_project.lms.schema import ENTITIES
from etl_project.oneroster.load import load_drop
from etl_project.warehouse import WarehouseResource

NIGHT1, NIGHT2, NIGHT3 = "2026-09-14", "2026-09-15", "2026-09-16"
DEFAULTS = Thresholds.from_config({})


def ingest(warehouse: WarehouseResource, district: str, date: str, drop: Path) -> None:
    with warehouse.connect(district) as duck:
        report = load_drop(duck, drop, district=district, date=date)
    assert not report.refused, report.drop_errors


def load(warehouse: WarehouseResource, backend: LmsBackend, district: str, date: str, **kwargs: Any):
    kwargs.setdefault("run_id", f"run-{date}")
    kwargs.setdefault("thresholds", DEFAULTS)
    with warehouse.connect(district) as duck:
        return load_night(duck, backend, district, date, **kwargs)


def start_load(
    warehouse: WarehouseResource, backend: LmsBackend, district: str, date: str, **kwargs: Any
) -> tuple[threading.Thread, list[BaseException]]:
    """:func:`load` running in a thread (started); what it raised is appended to the returned list."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            load(warehouse, backend, district, date, **kwargs)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def query(backend: LmsBackend, district: str, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with backend.session(district, write=False) as s:
        prefix = "lms." if s.dialect == "postgres" else ""
        return s.query(sql.replace("{p}", prefix), params or [])


def edit_in_lms(backend: LmsBackend, sql: str, params: list[Any] | None = None) -> None:
    """A change made in the LMS itself (its own connection, not a sync's session), committed."""
    conn = backend.connect()  # type: ignore[attr-defined]
    try:
        prefix = "lms." if isinstance(conn, psycopg.Connection) else ""
        conn.execute(sql.replace("{p}", prefix).replace("%s", "%s" if prefix else "?"), params or [])
        conn.commit()
    finally:
        conn.close()


def snapshot(backend: LmsBackend, district: str) -> dict[str, list[tuple]]:
    """Everything the LMS holds for the district except sync_runs (a failed attempt may be recorded there)."""
    out = {}
    for e in ENTITIES:
        cols = ", ".join(["id", "sourced_id", "active", "deactivated_at", "updated_at", *e.field_names])
        out[e.name] = query(
            backend, district, f"SELECT {cols} FROM {{p}}{e.name} WHERE district = %s ORDER BY id", [district]
        )
    out["ledger"] = query(
        backend,
        district,
        "SELECT id, entity, sourced_id, operation FROM {p}change_ledger WHERE district = %s ORDER BY id",
        [district],
    )
    return out


def copy_drop(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def user_line(drop: Path, sourced_id: str) -> tuple[int, str]:
    lines = (drop / "users.csv").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(sourced_id + ","):
            return i, line
    raise AssertionError(f"{sourced_id} not in users.csv")


def replace_line(path: Path, index: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


def manifest(path: Path, modes: dict[str, str]) -> None:
    rows = ["propertyName,value", "manifest.version,1.0", "oneroster.version,1.1"]
    all_files = ("academicSessions", "classes", "courses", "demographics", "enrollments", "orgs", "users")
    rows += [f"file.{name},{modes.get(name, 'absent')}" for name in all_files]
    (path / "manifest.csv").write_text("\n".join(rows) + "\n")


def waiting_loader(url: str) -> int:
    """The pid of the loader's backend once it waits on a lock (polls pg_stat_activity; no fixed sleeps)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'etl_project lms%%' "
                "AND wait_event_type = 'Lock'"
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.02)
    raise AssertionError("the loader never waited on the lock")
