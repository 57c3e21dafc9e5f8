"""lead indexes for writes

Every index on the lead table is written by every update that changes its column, and on
PostgreSQL an update that changes any indexed column rewrites every index of the row (no HOT
update). The indexes on first_name, last_name and company served no endpoint's search:
Leads.GetByQuickSearch matches a prefix in any letter case, which a plain b-tree cannot answer
on either database. They go. On PostgreSQL the lead table also keeps a tenth of each page free,
so that an update touching no indexed column can stay on its page (a HOT update).

Revision ID: 6f2b9d41c7a3
Revises: 3d8a61f0c2e9
Create Date: 2026-12-05 05:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "6f2b9d41c7a3"
down_revision: str | None = "3d8a61f0c2e9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = {"ix_leads_first_name": "first_name", "ix_leads_last_name": "last_name", "ix_leads_company": "company"}


def upgrade() -> None:
    for name in _INDEXES:
        op.drop_index(name, table_name="leads")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE leads SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE leads RESET (fillfactor)")
    for name, column in _INDEXES.items():
        op.create_index(name, "leads", [column])
