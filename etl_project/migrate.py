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
from sqlalchemy import Connection


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
