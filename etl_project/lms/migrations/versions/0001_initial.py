"""The LMS schema as first released: entity tables (PostgreSQL: partitioned by district), their edit
triggers, id_map, sync_runs, the change ledger (change_sources, change_entries, change_ledger view).

The statements are the ones ``etl_project.lms.schema.ddl`` wrote at this revision, frozen in
``0001_initial.<dialect>.sql`` so this revision never changes with the code.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def statements(dialect: str) -> list[str]:
    """The statements of ``0001_initial.<dialect>.sql`` (``postgres`` or ``sqlite``), each ended by a line
    holding only ``;``."""
    text = Path(__file__).with_name(f"0001_initial.{dialect}.sql").read_text(encoding="utf-8")
    blocks = ("\n".join(ln for ln in b.splitlines() if not ln.startswith("--")) for b in text.split("\n;\n"))
    return [block.strip() for block in blocks if block.strip()]


def upgrade() -> None:
    conn = op.get_bind()
    for statement in statements("postgres" if conn.dialect.name == "postgresql" else "sqlite"):
        conn.exec_driver_sql(statement)  # as written: no bound parameters, nothing for a driver to read


def downgrade() -> None:
    raise NotImplementedError("the LMS schema's first revision is not undone: drop the database instead")
