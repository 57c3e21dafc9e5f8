"""Undo a call (spec 9): fields still holding what the call wrote go back, fields changed since
are kept and named with the request that changed them; per lead atomic; the caller's
permissions as they are now; a revert is itself a call that can be reverted."""

import uuid
from functools import partial
from typing import Any

import pytest

from leadstore.db import Database
from leadstore.users import service as user_service
from tests.access.conftest import add_template
from tests.helpers import Api, add_live_field, make_user, wait_until
from tests.leads.bulk_support import no_rate_limit, snapshot
from tests.leads.test_bulk_concurrency import in_threads

__all__ = ["no_rate_limit"]

REVERT = "/Lead/Bulk/Revert"


def bulk(api: Api, leads: list[dict[str, str]], **kwargs: Any) -> str:
    """A bulk call by email; its request id."""
    request_id = uuid.uuid4().hex
    response = api.bulk(leads, headers={"X-Request-Id": request_id}, **kwargs)
    assert response.status_code == 200, response.text
    assert response.json()["Status"]["FailureCount"] == 0, response.text
    return request_id


def revert(api: Api, request_id: str, *, as_: Any = None, **options: Any) -> tuple[int, dict[str, Any], str]:
    own_id = uuid.uuid4().hex
    body: dict[str, Any] = {"RequestId": request_id}
    if options:
        body["Options"] = options
    response = api.post(REVERT, json=body, as_=as_, headers={"X-Request-Id": own_id})
    return response.status_code, response.json(), own_id


@pytest.fixture
def leads(api: Api) -> dict[str, str]:
    return {
        name: api.create_lead(EmailAddress=f"{name}@example.com", FirstName=name.title(), JobTitle="Staff")
        for name in ("ann", "bob", "cy")
    }


def test_a_call_is_undone_field_by_field_and_a_field_changed_since_is_kept(api: Api, leads: dict[str, str]) -> None:
    call = bulk(
        api,
        [
            {"EmailAddress": "ann@example.com", "FirstName": "Annabel", "JobTitle": "CEO"},
            {"EmailAddress": "nobody@example.com", "FirstName": "X"},
            {"EmailAddress": "bob@example.com", "JobTitle": "CTO"},
        ],
        options={"PushNonExistentLeadsToUnProcessedList": True},
    )
    later = bulk(api, [{"EmailAddress": "ann@example.com", "JobTitle": "Chair"}])
    status, answer, own_id = revert(api, call)
    assert status == 200, answer
    assert answer["Status"] == {"TotalCount": 2, "SuccessCount": 2, "FailureCount": 0, "Message": "Processed"}
    assert answer["Details"]["SuccessfulLeads"] == [
        {
            "Identifier": "ProspectId",
            "IdentifierValue": leads["ann"],
            "Index": 0,
            "Reverted": ["FirstName"],
            "Kept": [{"Attribute": "JobTitle", "ChangedBy": later}],
        },
        {"Identifier": "ProspectId", "IdentifierValue": leads["bob"], "Index": 2, "Reverted": ["JobTitle"], "Kept": []},
    ]
    assert (api.lead(leads["ann"])["FirstName"], api.lead(leads["ann"])["JobTitle"]) == ("Ann", "Chair")
    assert api.lead(leads["bob"])["JobTitle"] == "Staff"
    history = api.get("/Lead.ChangeHistory", params={"leadId": leads["bob"]}).json()
    assert (history[0]["Field"], history[0]["OldValue"], history[0]["NewValue"]) == ("JobTitle", "CTO", "Staff")
    assert history[0]["RequestId"] == own_id

    status, again, _ = revert(api, own_id)  # a revert is a call like any other
    assert status == 200, again
    assert api.lead(leads["bob"])["JobTitle"] == "CTO"
    assert api.lead(leads["ann"])["FirstName"] == "Annabel"


