"""The portal's request counters (password-reset e-mails per address and per client) and leases (a
registry-wide lock, e.g. one Sync now decision per district-night across portal processes).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_counts",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("window_started_at", sa.Text, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("request_counts")
