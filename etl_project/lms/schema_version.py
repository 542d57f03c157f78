"""The LMS schema's migrations (``lms/migrations``, Alembic), applied by a backend before its first session.

Revisions are recorded in ``lms_alembic_version``. Errors stay the driver's (``psycopg.Error``,
``sqlite3.Error``), which is what the LMS's callers handle, as for every other LMS statement.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, TextClause
from sqlalchemy.exc import DBAPIError

from etl_project.migrate import alembic_config, migrate

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "lms_alembic_version"


def migrations_config():
    """The Alembic configuration of the LMS schema's migrations (e.g. to list or add revisions)."""
    return alembic_config(MIGRATIONS)


def upgrade(engine: Engine, postgres_lock: TextClause | None = None) -> None:
    """Bring the LMS database behind ``engine`` to the newest revision (then dispose of ``engine``)."""
    try:
        with engine.connect() as conn:
            migrate(conn, MIGRATIONS, version_table=VERSION_TABLE, postgres_lock=postgres_lock)
    except DBAPIError as exc:
        raise exc.orig from None
    finally:
        engine.dispose()