def test_lead_update_and_create_or_update_are_revertable_and_created_leads_stay(
    api: Api, leads: dict[str, str]
) -> None:
    update_id = uuid.uuid4().hex
    body = [{"Attribute": "Company", "Value": "Zenith"}]
    api.post("/Lead.Update", params={"leadId": leads["cy"]}, json=body, headers={"X-Request-Id": update_id})
    status, answer, _ = revert(api, update_id)
    assert status == 200, answer
    assert answer["Details"]["SuccessfulLeads"][0]["Index"] == 0
    assert api.lead(leads["cy"])["Company"] is None

    create_id = uuid.uuid4().hex
    new = [{"Attribute": "EmailAddress", "Value": "new@example.com"}]
    assert api.post("/Lead.CreateOrUpdate", json=new, headers={"X-Request-Id": create_id}).status_code == 200
    status, answer, _ = revert(api, create_id)
    assert status == 400, answer  # it changed no existing lead
    assert api.get("/Leads.GetByEmailaddress", params={"emailaddress": "new@example.com"}).json() != []


def test_another_users_request_id_is_answered_as_an_unknown_one(api: Api, db: Database, leads: dict[str, str]) -> None:
    call = bulk(api, [{"EmailAddress": "ann@example.com", "FirstName": "A2"}])
    seller = make_user(db, "SalesUser")
    theirs = revert(api, call, as_=seller)
    unknown = revert(api, uuid.uuid4().hex, as_=seller)
    assert theirs[0] == unknown[0] == 400
    assert theirs[1]["ExceptionType"] == "MXInvalidInputException"
    assert theirs[1]["ExceptionMessage"].replace(call, "<id>") == unknown[1]["ExceptionMessage"].replace(
        unknown[1]["ExceptionMessage"].split("'")[1], "<id>"
    )
    assert api.lead(leads["ann"])["FirstName"] == "A2"
    admin = make_user(db, "Administrator")
    assert revert(api, call, as_=admin)[0] == 200  # an Administrator reverts anyone's calls
    assert api.lead(leads["ann"])["FirstName"] == "Ann"


def test_a_dry_run_reports_and_writes_nothing(api: Api, db: Database, leads: dict[str, str]) -> None:
    call = bulk(api, [{"EmailAddress": "ann@example.com", "FirstName": "A2"}])
    before = snapshot(db)
    status, answer, _ = revert(api, call, DryRun=True)
    assert status == 200
    assert answer["Details"]["SuccessfulLeads"][0]["Reverted"] == ["FirstName"]
    assert snapshot(db) == before


def test_permissions_apply_as_they_are_now(api: Api, db: Database, leads: dict[str, str]) -> None:
    seller = make_user(db, "SalesUser")
    mine = api.create_lead(EmailAddress="mine@example.com", OwnerId=seller.user_id, JobTitle="Staff")
    call = uuid.uuid4().hex
    answer = api.bulk(
        [{"EmailAddress": "mine@example.com", "JobTitle": "Lead"}],
        as_=seller,
        headers={"X-Request-Id": call},
    ).json()
    assert answer["Status"]["SuccessCount"] == 1
    api.post("/Lead.Update", params={"leadId": mine}, json=[{"Attribute": "OwnerId", "Value": api.user.user_id}])
    status, reverted, _ = revert(api, call, as_=seller)
    assert status == 200
    failed = reverted["Details"]["FailedLeads"][0]
    assert (failed["ReasonCode"], failed["IdentifierValue"], failed["Index"]) == ("LEAD_NOT_FOUND", mine, 0)
    assert api.lead(mine)["JobTitle"] == "Lead"


def test_a_field_now_read_only_or_an_old_unique_value_taken_fails_that_lead(
    api: Api, db: Database, leads: dict[str, str]
) -> None:
    add_live_field(api, db, "mx_Code", unique=True)
    api.post("/Lead.Update", params={"leadId": leads["ann"]}, json=[{"Attribute": "mx_Code", "Value": "A-1"}])
    call = bulk(
        api,
        [
            {"EmailAddress": "ann@example.com", "mx_Code": "A-2"},
            {"EmailAddress": "bob@example.com", "JobTitle": "CTO"},
        ],
    )
    api.post("/Lead.Update", params={"leadId": leads["cy"]}, json=[{"Attribute": "mx_Code", "Value": "A-1"}])
    status, answer, _ = revert(api, call)
    assert status == 200
    assert [(f["Index"], f["ReasonCode"]) for f in answer["Details"]["FailedLeads"]] == [(0, "DUPLICATE_VALUE")]
    assert api.lead(leads["ann"])["mx_Code"] == "A-2"
    assert api.lead(leads["bob"])["JobTitle"] == "Staff"

    add_template(db, "Titles", "all")
    add_template(db, "NoTitles", "all", read_only=["JobTitle"])
    marketer = make_user(db, "MarketingUser", template="Titles")
    call = uuid.uuid4().hex
    changed = [{"EmailAddress": "bob@example.com", "JobTitle": "CFO"}]
    assert api.bulk(changed, as_=marketer, headers={"X-Request-Id": call}).json()["Status"]["SuccessCount"] == 1
    with db.write() as conn:
        user_service.set_template(conn, marketer.email, "NoTitles")
    wait_until(lambda: revert(api, call, as_=marketer, DryRun=True)[1]["Status"]["FailureCount"] == 1)
    status, answer, _ = revert(api, call, as_=marketer)
    assert status == 200
    failed = answer["Details"]["FailedLeads"][0]
    assert (failed["ReasonCode"], failed["Index"]) == ("FIELD_READ_ONLY", 0)
    assert "JobTitle" in failed["Reason"]
    assert api.lead(leads["bob"])["JobTitle"] == "CFO"


