"""Shared pieces of the bulk-update tests: reading the database back, and changing account
settings on the running server."""

from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from leadstore import catalog
from leadstore.db import Database
from leadstore.models import LeadChange
from tests.helpers import LiveServer, add_field, wait_until

NOT_FOUND = "Lead does not exist in the system or You do not have permission to update the lead"
BULK = "/Lead/Bulk/UpdateV2"


def leads_table(db: Database) -> list[dict[str, Any]]:
    """Every stored lead, in id order, every column."""
    with db.read() as conn:
        return [dict(row) for row in conn.execute(text("SELECT * FROM leads ORDER BY auto_id")).mappings()]


def history_table(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        query = select(LeadChange.__table__).order_by(LeadChange.lead_id, LeadChange.changed_at, LeadChange.field)
        return [dict(row) for row in conn.execute(query).mappings()]


def snapshot(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Everything a bulk call may write: the leads and their history."""
    return leads_table(db), history_table(db)


def set_setting(db: Database, server: LiveServer, key: str, value: str) -> None:
    """Change an account setting and wait until the running server uses it."""
    with db.write() as conn:
        catalog.save_setting(conn, key, value)
    expected = catalog.parse_setting(key, value)
    app = server.server.config.app
    wait_until(lambda: getattr(app.state.leadstore.catalog.account, key) == expected)


def add_field_live(db: Database, server: LiveServer, schema_name: str, data_type: str = "Text", **options: Any) -> None:
    """Add a custom field and wait until the running server knows it."""
    add_field(db, schema_name, data_type, **options)
    app = server.server.config.app
    wait_until(lambda: app.state.leadstore.catalog.fields.get(schema_name) is not None)


@pytest.fixture
def no_rate_limit(db: Database, server: LiveServer) -> None:
    """Tests that make many calls must not meet the rate limit (spec section 2 has its own tests)."""
    set_setting(db, server, "rate_limit_calls", "1000000")


def body(leads: list[dict[str, str | None]], **top: Any) -> dict[str, Any]:
    """A bulk request body with each lead given as {schema name: value}."""
    return {
        **top,
        "LeadPropertiesList": [{"Fields": [{"Attribute": k, "Value": v} for k, v in lead.items()]} for lead in leads],
    }


def items(answer: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return list(answer["Details"].get(name, []))


def assert_consistent(answer: dict[str, Any], sent: int, push: bool = False) -> None:
    """The rules of spec 4.4 that hold for every answer."""
    status, details = answer["Status"], answer["Details"]
    assert status["TotalCount"] == sent
    lists = {"SuccessfulLeads": "SuccessCount", "FailedLeads": "FailureCount", "UnProcessedLeads": "UnProcessedCount"}
    for name, items_ in details.items():
        assert name in lists
        assert items_, f"{name} is present but empty"
    assert status["SuccessCount"] == len(details.get("SuccessfulLeads", []))
    assert status["FailureCount"] == len(details.get("FailedLeads", []))
    if push:
        assert status["UnProcessedCount"] == len(details.get("UnProcessedLeads", []))
    else:
        assert "UnProcessedCount" not in status
        assert "UnProcessedLeads" not in details
    assert status["SuccessCount"] + status["FailureCount"] + status.get("UnProcessedCount", 0) == sent
    indexes = sorted(item["Index"] for items_ in details.values() for item in items_)
    assert indexes == list(range(sent)), "every lead ends in exactly one list"
    assert status["Message"] == ("Processed" if status["SuccessCount"] else "Error")
    for name, items_ in details.items():
        for item in items_:
            assert isinstance(item["Identifier"], str)
            if name == "SuccessfulLeads":
                assert "Reason" not in item
                assert "ReasonCode" not in item
            else:
                assert isinstance(item["Reason"], str)
                assert item["Reason"]
                assert isinstance(item["ReasonCode"], str)


def assert_invalid_input(response: httpx.Response, *fragments: str) -> None:
    """A whole-request 400 in LeadSquared's envelope whose message names ``fragments``."""
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["Status"] == "Error"
    assert answer["ExceptionType"] == "MXInvalidInputException"
    for fragment in fragments:
        assert fragment in answer["ExceptionMessage"], answer["ExceptionMessage"]
