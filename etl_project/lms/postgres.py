"""PostgreSQL LMS backend (psycopg 3): COPY in and out, set-based SQL, one transaction per district-night."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql

from etl_project.lms.backend import LmsBackend, LmsConfigError, LmsSession
from etl_project.lms.schema import LEGACY_LAYOUT, PARTITIONED, Entity, ddl, partition_name
from etl_project.partitions import validate_district_id

_SCHEMA_LOCK = 0x4C4D53  # advisory lock key serializing schema creation and id reservation
_CHUNK = 1 << 20


class PostgresSession(LmsSession):
    dialect = "postgres"

    def __init__(self, conn: psycopg.Connection, district: str):
        self.conn, self.district = conn, district
        self.fresh: dict[str, str] = {}  # parent table -> new partition, attached by finish()

    def bulk_target(self, table: str) -> str:
        """Where to COPY the district's new rows of ``table``: the partitioned table itself, or, when the
        district has no partition of it yet (its first load), a new table in this transaction that
        :meth:`finish` attaches as the district's partition (its indexes are built then, once)."""
        parent = table.removeprefix("lms.")
        if parent not in PARTITIONED:
            return table
        if parent in self.fresh:
            return self.fresh[parent]
        name = sql.Identifier("lms", partition_name(parent, self.district)).as_string(self.conn)
        if self.conn.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] is not None:
            return table
        self.conn.execute(
            f"CREATE TABLE {name} (LIKE lms.{parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
            f"CHECK (district = {sql.Literal(self.district).as_string(self.conn)}))"
        )
        self.fresh[parent] = name
        return name

    def finish(self) -> None:
        """Attach the district's new partitions (PostgreSQL builds their indexes), last, just before commit:
        attaching locks the parent against other districts' attaches until this transaction ends (always in
        PARTITIONED order, so two first loads never deadlock)."""
        district = sql.Literal(self.district).as_string(self.conn)
        for parent, name in sorted(self.fresh.items(), key=lambda item: PARTITIONED.index(item[0])):
            self.conn.execute(f"ALTER TABLE lms.{parent} ATTACH PARTITION {name} FOR VALUES IN ({district})")
        self.fresh.clear()  # autovacuum analyzes the new partitions (an ANALYZE here would cost ~10% more)

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

    @contextlib.contextmanager
    def current_csv(self, entity: Entity, scratch: Path) -> Iterator[Path]:
        """A named pipe that a thread fills with ``COPY ... TO STDOUT`` while DuckDB reads it."""
        with _Pipe(
            scratch / f"{entity.name}.csv", lambda path: self.dump_current(entity, path), "writes"
        ) as pipe:
            yield pipe

    def load(self, duck: duckdb.DuckDBPyConnection, select: str, table: str, columns: Sequence[str]) -> int:
        """DuckDB writes the rows as CSV into a named pipe while a thread feeds the pipe to ``COPY ... FROM
        STDIN``: both sides run at once, and nothing is staged on disk or handled row by row in Python."""
        # A table created in this transaction is filled frozen: no later VACUUM rewrites its pages.
        freeze = ", FREEZE true" if table in self.fresh.values() else ""
        stmt = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv{freeze})"

        def feed(path: Path) -> None:
            with open(path, "rb") as src, self.conn.cursor().copy(stmt) as copy:
                _widen(src.fileno())
                while block := src.read(_CHUNK):
                    copy.write(block)

        with (
            tempfile.TemporaryDirectory(prefix="lms-copy-") as scratch,
            _Pipe(Path(scratch) / "rows.csv", feed, "reads") as pipe,
        ):
            rows = duck.execute(
                f"COPY ({select}) TO '{pipe}' (FORMAT csv, HEADER false, QUOTE '\"', USE_TMP_FILE false)"
            ).fetchone()[0]
        return int(rows)

    def analyze(self, table: str) -> None:
        self.conn.execute(f"ANALYZE {table}")  # temp tables are never auto-analyzed: size the join right

    def staging(self, name: str, like: str, columns: Sequence[str]) -> str:
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self.conn.execute(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {', '.join(columns)} FROM {like} LIMIT 0"
        )
        return name


def _widen(fd: int) -> None:
    """Give the pipe a 1 MiB buffer (Linux; default 64 KiB), so each side wakes the other far less often."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)


class _Pipe:
    """A named pipe between DuckDB (this thread) and PostgreSQL (a helper thread running ``work(path)``, which
    ``reads`` or ``writes`` the pipe), so both run at once with no file on disk.

    Errors surface in the caller: PostgreSQL's first (DuckDB then sees a broken pipe or a short input), else
    DuckDB's. If DuckDB fails, perhaps before it opened the pipe, the helper is unblocked (end-of-file, or its
    output drained) so it always ends; the caller's exception then rolls the transaction back.
    """

    def __init__(self, path: Path, work: Callable[[Path], None], side: str):
        self.path, self.work, self.side = path, work, side
        self.failed: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name=f"lms-pipe-{path.name}", daemon=True)

    def _run(self) -> None:
        try:
            self.work(self.path)
        except BaseException as exc:  # re-raised in the caller's thread
            self.failed.append(exc)

    def __enter__(self) -> Path:
        os.mkfifo(self.path, 0o600)
        self.thread.start()
        return self.path

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self._unblock()
        self.thread.join()
        self.path.unlink(missing_ok=True)
        if self.failed:
            raise self.failed[0] from None

    def _unblock(self) -> None:
        if self.side == "reads":  # give a reader still waiting in open() an end-of-file
            while self.thread.is_alive():
                try:
                    os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
                    return
                except OSError as err:
                    if err.errno != errno.ENXIO:  # ENXIO: the reader has not reached open() yet
                        return
                    self.thread.join(0.01)
        else:  # drain a writer so it never blocks on a full pipe
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                while self.thread.is_alive():
                    with contextlib.suppress(BlockingIOError):
                        os.read(fd, _CHUNK)
                    self.thread.join(0.001)
            finally:
                os.close(fd)


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
            legacy = conn.execute(
                "SELECT count(*) FROM pg_class WHERE relkind = 'r' "
                "AND oid IN (to_regclass('lms.change_ledger'), to_regclass('lms.users'))"
            ).fetchone()[0]
            if legacy:
                raise LmsConfigError(LEGACY_LAYOUT)
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
                    # Room for the set-based UPDATE ... FROM joins of a big night (this transaction only).
                    conn.execute("SET LOCAL work_mem = '128MB'")
                session = PostgresSession(conn, district)
                yield session
                session.finish()
        finally:
            conn.close()
