"""PostgreSQL LMS backend (psycopg 3): COPY in and out, set-based SQL, one transaction per district-night."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import psycopg
from psycopg import sql
from sqlalchemy import text

from etl_project.engines import postgres_engine
from etl_project.lms.backend import LmsBackend, LmsSession
from etl_project.lms.schema import (
    BY_NAME,
    ENTITY_KEYS,
    LEDGER_INDEXES,
    PARTITIONED,
    STAGING,
    Entity,
    partition_name,
)
from etl_project.lms.schema_version import upgrade
from etl_project.partitions import validate_district_id
from etl_project.scratch import scratch_dir

_SCHEMA_LOCK = 0x4C4D53  # advisory lock key serializing schema creation and id reservation
_MIGRATION_LOCK = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_SCHEMA_LOCK)
_CHUNK = 1 << 20
_FEED_WAIT = 0.005  # seconds the COPY feeder waits for DuckDB to write more
_DUMP_PAGES = 2048  # 16 MB of heap per query of dump_current


class PostgresSession(LmsSession):
    dialect = "postgres"

    def __init__(self, conn: psycopg.Connection, district: str, connect: Callable[..., psycopg.Connection]):
        self.conn, self.district, self._connect = conn, district, connect
        self.fresh: dict[str, str] = {}  # parent table -> new partition, attached by finish()
        self.beside: dict[str, _SideLoad] = {}  # parent table -> partition built beside, attached by finish()

    def _new_partition(self, table: str) -> str | None:
        """The parent table's name when ``table`` is partitioned and the district has no partition of it yet
        (its first load), else None."""
        parent = table.removeprefix("lms.")
        if parent not in PARTITIONED or parent in self.fresh or parent in self.beside:
            return None
        name = _partition(self.conn, "lms", parent, self.district)
        return parent if self.conn.execute("SELECT to_regclass(%s)", [name]).fetchone()[0] is None else None

    def bulk_target(self, table: str) -> str:
        """Where to COPY the district's new rows of ``table``: the partitioned table itself, or, when the
        district has no partition of it yet (its first load), a new table in this transaction that
        :meth:`finish` attaches as the district's partition (its indexes are built then, once)."""
        parent = table.removeprefix("lms.")
        if parent in self.fresh:
            return self.fresh[parent]
        if self._new_partition(table) is None:
            return table
        name = _partition(self.conn, "lms", parent, self.district)
        self.conn.execute(_create_partition(self.conn, parent, name, self.district))
        self.fresh[parent] = name
        return name

    def load_beside(
        self, duck: duckdb.DuckDBPyConnection, selects: Sequence[str], table: str, columns: Sequence[str]
    ) -> None:
        """A district's first rows of ``table`` (its first ledger: as many rows as the entities) are COPYed,
        indexed and committed by a second connection, fed by a cursor of ``duck``, into a table in the
        staging schema while this transaction writes the entities; :meth:`finish` moves it into ``lms`` and
        attaches it. If this transaction fails, the staged table is not part of the LMS (nothing reads the
        staging schema) and the district's next first load replaces it."""
        parent = self._new_partition(table)
        if parent is None:
            super().load_beside(duck, selects, table, columns)
            return
        side = _SideLoad(
            self._connect, self.district, parent, duck.cursor(), " UNION ALL ".join(selects), columns
        )
        side.thread.start()
        self.beside[parent] = side

    def finish(self) -> None:
        """Attach the district's new partitions (PostgreSQL builds their indexes; those built beside come
        with theirs), last, just before commit: attaching locks the parent against other districts'
        attaches until this transaction ends (always in PARTITIONED order, so two first loads never
        deadlock)."""
        district = sql.Literal(self.district).as_string(self.conn)
        for parent in sorted({*self.fresh, *self.beside}, key=PARTITIONED.index):
            if parent in self.beside:
                name = self.beside.pop(parent).publish(self.conn)
            else:
                name = self.fresh[parent]
                if parent in BY_NAME:
                    self.conn.execute(f"ALTER TABLE {name} {', '.join(f'ADD {key}' for key in ENTITY_KEYS)}")
            self.conn.execute(f"ALTER TABLE lms.{parent} ATTACH PARTITION {name} FOR VALUES IN ({district})")
        for name in self.fresh.values():  # the next night's UPDATE ... FROM joins need the statistics now
            self.conn.execute(f"ANALYZE {name}")
        self.fresh.clear()

    def discard_staged(self) -> None:
        """A first ledger staged and committed beside a night that then failed (the night's rollback moved
        it back to the staging schema): about as big as the district's entities, so not left until the
        district's next first load. Call it holding the district's lock (a writing session), so no running
        load's staged table is dropped."""
        for parent in PARTITIONED:
            self.conn.execute(f"DROP TABLE IF EXISTS {_partition(self.conn, STAGING, parent, self.district)}")

    def close(self) -> None:
        """Stop a load beside still running (its transaction rolls back); called however the session ends."""
        for side in self.beside.values():
            side.cancel()
        self.beside.clear()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(statement, params or None)

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(statement, params or None).fetchall()

    def dump_current(self, entity: Entity, path: Path, conn: psycopg.Connection | None = None) -> None:
        """The district's (id, sourced_id, active, row_hash) rows as CSV, read in page ranges of its
        partition, each range one ``string_agg`` text: ``COPY TO STDOUT`` sends one message per row, and a
        Python loop over millions of them cost more than PostgreSQL's own work (1M students: 7M rows)."""
        conn = conn or self.conn
        partition = _partition(conn, "lms", entity.name, self.district)
        pages = conn.execute(
            "SELECT coalesce(pg_relation_size(to_regclass(%s)), 0) / current_setting('block_size')::int",
            [partition],
        ).fetchone()[0]
        select = sql.SQL(
            "SELECT string_agg({}, E'\\n') || E'\\n' FROM lms.{} WHERE district = {} AND "
        ).format(sql.SQL(_CSV_LINE), sql.Identifier(entity.name), sql.Literal(self.district))
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
        # A table created in this transaction is filled frozen: no later VACUUM rewrites its pages.
        return _copy_in(self.conn, duck, select, table, columns, freeze=table in self.fresh.values())

    def analyze(self, table: str) -> None:
        self.conn.execute(f"ANALYZE {table}")  # temp tables are never auto-analyzed: size the join right

    def staging(self, name: str, like: str, columns: Sequence[str]) -> str:
        self.conn.execute(f"DROP TABLE IF EXISTS {name}")
        self.conn.execute(
            f"CREATE TEMP TABLE {name} ON COMMIT DROP AS SELECT {', '.join(columns)} FROM {like} LIMIT 0"
        )
        return name


