"""Alembic environment of the LMS schema: runs on the connection etl_project.migrate hands over.

Its revisions are recorded in ``lms_alembic_version`` (the registry's own are in ``alembic_version``), so
both can live in one PostgreSQL database.
"""

from __future__ import annotations

from alembic import context

context.configure(connection=context.config.attributes["connection"], version_table="lms_alembic_version")
with context.begin_transaction():
    context.run_migrations()
