"""Alembic environment of the registry: runs on the connection etl_project.migrate hands over."""

from __future__ import annotations

from alembic import context

from etl_project.registry.tables import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
