"""Schema migrations of the databases the project owns (registry, LMS): Alembic, configured in code.

Each database has its migrations in its package (``<package>/migrations``: ``env.py`` and numbered
``versions/``); they run on a connection the caller opens, in the caller's transaction, so no ``alembic.ini``
is needed at runtime. See docs/migrations.md.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, TextClause


def alembic_config(script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return config


def upgrade_to_head(conn: Connection, script_location: Path) -> None:
    """Apply every migration ``conn``'s database lacks (the folder's env.py runs them on ``conn``)."""
    config = alembic_config(script_location)
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


@functools.cache
def head_revision(script_location: Path) -> str | None:
    """The newest revision of the migrations in ``script_location`` (read once per process)."""
    return ScriptDirectory.from_config(alembic_config(script_location)).get_current_head()


def current_revision(conn: Connection, version_table: str = "alembic_version") -> str | None:
    """The revision ``conn``'s database is at (None: never migrated)."""
    return MigrationContext.configure(conn, opts={"version_table": version_table}).get_current_revision()


def migrate(
    conn: Connection,
    script_location: Path,
    *,
    version_table: str = "alembic_version",
    postgres_lock: TextClause | None = None,
) -> None:
    """Bring ``conn``'s database to the newest revision unless it is there already. Processes starting
    together on an empty database migrate one at a time: on PostgreSQL each first takes ``postgres_lock``
    (a transaction-scoped advisory lock), on SQLite the database's write lock (``BEGIN IMMEDIATE``); the
    ones that waited find it at the newest revision and change nothing."""
    if current_revision(conn, version_table) == head_revision(script_location):
        return
    conn.rollback()  # end the check's transaction: the migration's takes the lock first
    if conn.dialect.name == "sqlite":
        conn.info["begin"] = "BEGIN IMMEDIATE"  # read by etl_project.engines.sqlite_engine
    with conn.begin():
        if postgres_lock is not None and conn.dialect.name == "postgresql":
            conn.execute(postgres_lock)
        upgrade_to_head(conn, script_location)
