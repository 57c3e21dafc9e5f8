"""history key with time

A client may send the same X-Request-Id on several calls (it is echoed, not made up), so
(lead, request id, field) does not name one change. The key now starts with the lead and the
time of the change, which also serves the per-lead read, newest first.

Revision ID: 5b1e0c7d9a42
Revises: 12621053ed33
Create Date: 2026-11-26 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1e0c7d9a42"
down_revision: str | None = "12621053ed33"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "lead_id, request_id, field, old_value, new_value, changed_by, changed_at"


def _rekey(columns: list[str]) -> None:
    if op.get_context().dialect.name == "postgresql":
        op.drop_constraint("pk_lead_changes", "lead_changes", type_="primary")
        op.create_primary_key("pk_lead_changes", "lead_changes", columns)
        return
    # SQLite cannot change a primary key in place; the table is clustered on it (WITHOUT ROWID).
    op.create_table(
        "lead_changes_rekeyed",
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("changed_by", sa.String(length=36), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(*columns, name="pk_lead_changes"),
        sqlite_with_rowid=False,
    )
    op.execute(f"INSERT INTO lead_changes_rekeyed ({_COLUMNS}) SELECT {_COLUMNS} FROM lead_changes")
    op.drop_table("lead_changes")
    op.rename_table("lead_changes_rekeyed", "lead_changes")


def upgrade() -> None:
    _rekey(["lead_id", "changed_at", "request_id", "field"])


def downgrade() -> None:
    # The old key holds one change per lead, request id and field: keep the latest of each.
    op.execute(
        "DELETE FROM lead_changes WHERE EXISTS (SELECT 1 FROM lead_changes later "
        "WHERE later.lead_id = lead_changes.lead_id AND later.request_id = lead_changes.request_id "
        "AND later.field = lead_changes.field AND later.changed_at > lead_changes.changed_at)"
    )
    _rekey(["lead_id", "request_id", "field"])
