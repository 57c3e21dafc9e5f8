"""history in write order

The change history was clustered by lead (its primary key began with the lead id). A call
changes 25 leads, so once leads have long histories every call wrote a page per lead. Rows now
go in the order written, under a surrogate id, and an index on (lead_id, changed_at) serves the
per-lead read.

Revision ID: 9c3f4e2a7b15
Revises: 5b1e0c7d9a42
Create Date: 2026-12-04 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c3f4e2a7b15"
down_revision: str | None = "5b1e0c7d9a42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "lead_id, request_id, field, old_value, new_value, changed_by, changed_at"
_OLD_KEY = ["lead_id", "changed_at", "request_id", "field"]
_INDEX = "ix_lead_changes_lead_id_changed_at"
_PK = "pk_lead_changes"


def _postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def _rebuild(id_column: bool) -> None:
    """SQLite cannot change a primary key in place: copy the rows into a new table, oldest
    first."""
    columns: list[sa.schema.SchemaItem] = [
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("changed_by", sa.String(length=36), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
    ]
    if id_column:
        table = [sa.Column("id", sa.Integer(), nullable=False), *columns, sa.PrimaryKeyConstraint("id", name=_PK)]
        op.create_table("lead_changes_rebuilt", *table)
    else:
        table = [*columns, sa.PrimaryKeyConstraint(*_OLD_KEY, name=_PK)]
        op.create_table("lead_changes_rebuilt", *table, sqlite_with_rowid=False)
    op.execute(f"INSERT INTO lead_changes_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM lead_changes ORDER BY changed_at")
    op.drop_table("lead_changes")
    op.rename_table("lead_changes_rebuilt", "lead_changes")


def upgrade() -> None:
    if _postgresql():
        op.drop_constraint(_PK, "lead_changes", type_="primary")
        op.add_column("lead_changes", sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False))
        op.create_primary_key(_PK, "lead_changes", ["id"])
    else:
        _rebuild(id_column=True)
    op.create_index(_INDEX, "lead_changes", ["lead_id", "changed_at"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="lead_changes")
    if _postgresql():
        op.drop_constraint(_PK, "lead_changes", type_="primary")
        op.drop_column("lead_changes", "id")
        op.create_primary_key(_PK, "lead_changes", _OLD_KEY)
    else:
        _rebuild(id_column=False)
