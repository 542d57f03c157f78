"""PostgreSQL LMS backend (psycopg 3): COPY in and out, set-based SQL, one transaction per district-night."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql

from etl_project.lms.backend import LmsBackend, LmsSession
from etl_project.lms.schema import Entity, ddl
from etl_project.partitions import validate_district_id

_SCHEMA_LOCK = 0x4C4D53  # advisory lock key serializing schema creation and id reservation
_CHUNK = 1 << 20


class PostgresSession(LmsSession):
    dialect = "postgres"

    def __init__(self, conn: psycopg.Connection, district: str):
        self.conn, self.district = conn, district

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(statement, params or None)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(statement, params or None).fetchall()

    def dump_current(self, entity: Entity, path: Path) -> None:
        cols = ", ".join(["id", "sourced_id", *entity.field_names, "active"])
        query = sql.SQL("COPY (SELECT {} FROM lms.{} WHERE district = {}) TO STDOUT (FORMAT csv)").format(
            sql.SQL(cols), sql.Identifier(entity.name), sql.Literal(self.district)
        )
        with open(path, "wb") as out, self.conn.cursor().copy(query) as copy:
            for block in copy:
                out.write(block)

    def reserve(self, sequence: str, n: int) -> int:
        if n <= 0:
            return 0
        # Session-level lock just around the two calls, so concurrent districts never get overlapping blocks.
        self.conn.execute("SELECT pg_advisory_lock(%s)", [_SCHEMA_LOCK + 1])
        try:
            first = self.conn.execute(f"SELECT nextval('lms.{sequence}')").fetchone()[0]
            self.conn.execute(f"SELECT setval('lms.{sequence}', %s)", [first + n - 1])
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s)", [_SCHEMA_LOCK + 1])
        return int(first)

    def load(self, duck: duckdb.DuckDBPyConnection, select: str, table: str, columns: Sequence[str]) -> int:
        """DuckDB writes the rows as CSV into a named pipe while a thread feeds the pipe to ``COPY ... FROM
        STDIN``: both sides run at once, and nothing is staged on disk or handled row by row in Python."""
        stmt = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
        failed: list[BaseException] = []

        def feed(pipe: str) -> None:
            try:
                with open(pipe, "rb") as src, self.conn.cursor().copy(stmt) as copy:
                    while block := src.read(_CHUNK):
                        copy.write(block)
            except BaseException as exc:  # re-raised in the caller's thread
                failed.append(exc)

        with tempfile.TemporaryDirectory(prefix="lms-copy-") as scratch:
            pipe = os.path.join(scratch, "rows.csv")
            os.mkfifo(pipe, 0o600)
            feeder = threading.Thread(target=feed, args=(pipe,), name="lms-copy", daemon=True)
            feeder.start()
            try:
                rows = duck.execute(
                    f"COPY ({select}) TO '{pipe}' (FORMAT csv, HEADER false, QUOTE '\"', USE_TMP_FILE false)"
                ).fetchone()[0]
            except BaseException:
                _end_of_input(pipe, feeder)
                feeder.join()
                if failed:  # PostgreSQL refused the rows (DuckDB then saw a broken pipe): that is the error
                    raise failed[0] from None
                raise
            feeder.join()
        if failed:
            raise failed[0]
        return int(rows)

    def staging(self, name: str, like: str, columns: Sequence[str]) -> str:
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self.conn.execute(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {', '.join(columns)} FROM {like} LIMIT 0"
        )
        return name


def _end_of_input(pipe: str, feeder: threading.Thread) -> None:
    """DuckDB failed, perhaps before it opened the pipe: open and close its write end so a reader still
    waiting in ``open`` gets end-of-file (its COPY ends; the caller raises and the transaction rolls back)."""
    while feeder.is_alive():
        try:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet (the feeder has not reached ``open``)
                return
            feeder.join(0.01)


class PostgresBackend(LmsBackend):
    def __init__(self, url: str):
        self.url = url
        self._schema_ready = False

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.url, **kwargs)

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self.connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
            for statement in ddl("postgres"):
                conn.execute(statement)
        self._schema_ready = True

    @contextlib.contextmanager
    def session(self, district: str, *, write: bool = True) -> Iterator[PostgresSession]:
        validate_district_id(district)
        self.ensure_schema()
        conn = self.connect(autocommit=True, application_name=f"etl_project lms {district}")
        try:
            with conn.transaction(force_rollback=not write):
                if write:
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        [f"etl_project.lms:{district}"],
                    )
                yield PostgresSession(conn, district)
        finally:
            conn.close()
