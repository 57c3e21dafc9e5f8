"""lead calls

One row per call that changed existing leads: who made it, when, which leads at which position
of the call, and the range of ids its history rows lie in. A revert finds a call's changes by
its request id through this small table, and the history needs no index of its own.

Revision ID: 8a4c0e7b2d19
Revises: 6f2b9d41c7a3
Create Date: 2026-12-05 05:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8a4c0e7b2d19"
down_revision: str | None = "6f2b9d41c7a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lead_calls",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("lead_count", sa.Integer(), nullable=False),
        sa.Column("leads", sa.Text(), nullable=False),
        sa.Column("first_change_id", _ID, nullable=False),
        sa.Column("last_change_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_calls")),
    )
    op.create_index(op.f("ix_lead_calls_request_id"), "lead_calls", ["request_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lead_calls_request_id"), table_name="lead_calls")
    op.drop_table("lead_calls")