def test_a_revert_takes_an_idempotency_key(api: Api, db: Database, leads: dict[str, str]) -> None:
    call = bulk(api, [{"EmailAddress": "ann@example.com", "FirstName": "A2"}])
    headers = {"Idempotency-Key": "undo-1"}
    first = api.post(REVERT, json={"RequestId": call}, headers=headers)
    api.post("/Lead.Update", params={"leadId": leads["ann"]}, json=[{"Attribute": "FirstName", "Value": "A2"}])
    again = api.post(REVERT, json={"RequestId": call}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert api.lead(leads["ann"])["FirstName"] == "A2"  # not applied a second time


@pytest.mark.parametrize(
    "body", [[], {"RequestId": ""}, {"RequestId": 3}, {"RequestId": "x", "Options": {"DryRun": "yes"}}]
)
def test_a_malformed_revert_is_400(api: Api, body: Any) -> None:
    response = api.post(REVERT, json=body)
    assert response.status_code == 400
    assert response.json()["ExceptionType"] == "MXInvalidInputException"


def test_a_call_whose_every_field_changed_since_keeps_them_all(api: Api, leads: dict[str, str]) -> None:
    call = bulk(api, [{"EmailAddress": "ann@example.com", "JobTitle": "CEO"}])
    later = bulk(api, [{"EmailAddress": "ann@example.com", "JobTitle": "Chair"}])
    status, answer, _ = revert(api, call)
    assert status == 200, answer
    assert answer["Details"]["SuccessfulLeads"][0]["Reverted"] == []
    assert answer["Details"]["SuccessfulLeads"][0]["Kept"] == [{"Attribute": "JobTitle", "ChangedBy": later}]
    assert api.lead(leads["ann"])["JobTitle"] == "Chair"


def _race(i: int, client: Api, *, outcome: dict[str, Any], call: str, title: str) -> None:
    if i == 0:
        outcome["revert"] = revert(client, call)
    else:
        outcome["new"] = bulk(client, [{"EmailAddress": "ann@example.com", "JobTitle": title}])


def test_a_revert_racing_a_new_call_loses_neither(api: Api, leads: dict[str, str], no_rate_limit: None) -> None:
    """The new call's change is never undone; a lead the revert could not read and write in one
    go fails as PRECONDITION_FAILED rather than overwriting it, and a second revert finishes it."""
    for round_ in range(6):
        call = bulk(api, [{"EmailAddress": "ann@example.com", "FirstName": f"A{round_}", "JobTitle": f"T{round_}"}])
        outcome: dict[str, Any] = {}
        in_threads(2, partial(_race, outcome=outcome, call=call, title=f"New{round_}"), api)
        status, answer, _ = outcome["revert"]
        assert status == 200, answer
        assert api.lead(leads["ann"])["JobTitle"] == f"New{round_}"  # the new call's change stays
        if answer["Status"]["SuccessCount"] == 0:
            assert answer["Details"]["FailedLeads"][0]["ReasonCode"] == "PRECONDITION_FAILED"
            status, answer, _ = revert(api, call)
            assert answer["Status"]["SuccessCount"] == 1, answer
        assert api.lead(leads["ann"])["FirstName"] == "Ann"  # the revert's change is there too
        assert api.lead(leads["ann"])["JobTitle"] == f"New{round_}"
        api.post("/Lead.Update", params={"leadId": leads["ann"]}, json=[{"Attribute": "JobTitle", "Value": "Staff"}])
