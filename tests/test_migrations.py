"""Migrations build the schema the models describe, and moving the change history to write
order and to a chain per lead (and back) keeps every change."""

import asyncio
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from leadstore import migrate
from leadstore.db import Base, Database
from leadstore.leads import repository
from leadstore.leads.plan import BulkWrite, Column, LeadWrite
from leadstore.models import Lead

LAST_NAME = Column("last_name", "LastName", "Last Name")
_LEADS = Lead.__table__

BEFORE_WRITE_ORDER = "5b1e0c7d9a42"
_T0 = datetime(2026, 1, 1, 9, 0, 0, 123456)

# The history table as every revision has it, apart from the surrogate id.
_CHANGES = sa.table(
    "lead_changes",
    sa.column("lead_id", sa.Integer),
    sa.column("request_id", sa.String),
    sa.column("field", sa.String),
    sa.column("old_value", sa.Text),
    sa.column("new_value", sa.Text),
    sa.column("changed_by", sa.String),
    sa.column("changed_at", sa.DateTime),
)


def _change(lead: int, request: str, field: str, new: str, minutes: int) -> dict[str, object]:
    at = _T0 + timedelta(minutes=minutes)
    return dict(
        lead_id=lead, request_id=request, field=field, old_value=None, new_value=new, changed_by="u", changed_at=at
    )


def _stored(db: Database) -> set[tuple[object, ...]]:
    with db.read() as conn:
        return {tuple(row) for row in conn.execute(sa.select(_CHANGES))}


def test_the_migrated_schema_is_the_one_the_models_describe(db: Database) -> None:
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def _histories(db: Database) -> dict[int, list[tuple[str, str]]]:
    """Each lead's history as the service reads it: (new value, field), newest first."""
    with db.read() as conn:
        newest = conn.execute(sa.select(_LEADS.c.auto_id, _LEADS.c.last_change_id).order_by(_LEADS.c.auto_id))
        return {
            lead: [(c["new_value"], c["field"]) for c in repository.history(conn, change, limit=10)]
            for lead, change in newest
        }


def test_history_keeps_every_change_through_the_move_to_write_order_and_a_chain_and_back(db: Database) -> None:
    migrate.downgrade(db, BEFORE_WRITE_ORDER)
    with db.write() as conn:
        conn.execute(
            sa.insert(_LEADS),
            [dict(auto_id=lead, prospect_id=f"p{lead}", created_on=_T0, modified_on=_T0) for lead in (1, 2, 3)],
        )
    # Across two leads (the third has none), one request id sent on two calls.
    changes = [
        _change(1, "r1", "FirstName", "a", minutes=1),
        _change(1, "r1", "LastName", "x", minutes=1),
        _change(2, "r2", "FirstName", "b", minutes=5),
        _change(1, "same", "FirstName", "c", minutes=7),
        _change(1, "same", "FirstName", "d", minutes=9),
    ]
    with db.write() as conn:
        conn.execute(sa.insert(_CHANGES), changes)
    before = _stored(db)
    assert len(before) == 5

    migrate.upgrade(db)
    assert _stored(db) == before
    assert _histories(db) == {
        1: [("d", "FirstName"), ("c", "FirstName"), ("x", "LastName"), ("a", "FirstName")],
        2: [("b", "FirstName")],
        3: [],
    }
    with db.read() as conn:
        assert sa.inspect(conn).get_indexes("lead_changes") == []
    # The service's next change to lead 2 takes the next id and goes on from its newest.
    key = Column("prospect_id", "ProspectId", "Prospect Id", unique=True)
    write = BulkWrite(
        "leads", key, [LAST_NAME], [LeadWrite(0, "p2", {0: "e"})], None, "u", "r3", _T0 + timedelta(minutes=11)
    )
    assert asyncio.run(db.write_bulk(write))[0].changed == ["LastName"]
    after = _stored(db)
    assert len(after) == 6
    assert _histories(db)[2] == [("e", "LastName"), ("b", "FirstName")]

    migrate.downgrade(db, BEFORE_WRITE_ORDER)
    assert _stored(db) == after
    migrate.upgrade(db)
    assert _stored(db) == after
    assert _histories(db)[2] == [("e", "LastName"), ("b", "FirstName")]
