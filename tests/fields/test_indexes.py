"""A lookup by any unique field is served by an index, so it stays fast at millions of leads.

The statements checked are the ones the service really runs: they are caught on their way to the
database while the read endpoints' functions, the write path's lookup and the unique-value check
run, then explained (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL) on a table with enough
rows, and fresh statistics, for the planner to choose as it would in production.
"""

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, text

from leadstore.auth.principal import Principal
from leadstore.catalog import Catalog
from leadstore.db import Database
from leadstore.fields.validation import normalize
from leadstore.leads import repository as repo
from leadstore.leads import search
from leadstore.models import LeadChange
from leadstore.users import repository as user_repo
from leadstore.users import service as user_service
from leadstore.users.service import Credentials
from tests.helpers import add_field

ROWS = 2000
UNIQUE = ["ProspectId", "EmailAddress", "Phone", "Mobile", "mx_Badge"]


@pytest.fixture
def owners(db: Database) -> list[Credentials]:
    with db.write() as conn:
        return [user_service.add_user(conn, f"owner{i}@example.com", "SalesUser") for i in range(20)]


@pytest.fixture
def catalog(db: Database, owners: list[Credentials]) -> Catalog:
    """Leads spread over 20 owners, as in an account with a sales team."""
    add_field(db, "mx_Badge", "Text", unique=True)
    catalog = Catalog(db)
    catalog.refresh()
    now = datetime(2026, 1, 31, 12, 0, 0)
    rows = [
        {
            "prospect_id": str(uuid.UUID(int=i)),
            "email_address": f"lead{i}@example.com",
            "phone": f"+91-98{i:08d}",
            "mobile": f"+91-97{i:08d}",
            "mx_badge": f"B-{i}",
            "first_name": f"Name{i % 50}",
            "owner_id": owners[i % len(owners)].user_id,
            "created_on": now,
            "modified_on": now,
        }
        for i in range(ROWS)
    ]
    with db.write() as conn:
        conn.execute(insert(catalog.fields.table), rows)
    return catalog


@pytest.fixture(params=["no statistics", "fresh statistics"])
def statistics(request: pytest.FixtureRequest, db: Database, catalog: Catalog) -> None:
    """A new SQLite database has no planner statistics until someone runs ANALYZE; PostgreSQL
    gathers them in the background. The plans must use the indexes either way."""
    if request.param == "fresh statistics":
        with db.write() as conn:
            conn.exec_driver_sql("ANALYZE")


def principal_of(db: Database, user: Credentials) -> Principal:
    with db.read() as conn:
        row = user_repo.get_by_access_key(conn, user.access_key)
        assert row is not None
        return user_service.load_principal(conn, dict(row))


@pytest.fixture(params=["Administrator", "SalesUser"])
def principal(request: pytest.FixtureRequest, db: Database, admin: Credentials, owners: list[Credentials]) -> Principal:
    """An unrestricted caller, and one whose reads are scoped to its own leads (a twentieth)."""
    return principal_of(db, admin if request.param == "Administrator" else owners[0])


Statement = tuple[str, Any]


@pytest.fixture
def caught(db: Database) -> Iterator[list[Statement]]:
    statements: list[Statement] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and " leads" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", catch)
    yield statements
    event.remove(db.engine, "before_cursor_execute", catch)


def plan(conn: Connection, statement: str, parameters: Any) -> str:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(str(row[-1]) for row in rows)
    return "\n".join(str(row[0]) for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))


def assert_served_by_index(db: Database, statements: list[Statement], columns: list[str]) -> None:
    """Each statement finds its rows through an index on each of ``columns``, scanning nothing."""
    assert statements, "no statement reached the database"
    with db.read() as conn:
        sqlite = conn.dialect.name == "sqlite"
        for statement, parameters in statements:
            explained = plan(conn, statement, parameters)
            where = f"{statement}\n-- plan:\n{explained}"
            assert not re.search(r"\bSCAN leads\b|Seq Scan", explained), where
            for column in columns:
                if sqlite:
                    pattern = rf"SEARCH leads USING (COVERING )?INDEX \S+ \({column}=\?\)"
                else:
                    pattern = rf"Index Cond: .*\b{column}\b"
                assert re.search(pattern, explained), where