# SQL for one dumped row as a CSV line: id, sourced_id (always quoted, CSV-escaped), active, row_hash (empty
# when NULL: cleared by an edit made in the LMS).
_CSV_LINE = """id || ',"' || replace(sourced_id, '"', '""') || '",' || active::text || ','
               || coalesce(row_hash::text, '')"""


def _partition(conn: psycopg.Connection, schema: str, parent: str, district: str) -> str:
    """The district's table of ``parent``'s rows in ``schema`` (``lms``, or the staging schema), quoted."""
    return sql.Identifier(schema, partition_name(parent, district)).as_string(conn)


def _create_partition(conn: psycopg.Connection, parent: str, name: str, district: str) -> str:
    """CREATE TABLE for the district's would-be partition of ``lms.<parent>``: its CHECK on the district lets
    ATTACH PARTITION skip scanning it."""
    return (
        f"CREATE TABLE {name} (LIKE lms.{parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS, "
        f"CHECK (district = {sql.Literal(district).as_string(conn)}))"
    )


class _SideLoad:
    """One table's first rows for a district, COPYed from a DuckDB cursor, indexed like the parent's
    partitions (LEDGER_INDEXES, so ATTACH adopts the indexes instead of building them) and analyzed, in its
    own transaction on its own connection, in a thread, into ``lms_staging.<partition name>``."""

    def __init__(
        self,
        connect: Callable[..., psycopg.Connection],
        district: str,
        parent: str,
        cursor: duckdb.DuckDBPyConnection,
        select: str,
        columns: Sequence[str],
    ):
        self._connect, self.district, self.parent = connect, district, parent
        self.cursor, self.select, self.columns = cursor, select, columns
        self.failed: list[BaseException] = []
        self.cancelled = threading.Event()
        self.conn: psycopg.Connection | None = None
        self.thread = threading.Thread(target=self._run, name=f"lms-beside-{parent}-{district}", daemon=True)

    def _run(self) -> None:
        try:
            with self._connect(application_name=f"etl_project lms {self.district} beside") as conn:
                self.conn = conn
                staged = _partition(conn, STAGING, self.parent, self.district)
                conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
                conn.execute(f"DROP TABLE IF EXISTS {staged}")  # left by a first load that failed
                conn.execute(_create_partition(conn, self.parent, staged, self.district))
                _copy_in(conn, self.cursor, self.select, staged, self.columns, freeze=True)
                for how in LEDGER_INDEXES.values() if self.parent == "change_entries" else ():
                    conn.execute(f"CREATE INDEX ON {staged} {how}")
                conn.execute(f"ANALYZE {staged}")
                if self.cancelled.is_set():
                    raise RuntimeError("cancelled: the night's transaction ended first")
        except BaseException as exc:  # re-raised in the session's thread by publish()
            self.failed.append(exc)
        finally:
            self.cursor.close()

    def publish(self, conn: psycopg.Connection) -> str:
        """Wait for the load, then move the table into ``lms`` in the night's transaction (``conn``);
        returns its new name, to be attached."""
        self.thread.join()
        if self.failed:
            raise self.failed[0]
        conn.execute(f"ALTER TABLE {_partition(conn, STAGING, self.parent, self.district)} SET SCHEMA lms")
        return _partition(conn, "lms", self.parent, self.district)

    def cancel(self) -> None:
        self.cancelled.set()
        if self.thread.is_alive():
            if self.conn is not None:
                with contextlib.suppress(Exception):
                    self.conn.cancel_safe()
            with contextlib.suppress(Exception):
                self.cursor.interrupt()
            self.thread.join()


