"""The bulk update's cost in statements does not grow with the leads stored or the leads sent
(bulk.py's module docstring): counted on the live server's engine."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import event, insert

from leadstore.db import Database
from leadstore.fields.registry import FieldRegistry
from tests.helpers import Api, LiveServer
from tests.leads.bulk_support import leads_table, no_rate_limit

__all__ = ["no_rate_limit"]


@contextmanager
def counting(server: LiveServer) -> Iterator[list[str]]:
    engine = server.server.config.app.state.leadstore.db.engine
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Transaction control (BEGIN, SAVEPOINT, COMMIT) depends on how commits are grouped, and the
        # server looks for administrative changes in the background.
        data = statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"))
        if data and "catalog_revision" not in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def store_leads(db: Database, count: int, start: int = 0) -> None:
    """Leads written straight to the table: only their number matters here."""
    table = FieldRegistry.build(()).table
    now = datetime(2026, 1, 1)
    rows = [
        {
            "prospect_id": str(uuid4()),
            "email_address": f"s{i}@example.com",
            "created_on": now,
            "modified_on": now,
        }
        for i in range(start, start + count)
    ]
    with db.write() as conn:
        conn.execute(insert(table), rows)


def call(api: Api, server: LiveServer, first: int, count: int, tag: str) -> list[str]:
    leads = [
        {
            "EmailAddress": f"s{i}@example.com",
            "FirstName": f"{tag}{i}",
            "Mobile": f"+91-98{i:08d}" if tag == "a" else f"+91-97{i:08d}",
            "Score": str(i),
        }
        for i in range(first, first + count)
    ]
    leads.append({"EmailAddress": "missing@example.com", "FirstName": "X"})
    with counting(server) as statements:
        response = api.bulk(leads)
    assert response.status_code == 200, response.text
    assert response.json()["Status"]["SuccessCount"] == count
    return statements


def test_statements_per_call_do_not_grow_with_leads_sent_or_stored(
    api: Api, db: Database, server: LiveServer, no_rate_limit: None
) -> None:
    store_leads(db, 30)
    api.get("/Leads.GetById", params={"id": "warm-up"})  # the caller's keys are checked once, then cached
    small = call(api, server, 0, 2, "a")
    full = call(api, server, 2, 24, "a")
    store_leads(db, 3000, start=30)
    large_store = call(api, server, 100, 24, "b")
    assert len(leads_table(db)) == 3030
    assert len(small) == len(full) == len(large_store), (small, full, large_store)
    # One lookup of the leads, one per unique field changed, one UPDATE per set of changed columns,
    # one INSERT of history rows.
    assert len(full) <= 6, full


def test_every_call_is_written_by_the_engine_and_on_postgresql_in_as_few_round_trips_as_it_needs(
    api: Api, db: Database, server: LiveServer, no_rate_limit: None
) -> None:
    """PostgreSQL: a call that writes no unique field nor OwnerId is one statement in autocommit
    mode, whatever fields its leads write; one that does is checked first in the same
    transaction; one with an Idempotency-Key stores its answer in that transaction. SQLite:
    every call is written by the server's writer process (tests/sqlite/test_writer.py)."""
    store_leads(db, 5)
    api.get("/Leads.GetById", params={"id": "warm-up"})  # the caller's keys are checked once, then cached
    engine = server.server.config.app.state.leadstore.db.engine
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        data = statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "WITH"))
        if data and "catalog_revision" not in statement:
            autocommit = getattr(conn.connection.driver_connection, "autocommit", False)  # psycopg's flag
            seen.append((statement.split()[0].upper(), autocommit))

    def statements(leads: list[dict[str, str]], found: int, **headers: str) -> list[tuple[str, bool]]:
        seen.clear()
        event.listen(engine, "before_cursor_execute", record)
        try:
            response = api.bulk(leads, headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert response.status_code == 200, response.text
        assert response.json()["Status"]["SuccessCount"] == found, response.text
        return list(seen)

    same_fields = [{"EmailAddress": f"s{i}@example.com", "FirstName": "A", "JobTitle": "B"} for i in range(3)]
    missing = {"EmailAddress": "missing@example.com", "FirstName": "X", "JobTitle": "Y"}
    different = [{"EmailAddress": "s1@example.com", "FirstName": "D", "Score": "4"}, {"EmailAddress": "s2@example.com"}]
    calls = {
        "everyday": statements([*same_fields, missing], 3),
        "numbers and different fields": statements(different, 2),
        "unique": statements([{"EmailAddress": "s0@example.com", "Mobile": "+91-9800000001"}], 1),
        "owner": statements([{"EmailAddress": "s0@example.com", "OwnerId": api.user.user_id}], 1),
        "key": statements([{"EmailAddress": "s3@example.com", "FirstName": "K"}], 1, **{"Idempotency-Key": "k-1"}),
    }
    if db.is_sqlite:
        assert calls == {name: [] for name in calls}
        return
    assert calls["everyday"] == calls["numbers and different fields"] == [("WITH", True)]
    for name in ("unique", "owner"):
        # The leads locked and read, the values checked (one query per unique field or the
        # owners), then the one statement.
        assert [s for s, _ in calls[name]] == ["SELECT", "SELECT", "WITH"], (name, calls[name])
        assert not any(autocommit for _, autocommit in calls[name]), (name, calls[name])
    assert calls["key"] == [("WITH", False), ("INSERT", False)]  # in one transaction
