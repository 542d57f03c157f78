"""The district portal: accounts, identities, sessions, invitations, sign_in_attempts, audit_log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text, nullable=False, unique=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("district", sa.Text),
        sa.Column("password_hash", sa.Text),
        sa.Column("password_changed_at", sa.Text),
        sa.Column("totp_secret", sa.Text),
        sa.Column("totp_last_step", sa.Integer),
        sa.Column("disabled", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_table(
        "identities",
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("provider", "subject"),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("account", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.Column("last_seen_at", sa.Text, nullable=False),
        sa.Column("ip", sa.Text),
    )
    op.create_index("sessions_account", "sessions", ["account"])
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("district", sa.Text),
        sa.Column("invited_by", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Text, nullable=False),
        sa.Column("used_at", sa.Text),
    )
    op.create_index("invitations_email", "invitations", ["email"])
    op.create_table(
        "sign_in_attempts",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", sa.Text, nullable=False),
        sa.Column("locked_until", sa.Text),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("account", sa.Text),
        sa.Column("email", sa.Text),
        sa.Column("district", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("ip", sa.Text),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("audit_log_district_at", "audit_log", ["district", "at"])


def downgrade() -> None:
    for table in ("audit_log", "sign_in_attempts", "invitations", "sessions", "identities", "accounts"):
        op.drop_table(table)
