"""history as a chain per lead

A call changes 25 leads, and any index on the history by lead needs a page of each of them once
leads have long histories. Instead the lead row now holds the id of its newest change and each
change the id of the one before, so writing a call's history appends rows and rewrites nothing
the call does not rewrite anyway. The chain is built from the existing history in id order
(the order written), and the index on (lead_id, changed_at) goes.

Revision ID: 3d8a61f0c2e9
Revises: 9c3f4e2a7b15
Create Date: 2026-12-04 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3d8a61f0c2e9"
down_revision: str | None = "9c3f4e2a7b15"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_lead_changes_lead_id_changed_at"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("lead_changes", sa.Column("previous_id", _ID, nullable=True))
    op.add_column("leads", sa.Column("last_change_id", _ID, nullable=True))
    # Both databases know UPDATE ... FROM and window functions (SQLite since 3.33 and 3.25).
    op.execute(
        "UPDATE lead_changes SET previous_id = chain.previous_id FROM "
        "(SELECT id, lag(id) OVER (PARTITION BY lead_id ORDER BY id) AS previous_id FROM lead_changes) AS chain "
        "WHERE lead_changes.id = chain.id AND chain.previous_id IS NOT NULL"
    )
    op.execute(
        "UPDATE leads SET last_change_id = newest.id FROM "
        "(SELECT lead_id, max(id) AS id FROM lead_changes GROUP BY lead_id) AS newest "
        "WHERE leads.auto_id = newest.lead_id"
    )
    op.drop_index(_INDEX, table_name="lead_changes")


def downgrade() -> None:
    op.create_index(_INDEX, "lead_changes", ["lead_id", "changed_at"])
    # SQLite drops a plain column in place (since 3.35); a batch copy of the lead table would
    # have to know its run-time columns.
    op.execute("ALTER TABLE leads DROP COLUMN last_change_id")
    op.execute("ALTER TABLE lead_changes DROP COLUMN previous_id")
