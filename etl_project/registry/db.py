"""The registry's database: SQLite (embedded default) or PostgreSQL (shared by every worker in production).

The SQL is kept to what both accept (TEXT/INTEGER columns, ``INSERT ... ON CONFLICT``); statements are written
with ``?`` placeholders and translated for psycopg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from etl_project.files import private_file
from etl_project.urls import mask_url

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS districts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    expected_by_hour INTEGER NOT NULL,
    thresholds TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    source_settings TEXT NOT NULL,
    host_key TEXT,
    host_key_pinned_at TEXT,
    secret_fields TEXT NOT NULL,
    credentials TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
""",
    # One current state per district-night, written by whatever runs the night (CLI, daemon, any worker).
    """
CREATE TABLE IF NOT EXISTS night_states (
    district TEXT NOT NULL,
    night TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    step TEXT,
    run_id TEXT,
    detail TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (district, night)
)
""",
    # The outcome of the newest poll of each district's source (sensor or `districts test`).
    """
CREATE TABLE IF NOT EXISTS source_polls (
    district TEXT PRIMARY KEY,
    last_poll_at TEXT NOT NULL,
    last_success_at TEXT,
    newest_drop TEXT,
    last_error TEXT,
    last_error_at TEXT
)
""",
)


class RegistryDatabaseError(Exception):
    pass


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" not in url:
        return Path(url)
    return None


class Database:
    def __init__(self, url: str):
        self.url = url
        self._path = sqlite_path(url)
        if self._path is None and not url.startswith(("postgresql://", "postgres://")):
            raise RegistryDatabaseError(
                f"unsupported registry URL {mask_url(url)!r}: use sqlite:///path or postgresql://..."
            )
        self._schema_ready = False

    @property
    def is_postgres(self) -> bool:
        return self._path is None

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self._path is not None:
            private_file(self._path)  # holds encrypted credentials: readable by the owner only
            with closing(sqlite3.connect(self._path, timeout=30)) as conn, conn:
                yield conn
        else:
            import psycopg

            try:
                conn = psycopg.connect(self.url, connect_timeout=15)
            except psycopg.OperationalError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise RegistryDatabaseError(
                    f"cannot reach the registry at {mask_url(self.url)}: {first}"
                ) from None
            with conn:
                yield conn

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._connect() as conn:
            tx = Transaction(conn, self.is_postgres)
            if not self._schema_ready:
                if self.is_postgres:  # workers starting together: one creates the table, the others wait
                    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('etl_project.registry', 0))")
                for statement in SCHEMA:
                    tx.execute(statement)
                self._schema_ready = True
            yield tx


class Transaction:
    def __init__(self, conn: Any, postgres: bool):
        self._conn, self._postgres = conn, postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        if self._postgres:
            sql = sql.replace("?", "%s")
        cur = self._conn.execute(sql, tuple(params))
        return list(cur.fetchall()) if cur.description else []