def value_of(name: str) -> str:
    return {
        "ProspectId": str(uuid.UUID(int=1234)),
        "EmailAddress": "Lead1234@Example.com",
        "Phone": "+91 98 0000 1234",
        "Mobile": "+91-9700001234",
        "mx_Badge": "B-1234",
    }[name]


# The read endpoint that looks a lead up by this field alone, besides Leads.Get.
READS: dict[str, Callable[[Catalog, Principal, str], list[Any]]] = {
    "ProspectId": search.get_by_id,
    "EmailAddress": search.get_by_email,
}


@pytest.mark.parametrize("name", UNIQUE)
def test_lookup_by_a_unique_field_uses_its_index(
    db: Database, catalog: Catalog, statistics: None, principal: Principal, caught: list[Statement], name: str
) -> None:
    """Leads.GetById, Leads.GetByEmailaddress and Leads.Get read by the field, and
    Lead.CreateOrUpdate's answer finds the lead by it."""
    field_ = catalog.fields.get(name)
    assert field_ is not None
    raw = value_of(name)
    visible = 1 if principal.role == "Administrator" else 0
    if name in READS:
        assert len(READS[name](catalog, principal, raw)) == visible
    assert len(search.search(catalog, principal, search.LeadQuery(lookup_name=name, lookup_value=raw))) == visible
    value = normalize(field_, raw, catalog.account.phone_rules)
    with db.write() as conn:
        assert len(repo.find(conn, catalog.fields.table, field_.column, [value], principal)) == visible
    assert len(caught) == (3 if name in READS else 2)
    assert_served_by_index(db, caught, [field_.column])


def test_lookup_by_phone_uses_the_phone_and_mobile_indexes(
    db: Database, catalog: Catalog, statistics: None, principal: Principal, caught: list[Statement]
) -> None:
    """RetrieveLeadByPhoneNumber searches both phone fields."""
    found = search.get_by_phone(catalog, principal, "+91-9800001234")
    assert len(found) == (1 if principal.role == "Administrator" else 0)
    assert len(caught) == 2
    assert_served_by_index(db, caught[:1], ["phone"])
    assert_served_by_index(db, caught[1:], ["mobile"])


def test_a_full_scan_would_be_noticed(db: Database, catalog: Catalog, caught: list[Statement]) -> None:
    """The check above can fail: a lookup by a field without an index is reported."""
    with db.read() as conn:
        conn.execute(text("SELECT auto_id FROM leads WHERE job_title = 'x'"))
    with pytest.raises(AssertionError):
        assert_served_by_index(db, caught, ["job_title"])


def test_the_history_of_a_lead_is_read_along_its_chain_by_primary_key(db: Database, statistics: None) -> None:
    """Lead.ChangeHistory follows one lead's chain of changes, newest first, each by its id: no
    scan of the history, however long it is."""
    now = datetime(2026, 1, 31, 12, 0, 0)
    leads = 500
    rows = [
        {
            "id": i + 1,
            "previous_id": i + 1 - leads if i >= leads else None,
            "lead_id": i % leads,
            "request_id": f"r{i}",
            "field": "FirstName",
            "changed_by": "u",
            "changed_at": now,
        }
        for i in range(ROWS * 5)
    ]
    with db.write() as conn:
        conn.execute(insert(LeadChange), rows)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE lead_changes")
    statements: list[Statement] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        statements.append((statement, parameters))

    with db.read() as conn:
        event.listen(conn, "before_cursor_execute", catch)
        assert [c["request_id"] for c in repo.history(conn, 9508, limit=3)] == ["r9507", "r9007", "r8507"]
        event.remove(conn, "before_cursor_execute", catch)
        [(statement, parameters)] = statements
        explained = plan(conn, statement, parameters)
    if db.engine.dialect.name == "sqlite":
        assert re.search(r"SEARCH \w+ USING INTEGER PRIMARY KEY \(rowid=\?\)", explained), explained
        assert not re.search(r"SCAN (lead_changes|earlier)\b", explained), explained
    else:
        assert re.search(r"Index Scan using pk_lead_changes", explained), explained
        assert "Seq Scan on lead_changes" not in explained, explained
