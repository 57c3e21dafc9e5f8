"""Options.DryRun (spec 4.5): the answer a real call would give, and nothing written."""

from typing import Any

import pytest

from leadstore.db import Database
from tests.helpers import Api, LiveServer
from tests.leads.bulk_support import add_field_live, assert_consistent, snapshot


@pytest.fixture
def store(api: Api, db: Database, server: LiveServer) -> None:
    add_field_live(db, server, "mx_Region", "Text", mandatory=True)
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann", Phone="+91-9000000001", mx_Region="N")
    api.create_lead(EmailAddress="bob@example.com", FirstName="Bob", mx_Region="N")
    api.create_lead(EmailAddress="cat@example.com", FirstName="Cat", mx_Region="N")
    api.create_lead(EmailAddress="dan@example.com", FirstName="Dan", Mobile="+91-9000000009", mx_Region="N")


MIXED: list[dict[str, Any]] = [
    {"EmailAddress": "ann@example.com", "FirstName": "Annie", "Score": "7"},  # success
    {"EmailAddress": "ann@example.com", "FirstName": "Again"},  # same lead twice
    {"EmailAddress": "bob@example.com", "FirstName": "Bob"},  # success, nothing changes
    {"EmailAddress": "nobody@example.com", "FirstName": "X"},  # not found
    {"EmailAddress": "cat@example.com", "Phone": "+91 90000 00001"},  # unique value held by ann
    {"EmailAddress": "dan@example.com", "Mobile": "+91-9000000002", "Phone": "+91-9000000003"},  # success
    {"EmailAddress": "cat@example.com ", "Mobile": "+91-9000000002"},  # same lead as [4]
    {"EmailAddress": "bob@example.com", "Mobile": "+91-9000000002"},  # same lead as [2]
    {"EmailAddress": "nobody2@example.com", "Score": "x"},  # invalid value
    {"Fields": "empty"},  # Fields cannot be empty (replaced below)
    {"FirstName": "no key"},  # key missing
    {"EmailAddress": "dan@example.com", "mx_Region": ""},  # same lead as [5]
    {"EmailAddress": "CAT@example.com", "mx_Region": ""},  # same lead as [4]
]


def mixed_body(dry_run: bool) -> dict[str, Any]:
    leads: list[dict[str, Any]] = []
    for lead in MIXED:
        if "Fields" in lead:
            leads.append({"Fields": []})
        else:
            leads.append({"Fields": [{"Attribute": k, "Value": v} for k, v in lead.items()]})
    return {
        "SearchByKey": "EmailAddress",
        "Options": {"PushNonExistentLeadsToUnProcessedList": True, "DryRun": dry_run},
        "LeadPropertiesList": leads,
    }


def test_a_dry_run_answers_as_the_real_run_and_writes_nothing(api: Api, db: Database, store: None) -> None:
    before = snapshot(db)
    dry = api.post("/Lead/Bulk/UpdateV2", json=mixed_body(True))
    assert dry.status_code == 200, dry.text
    assert_consistent(dry.json(), len(MIXED), push=True)
    assert snapshot(db) == before

    real = api.post("/Lead/Bulk/UpdateV2", json=mixed_body(False))
    assert real.json() == dry.json()
    assert snapshot(db) != before
    status = real.json()["Status"]
    assert (status["SuccessCount"], status["UnProcessedCount"]) == (3, 1)


def test_a_dry_run_of_a_second_change_matches_its_real_run(api: Api, db: Database, store: None) -> None:
    """A dry run sees what earlier real calls wrote."""
    api.post("/Lead/Bulk/UpdateV2", json=mixed_body(False))
    before = snapshot(db)
    dry = api.post("/Lead/Bulk/UpdateV2", json=mixed_body(True))
    assert snapshot(db) == before
    real = api.post("/Lead/Bulk/UpdateV2", json=mixed_body(False))
    assert real.json() == dry.json()
    assert snapshot(db) == before  # the second real run changes nothing either: all values are in place


def test_a_dry_run_with_an_idempotency_key_is_not_remembered(api: Api, db: Database, store: None) -> None:
    before = snapshot(db)
    dry = api.post("/Lead/Bulk/UpdateV2", json=mixed_body(True), headers={"Idempotency-Key": "k-1"})
    assert dry.status_code == 200
    assert snapshot(db) == before
    real = api.post("/Lead/Bulk/UpdateV2", json=mixed_body(False), headers={"Idempotency-Key": "k-1"})
    assert real.status_code == 200, real.text
    assert real.json() == dry.json()
    assert snapshot(db) != before
