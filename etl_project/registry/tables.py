"""The registry's tables as the code reads and writes them; migrations/ creates and changes them.

``test_registry.py`` checks that the migrated database and these definitions agree (Alembic's
``compare_metadata``), so a column added here without a migration (or the reverse) fails the tests.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, PrimaryKeyConstraint, Table, Text

metadata = MetaData()

districts = Table(
    "districts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("enabled", Integer, nullable=False),
    Column("expected_by_hour", Integer, nullable=False),
    Column("thresholds", Text, nullable=False),  # JSON
    Column("source_kind", Text, nullable=False),
    Column("source_settings", Text, nullable=False),  # JSON, never a secret
    Column("host_key", Text),
    Column("host_key_pinned_at", Text),
    Column("secret_fields", Text, nullable=False),  # comma-separated names of the stored secrets
    Column("credentials", Text),  # one Fernet token bound to the district id
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

# One current state per district-night, written by whatever runs the night (CLI, daemon, any worker).
night_states = Table(
    "night_states",
    metadata,
    Column("district", Text, nullable=False),
    Column("night", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("reason", Text),
    Column("step", Text),
    Column("run_id", Text),
    Column("detail", Text, nullable=False),  # JSON
    Column("updated_at", Text, nullable=False),
    PrimaryKeyConstraint("district", "night"),
)

# The outcome of the newest poll of each district's source (sensor or `districts test`).
source_polls = Table(
    "source_polls",
    metadata,
    Column("district", Text, primary_key=True),
    Column("last_poll_at", Text, nullable=False),
    Column("last_success_at", Text),
    Column("newest_drop", Text),
    Column("last_error", Text),
    Column("last_error_at", Text),
)
