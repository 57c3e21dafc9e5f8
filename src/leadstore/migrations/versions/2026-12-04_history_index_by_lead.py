"""history index by lead

The per-lead history read now follows write order (the id), so its index needs only the lead:
SQLite keeps the rowid in every index entry, in order, and PostgreSQL sorts one lead's rows.
The entries are a third of the size of (lead_id, changed_at); a call adds one to the index page
of each of its 25 leads, and with long histories those pages dominate what a call writes
(SQLite, 10,000 leads: the database's own write loop does 30-40 % more leads a second).

Revision ID: 3d8a61f0c2e9
Revises: 9c3f4e2a7b15
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3d8a61f0c2e9"
down_revision: str | None = "9c3f4e2a7b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_lead_changes_lead_id_changed_at", table_name="lead_changes")
    op.create_index("ix_lead_changes_lead_id", "lead_changes", ["lead_id"])


def downgrade() -> None:
    op.drop_index("ix_lead_changes_lead_id", table_name="lead_changes")
    op.create_index("ix_lead_changes_lead_id_changed_at", "lead_changes", ["lead_id", "changed_at"])