def _copy_in(
    conn: psycopg.Connection,
    duck: duckdb.DuckDBPyConnection,
    select: str,
    table: str,
    columns: Sequence[str],
    *,
    freeze: bool,
) -> int:
    """DuckDB writes the rows as CSV into a scratch file while a thread feeds the file, as it grows, to
    ``COPY ... FROM STDIN``: both run at once, and no row passes through Python on its own. (Not a named
    pipe: DuckDB spins while a full pipe blocks it, and PostgreSQL, the slower side, needs that core.)

    Errors surface in the caller, PostgreSQL's first (DuckDB is then interrupted), else DuckDB's (the COPY
    is then aborted); either way the caller's transaction rolls back.
    """
    stmt = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT csv{', FREEZE true' if freeze else ''})"
    written, duck_failed = threading.Event(), threading.Event()
    pg_failed: list[BaseException] = []

    def feed(path: Path) -> None:
        try:
            with open(path, "rb") as src, conn.cursor().copy(stmt) as copy:
                _tail(src, copy.write, written, duck_failed)
        except _Aborted:
            pass
        except BaseException as exc:  # re-raised in the caller's thread
            pg_failed.append(exc)
            with contextlib.suppress(Exception):
                duck.interrupt()

    with scratch_dir("lms-copy") as scratch:
        path = scratch / "rows.csv"
        path.touch()
        feeder = threading.Thread(target=feed, args=(path,), name=f"lms-copy-{table}", daemon=True)
        feeder.start()
        try:
            rows = duck.execute(
                f"COPY ({select}) TO '{path}' (FORMAT csv, HEADER false, QUOTE '\"', USE_TMP_FILE false)"
            ).fetchone()[0]
        except BaseException:
            duck_failed.set()
            feeder.join()
            if pg_failed:
                raise pg_failed[0] from None
            raise
        written.set()
        feeder.join()
    if pg_failed:
        raise pg_failed[0]
    return int(rows)


class _Aborted(Exception):
    pass


def _tail(
    src: BinaryIO, write: Callable[[bytes], Any], written: threading.Event, failed: threading.Event
) -> None:
    """Pass on what a file holds while another thread writes it, until ``written`` (then the rest).

    A read racing a write can see zeros where bytes are still being written (the file has grown, its bytes
    are not there yet). So, until DuckDB is done, only what comes before the first NUL byte is passed on,
    and the rest is read again: the rows never hold one (PostgreSQL refuses NUL in text), and a new file's
    bytes, once not zero, are final."""
    while not failed.is_set():
        done = written.is_set()  # read before the file, so nothing written before it is missed
        block = src.read(_CHUNK)
        if done:
            while block:
                write(block)
                block = src.read(_CHUNK)
            return
        hole = block.find(0)
        if hole >= 0:
            src.seek(hole - len(block), os.SEEK_CUR)  # read it again once it is written
            block = block[:hole]
        if block:
            write(block)
        else:
            written.wait(_FEED_WAIT)
    raise _Aborted("DuckDB failed writing the rows")  # psycopg aborts the COPY


def _copy_out(conn: psycopg.Connection, query: sql.Composable, path: Path) -> None:
    with open(path, "wb") as out, conn.cursor().copy(query) as copy:
        for block in copy:
            out.write(block)


class PostgresBackend(LmsBackend):
    def __init__(self, url: str):
        self.url = url
        self._schema_ready = False

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return psycopg.connect(self.url, **kwargs)

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        upgrade(
            postgres_engine(self.url), text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_SCHEMA_LOCK)
        )
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
                try:
                    yield session
                    session.finish()
                finally:
                    session.close()
        finally:
            conn.close()
