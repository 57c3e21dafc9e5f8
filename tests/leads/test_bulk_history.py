"""The change history of the bulk update (spec 4.3) and its read endpoint, Lead.ChangeHistory."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from leadstore.db import Database
from leadstore.leads.outcomes import REASON_CODE_MEANINGS
from leadstore.models import LeadChange
from tests.helpers import Api, make_user
from tests.leads.bulk_support import history_table


def changes(api: Api, prospect_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    response = api.get("/Lead.ChangeHistory", params={"leadId": prospect_id}, **kwargs)
    assert response.status_code == 200, response.text
    return list(response.json())


def without_creation(history: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [c for c in history if c["RequestId"] == request_id]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_every_changed_field_is_recorded_with_who_when_and_request_id(api: Api) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann", Score="3")
    started = now()
    response = api.bulk([{"EmailAddress": "ann@example.com", "FirstName": "Annie", "Score": "4", "LastName": "Lee"}])
    finished = now()
    request_id = response.headers["X-Request-Id"]
    assert request_id
    recorded = without_creation(changes(api, ann), request_id)
    assert sorted((c["Field"], c["OldValue"], c["NewValue"]) for c in recorded) == [
        ("FirstName", "Ann", "Annie"),
        ("LastName", None, "Lee"),
        ("Score", "3", "4"),
    ]
    for change in recorded:
        assert change["ChangedBy"] == api.user.user_id
        assert started <= change["ChangedOn"] <= finished
    assert api.lead(ann)["ModifiedOn"] == recorded[0]["ChangedOn"]


def test_the_request_id_given_by_the_client_is_recorded(api: Api) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com")
    response = api.bulk([{"EmailAddress": "ann@example.com", "FirstName": "A"}], headers={"X-Request-Id": "job-42.7"})
    assert response.headers["X-Request-Id"] == "job-42.7"
    assert [c["Field"] for c in without_creation(changes(api, ann), "job-42.7")] == ["FirstName"]


def test_a_request_id_used_again_still_records_every_change(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com")
    for name in ("A", "B"):
        response = api.bulk([{"EmailAddress": "ann@example.com", "FirstName": name}], headers={"X-Request-Id": "same"})
        assert response.json()["Status"]["SuccessCount"] == 1, response.text
    assert api.lead(ann)["FirstName"] == "B"
    recorded = without_creation(changes(api, ann), "same")
    assert [(c["OldValue"], c["NewValue"]) for c in recorded] == [("A", "B"), (None, "A")]


def test_an_update_that_changes_nothing_records_nothing(api: Api, db: Database) -> None:
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann", Phone="+91-9876543210")
    before = history_table(db)
    response = api.bulk([{"EmailAddress": "ANN@example.com", "FirstName": "Ann", "Phone": "9876543210"}])
    assert response.json()["Status"]["SuccessCount"] == 1
    assert history_table(db) == before


def test_only_the_fields_that_change_are_recorded(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann", Company="Acme")
    response = api.bulk([{"EmailAddress": "ann@example.com", "FirstName": "Ann", "Company": "Beta"}])
    recorded = without_creation(changes(api, ann), response.headers["X-Request-Id"])
    assert [(c["Field"], c["OldValue"], c["NewValue"]) for c in recorded] == [("Company", "Acme", "Beta")]


def test_failed_leads_record_nothing(api: Api, db: Database) -> None:
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    api.create_lead(EmailAddress="bob@example.com")
    before = history_table(db)
    response = api.bulk(
        [
            {"EmailAddress": "ann@example.com", "FirstName": "X", "Score": "bad"},
            {"EmailAddress": "ann@example.com", "FirstName": "Y"},
            {"EmailAddress": "bob@example.com", "Phone": "+91-1", "LastName": "Z"},
        ]
    )
    assert response.json()["Status"]["SuccessCount"] == 0
    assert history_table(db) == before


def test_history_rows_match_the_changes_exactly(api: Api, db: Database) -> None:
    api.create_lead(EmailAddress="ann@example.com", FirstName="Ann")
    api.create_lead(EmailAddress="bob@example.com", Score="1")
    before = history_table(db)
    response = api.bulk(
        [
            {"EmailAddress": "ann@example.com", "FirstName": "Ann", "DoNotCall": "true"},
            {"EmailAddress": "bob@example.com", "Score": "2.50", "Mobile": "+1 415 555 2671"},
        ]
    )
    request_id = response.headers["X-Request-Id"]
    new = [row for row in history_table(db) if row not in before]
    assert sorted((r["field"], r["old_value"], r["new_value"]) for r in new) == [
        ("DoNotCall", None, "1"),
        ("Mobile", None, "+1-4155552671"),
        ("Score", "1", "2.5"),
    ]
    assert {r["request_id"] for r in new} == {request_id}
    assert {r["changed_by"] for r in new} == {api.user.user_id}
    assert len({r["changed_at"] for r in new}) == 1


def test_change_history_is_newest_first(api: Api) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com")
    ids = []
    for name in ("One", "Two", "Three"):
        response = api.bulk([{"EmailAddress": "ann@example.com", "FirstName": name, "LastName": name}])
        ids.append(response.headers["X-Request-Id"])
    history = changes(api, ann)
    seen = [c["RequestId"] for c in history if c["RequestId"] in ids]
    assert seen == [ids[2], ids[2], ids[1], ids[1], ids[0], ids[0]]
    assert [c["ChangedOn"] for c in history] == sorted((c["ChangedOn"] for c in history), reverse=True)
    assert [c["NewValue"] for c in history if c["Field"] == "FirstName"][:3] == ["Three", "Two", "One"]


def test_change_history_is_in_the_order_written_whatever_the_clocks_said(api: Api, db: Database) -> None:
    """Workers on several hosts stamp changes with their own clocks; the history of a lead lists
    them in the order they were applied, so each OldValue is the NewValue listed after it."""
    ann = api.create_lead(EmailAddress="ann@example.com")
    first = api.bulk([{"EmailAddress": "ann@example.com", "FirstName": "One"}]).headers["X-Request-Id"]
    with db.write() as conn:  # as if written by a host whose clock runs an hour ahead
        conn.execute(
            update(LeadChange)
            .where(LeadChange.request_id == first)
            .values(changed_at=datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1))
        )
    api.bulk([{"EmailAddress": "ann@example.com", "FirstName": "Two"}])
    first_names = [(c["OldValue"], c["NewValue"]) for c in changes(api, ann) if c["Field"] == "FirstName"]
    assert first_names == [("One", "Two"), (None, "One")]


def test_change_history_of_a_lead_the_caller_may_not_see(api: Api, db: Database) -> None:
    ann = api.create_lead(EmailAddress="ann@example.com")
    seller = make_user(db, "SalesUser")
    response = api.get("/Lead.ChangeHistory", params={"leadId": ann}, as_=seller)
    assert (response.status_code, response.json()) == (200, [])
    missing = api.get("/Lead.ChangeHistory", params={"leadid": "no-such-lead"})
    assert (missing.status_code, missing.content) == (200, response.content)


def test_change_history_is_documented(api: Api) -> None:
    schema = api.http.get("/openapi.json").json()
    operation = schema["paths"]["/v2/LeadManagement.svc/Lead.ChangeHistory"]["get"]
    text = (operation.get("summary", "") + operation.get("description", "")).lower()
    assert "newest first" in text
    assert "request id" in text
    assert api.http.get("/docs").status_code == 200
    bulk = schema["paths"]["/v2/LeadManagement.svc/Lead/Bulk/UpdateV2"]["post"]
    for code, meaning in REASON_CODE_MEANINGS.items():
        assert f"`{code.value}`: {meaning}" in bulk["description"]


def test_leads_writing_the_same_fields_record_exactly_what_changed(api: Api, db: Database) -> None:
    """The everyday call, every lead writing the same text fields (one statement on PostgreSQL):
    each lead's history goes on from its own newest change, a lead that changes nothing keeps its
    ModifiedOn and records nothing, and a lead that fails or is not found writes nothing."""
    ann = api.create_lead(EmailAddress="ann@example.com", FirstName="Ann", LastName="Lee")
    api.create_lead(EmailAddress="bob@example.com", FirstName="Bob", LastName="Ray")
    cat = api.create_lead(EmailAddress="cat@example.com", FirstName="Cat", LastName="Fox")
    dan = api.create_lead(EmailAddress="dan@example.com", FirstName="Dan")
    api.bulk([{"EmailAddress": "ann@example.com", "FirstName": "Anna", "LastName": "Lee"}])
    cat_before, dan_before, history_before = api.lead(cat), api.lead(dan), history_table(db)
    response = api.bulk(
        [
            {"EmailAddress": "ann@example.com", "FirstName": "Annie", "LastName": "Low"},
            {"EmailAddress": "bob@example.com", "FirstName": "Bob", "LastName": "Roy"},
            {"EmailAddress": "cat@example.com", "FirstName": "Cat", "LastName": "Fox"},
            {"EmailAddress": "nobody@example.com", "FirstName": "N", "LastName": "N"},
            {"EmailAddress": "ANN@example.com", "FirstName": "Again", "LastName": "Again"},
            {"EmailAddress": "dan@example.com", "FirstName": "x" * 201, "LastName": "Long"},
        ]
    )
    details = response.json()["Details"]
    assert [item["Index"] for item in details["SuccessfulLeads"]] == [0, 1, 2]
    assert [(item["Index"], item["ReasonCode"]) for item in details["FailedLeads"]] == [
        (3, "LEAD_NOT_FOUND"),
        (4, "DUPLICATE_LEAD_IN_REQUEST"),
        (5, "TOO_LONG"),
    ]
    new = [row for row in history_table(db) if row not in history_before]
    assert sorted((r["field"], r["old_value"], r["new_value"]) for r in new) == [
        ("FirstName", "Anna", "Annie"),
        ("LastName", "Lee", "Low"),
        ("LastName", "Ray", "Roy"),
    ]
    newest = [(c["Field"], c["OldValue"], c["NewValue"]) for c in changes(api, ann)][:3]
    assert newest == [("LastName", "Lee", "Low"), ("FirstName", "Anna", "Annie"), ("FirstName", "Ann", "Anna")]
    assert api.lead(cat) == cat_before
    assert api.lead(dan) == dan_before
