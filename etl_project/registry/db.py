"""The registry's database: SQLite (embedded default) or PostgreSQL (shared by every worker in production).

Access goes through SQLAlchemy Core (one Engine per URL, bound parameters, no SQL rewriting); the schema is
Alembic's (``migrations/``), brought to the newest revision the first time a process opens the database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite import Insert
from sqlalchemy.exc import OperationalError

from etl_project.engines import POSTGRES_SCHEMES, postgres_engine, psycopg_url, sqlite_engine
from etl_project.migrate import alembic_config, migrate
from etl_project.urls import mask_url

MIGRATIONS = Path(__file__).with_name("migrations")
# Workers starting together on an empty PostgreSQL registry: one migrates, the others wait and find it done.
_MIGRATION_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended('etl_project.registry', 0))")
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class RegistryDatabaseError(Exception):
    pass


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" not in url:
        return Path(url)
    return None


def engine_url(url: str) -> str:
    """The SQLAlchemy URL of a registry URL: a bare path is a SQLite file, and ``postgresql://`` (as operators
    write it) names the psycopg 3 driver."""
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite:///{path}"
    if url.startswith(POSTGRES_SCHEMES):
        return psycopg_url(url)
    raise RegistryDatabaseError(
        f"unsupported registry URL {mask_url(url)!r}: use sqlite:///path or postgresql://..."
    )


def migrations_config() -> Config:
    """The Alembic configuration of the registry's migrations (e.g. to list or add revisions)."""
    return alembic_config(MIGRATIONS)


def _engine(url: str) -> Engine:
    with _lock:
        if url not in _engines:
            path = sqlite_path(url)
            _engines[url] = (
                sqlite_engine(path)  # holds encrypted credentials: created 0600
                if path is not None
                else postgres_engine(url, connect_timeout=15)
            )
        return _engines[url]


class Database:
    """The registry at ``url`` (``sqlite:///path``, a path, or ``postgresql://...``)."""

    def __init__(self, url: str):
        self.url = url
        engine_url(url)  # an unsupported URL is refused here, not at first use
        self._engine = _engine(url)
        self._migrated = False

    def _connect(self) -> Connection:
        try:
            return self._engine.connect()
        except OperationalError as exc:
            text_ = str(exc.orig).strip()
            first = text_.splitlines()[0] if text_ else type(exc.orig).__name__
            where = mask_url(self.url)
            raise RegistryDatabaseError(f"cannot reach the registry at {where}: {first}") from None

    def _migrate(self) -> None:
        with self._connect() as conn:
            migrate(conn, MIGRATIONS, postgres_lock=_MIGRATION_LOCK)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends (rolled back on an exception).

        On SQLite the transaction takes the write lock at once (``BEGIN IMMEDIATE``): a transaction that
        reads and then writes (a session's idle clock, a lease) would otherwise fail with "database is
        locked" at its first write whenever another process writes, instead of waiting its turn."""
        if not self._migrated:
            self._migrate()
            self._migrated = True
        with self._connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.info["begin"] = "BEGIN IMMEDIATE"  # read by etl_project.engines.sqlite_engine
            with conn.begin():
                yield conn


def upsert(conn: Connection, table: Table) -> Insert:
    """``INSERT`` for ``table`` in ``conn``'s dialect, which has ``on_conflict_do_update`` and ``excluded``
    (SQLite and PostgreSQL spell the upsert the same way)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
