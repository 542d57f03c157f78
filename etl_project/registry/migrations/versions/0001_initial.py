"""The registry's first schema: districts, night_states, source_polls.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # if_not_exists: a registry made before the migrations (the same districts table) is adopted as it is
    op.create_table(
        "districts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False),
        sa.Column("expected_by_hour", sa.Integer, nullable=False),
        sa.Column("thresholds", sa.Text, nullable=False),
        sa.Column("source_kind", sa.Text, nullable=False),
        sa.Column("source_settings", sa.Text, nullable=False),
        sa.Column("host_key", sa.Text),
        sa.Column("host_key_pinned_at", sa.Text),
        sa.Column("secret_fields", sa.Text, nullable=False),
        sa.Column("credentials", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "night_states",
        sa.Column("district", sa.Text, nullable=False),
        sa.Column("night", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("step", sa.Text),
        sa.Column("run_id", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("district", "night"),
        if_not_exists=True,
    )
    op.create_table(
        "source_polls",
        sa.Column("district", sa.Text, primary_key=True),
        sa.Column("last_poll_at", sa.Text, nullable=False),
        sa.Column("last_success_at", sa.Text),
        sa.Column("newest_drop", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.Text),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("source_polls")
    op.drop_table("night_states")
    op.drop_table("districts")
