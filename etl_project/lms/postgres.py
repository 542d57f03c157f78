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
from etl_project.lms.schema import (
    BY_NAME,
    ENTITY_KEYS,
    LEGACY_LAYOUT,
    PARTITIONED,
    Entity,
    ddl,
    partition_name,
)
from etl_project.partitions import validate_district_id

_SCHEMA_LOCK = 0x4C4D53  # advisory lock key serializing schema creation and id reservation
_CHUNK = 1 << 20
_DUMP_PAGES = 2048  # 16 MB of heap per query of dump_current


class PostgresSession(LmsSession):
    dialect = "postgres"

    def __init__(self, conn: psycopg.Connection, district: str, connect: Callable[..., psycopg.Connection]):
        self.conn, self.district, self._connect = conn, district, connect
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
            if parent in BY_NAME:
                self.conn.execute(f"ALTER TABLE {name} {', '.join(f'ADD {key}' for key in ENTITY_KEYS)}")
            self.conn.execute(f"ALTER TABLE lms.{parent} ATTACH PARTITION {name} FOR VALUES IN ({district})")
        for name in self.fresh.values():  # the next night's UPDATE ... FROM joins need the statistics now
            self.conn.execute(f"ANALYZE {name}")
        self.fresh.clear()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(statement, params or None)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(statement, params or None).fetchall()

    def dump_current(self, entity: Entity, path: Path, conn: psycopg.Connection | None = None) -> None:
        """The district's (id, sourced_id, active, row_hash) rows as CSV, read in page ranges of its
        partition, each range one ``string_agg`` text: ``COPY TO STDOUT`` sends one message per row, and a
        Python loop over millions of them cost more than PostgreSQL's own work (1M students: 7M rows)."""
        conn = conn or self.conn
        partition = sql.Identifier("lms", partition_name(entity.name, self.district)).as_string(conn)
        pages = conn.execute(
            "SELECT coalesce(pg_relation_size(to_regclass(%s)), 0) / current_setting('block_size')::int",
            [partition],
        ).fetchone()[0]
        # One CSV line per row; sourced_id always quoted (CSV-escaped), a NULL row_hash an empty field.
        line = """id || ',"' || replace(sourced_id, '"', '""') || '",' || active || ','
                  || coalesce(row_hash::text, '')"""
        select = sql.SQL(
            "SELECT string_agg({}, E'\\n') || E'\\n' FROM lms.{} WHERE district = {} AND "
        ).format(sql.SQL(line), sql.Identifier(entity.name), sql.Literal(self.district))
        with open(path, "w", encoding="utf-8") as out:
            for start in range(0, max(pages, 1), _DUMP_PAGES):
                pages_in = sql.SQL("ctid >= {}::tid").format(sql.Literal(f"({start},0)"))
                if start + _DUMP_PAGES < pages:  # the last range is open-ended: it reads pages added since
                    pages_in += sql.SQL(" AND ctid < {}::tid").format(
                        sql.Literal(f"({start + _DUMP_PAGES},0)")
                    )
                text = conn.execute(select + pages_in).fetchone()[0]
                if text:
                    out.write(text)

    def dump_values(self, entity: Entity, path: Path, ids_table: str) -> None:
        cols = ", ".join(f"t.{f}" for f in entity.field_names)
        query = sql.SQL(
            "COPY (SELECT t.id, {} FROM lms.{} t JOIN {} s ON s.id = t.id WHERE t.district = {}) "
            "TO STDOUT (FORMAT csv)"
        ).format(sql.SQL(cols), sql.Identifier(entity.name), sql.SQL(ids_table), sql.Literal(self.district))
        _copy_out(self.conn, query, path)

    @contextlib.contextmanager
    def current_rows(self, entities: Sequence[Entity], scratch: Path) -> Iterator[Callable[[Entity], Path]]:
        """Dumps every entity, in order, on a second connection that shares this transaction's snapshot, so
        PostgreSQL writes the next entity's rows while DuckDB reads the previous one's. The dump sees what was
        committed when this was called (not this session's own writes: call it before writing)."""
        snapshot = self.conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        ready = {e.name: threading.Event() for e in entities}
        failed: list[BaseException] = []
        reader: list[psycopg.Connection] = []
        stop = threading.Event()

        def dump_all() -> None:
            try:
                with self._connect(application_name=f"etl_project lms {self.district} read") as conn:
                    reader.append(conn)
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                    for e in entities:
                        if stop.is_set():
                            return
                        self.dump_current(e, scratch / f"{e.name}.csv", conn)
                        ready[e.name].set()
            except BaseException as exc:  # re-raised in the caller's thread
                failed.append(exc)
            finally:
                for event in ready.values():
                    event.set()

        thread = threading.Thread(target=dump_all, name=f"lms-dump-{self.district}", daemon=True)
        thread.start()

        def dumped(entity: Entity) -> Path:
            ready[entity.name].wait()
            if failed:
                raise failed[0]
            return scratch / f"{entity.name}.csv"

        try:
            yield dumped
        finally:
            stop.set()
            if thread.is_alive() and reader:
                with contextlib.suppress(Exception):
                    reader[0].cancel_safe()
            thread.join()

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
            _Pipe(Path(scratch) / "rows.csv", feed) as pipe,
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


def _copy_out(conn: psycopg.Connection, query: sql.Composable, path: Path) -> None:
    with open(path, "wb") as out, conn.cursor().copy(query) as copy:
        for block in copy:
            out.write(block)


def _widen(fd: int) -> None:
    """Give the pipe a 1 MiB buffer (Linux; default 64 KiB), so each side wakes the other far less often."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)


class _Pipe:
    """A named pipe from DuckDB (this thread writes it) to PostgreSQL (a helper thread running ``feed(path)``
    reads it), so both run at once with no file on disk.

    Errors surface in the caller: PostgreSQL's first (DuckDB then sees a broken pipe or a short input), else
    DuckDB's. If DuckDB fails, perhaps before it opened the pipe, the helper gets an end-of-file so it always
    ends; the caller's exception then rolls the transaction back.
    """

    def __init__(self, path: Path, feed: Callable[[Path], None]):
        self.path, self.feed = path, feed
        self.failed: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name=f"lms-pipe-{path.name}", daemon=True)

    def _run(self) -> None:
        try:
            self.feed(self.path)
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
        """Give a reader still waiting in open() an end-of-file."""
        while self.thread.is_alive():
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
                return
            except OSError as err:
                if err.errno != errno.ENXIO:  # ENXIO: the reader has not reached open() yet
                    return
                self.thread.join(0.01)


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
                    # Room for the set-based UPDATE ... FROM joins of a big night and for building a first
                    # load's indexes in memory (this transaction only).
                    conn.execute("SET LOCAL work_mem = '128MB'")
                    conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
                session = PostgresSession(conn, district, self.connect)
                yield session
                session.finish()
        finally:
            conn.close()
