"""SQLAlchemy Engines for the databases the project owns (registry, LMS schema migrations).

Operators write ``sqlite:///path`` (or a bare path) and ``postgresql://...``; SQLAlchemy is given the same
database with the psycopg 3 driver named. A SQLite file is created 0600 before SQLite opens it, and its
transactions begin with an explicit ``BEGIN`` so DDL (migrations) is transactional too.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from etl_project.files import private_file

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def psycopg_url(url: str) -> str:
    """``postgresql://...`` or ``postgres://...`` as SQLAlchemy names the same database through psycopg 3."""
    scheme = next(s for s in POSTGRES_SCHEMES if url.startswith(s))
    return "postgresql+psycopg://" + url[len(scheme) :]


def postgres_engine(url: str, **connect_args) -> Engine:
    """The PostgreSQL database at ``url`` (``postgresql://``), a connection per use (no pool)."""
    return create_engine(psycopg_url(url), poolclass=NullPool, connect_args=connect_args)


def sqlite_engine(path: Path, timeout: float = 30) -> Engine:
    """The SQLite file at ``path`` (created 0600 first); ``conn.info["begin"] = "BEGIN IMMEDIATE"`` before
    ``conn.begin()`` takes the write lock at once (to serialize migrations)."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool, connect_args={"timeout": timeout})

    @event.listens_for(engine, "do_connect")
    def _private(*_args) -> None:
        private_file(path)

    @event.listens_for(engine, "connect")
    def _manual(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN (below), so DDL is in the transaction

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.info.pop("begin", "BEGIN"))

    return engine
