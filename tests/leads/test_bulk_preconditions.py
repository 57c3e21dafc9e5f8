"""Per-lead preconditions (spec 10): a lead sent with ``Expect`` is written only if its fields
hold the expected values now, checked in the write's own transaction."""

from typing import Any

import pytest

from leadstore.db import Database
from tests.access.conftest import add_template, server_state
from tests.helpers import Api, LiveServer, add_field, make_user, wait_until
from tests.leads.bulk_support import no_rate_limit, snapshot
from tests.leads.test_bulk_concurrency import in_threads

__all__ = ["no_rate_limit"]


def pairs(**fields: str | None) -> list[dict[str, Any]]:
    return [{"Attribute": k, "Value": v} for k, v in fields.items()]


def call(api: Api, *leads: dict[str, Any], **options: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"SearchByKey": "EmailAddress", "LeadPropertiesList": list(leads)}
    if options:
        body["Options"] = options
    response = api.post("/Lead/Bulk/UpdateV2", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def lead(email: str, expect: list[dict[str, Any]] | None = None, **fields: str) -> dict[str, Any]:
    item: dict[str, Any] = {"Fields": pairs(EmailAddress=email, **fields)}
    if expect is not None:
        item["Expect"] = expect
    return item


@pytest.fixture
def ann(api: Api) -> str:
    return api.create_lead(EmailAddress="ann@example.com", FirstName="Ann", JobTitle="CEO", Score="7")


def test_a_lead_whose_fields_hold_the_expected_values_is_written(api: Api, ann: str) -> None:
    answer = call(api, lead("ann@example.com", pairs(JobTitle="CEO", Score="7.0"), JobTitle="CTO"))
    assert answer["Details"]["SuccessfulLeads"][0]["ChangedFields"] == ["JobTitle"]
    assert api.lead(ann)["JobTitle"] == "CTO"


def test_a_lead_that_changed_meanwhile_fails_naming_the_field_and_its_value(api: Api, db: Database, ann: str) -> None:
    before = snapshot(db)
    answer = call(
        api,
        lead("ann@example.com", pairs(FirstName="Ann", JobTitle="CFO"), JobTitle="CTO"),
        lead("nobody@example.com", pairs(JobTitle="CFO"), JobTitle="CTO"),
    )
    failed = answer["Details"]["FailedLeads"]
    assert [(f["Index"], f["ReasonCode"]) for f in failed] == [(0, "PRECONDITION_FAILED"), (1, "LEAD_NOT_FOUND")]
    assert "JobTitle" in failed[0]["Reason"]
    assert "'CEO'" in failed[0]["Reason"]
    assert snapshot(db) == before


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_null_and_empty_expect_an_empty_field(api: Api, ann: str, empty: str | None) -> None:
    answer = call(api, lead("ann@example.com", pairs(Company=empty), Company="Zenith"))
    assert answer["Status"]["SuccessCount"] == 1
    again = call(api, lead("ann@example.com", pairs(Company=empty), Company="Other"))
    assert again["Details"]["FailedLeads"][0]["ReasonCode"] == "PRECONDITION_FAILED"
    assert "'Zenith'" in again["Details"]["FailedLeads"][0]["Reason"]


def test_expected_values_are_compared_in_their_stored_form(api: Api) -> None:
    api.create_lead(EmailAddress="bo@example.com", Mobile="+91-9812345671", ProspectStage="Customer")
    expect = pairs(EmailAddress="BO@Example.com", Mobile="+91 98123 45671", ProspectStage="customer")
    answer = call(api, lead("bo@example.com", expect, FirstName="Bo"))
    assert answer["Status"]["SuccessCount"] == 1, answer


def test_modified_on_serves_as_a_version(api: Api, ann: str) -> None:
    """A read-only, server-set field may be expected: the lead as it was read, or nothing."""
    version = api.lead(ann)["ModifiedOn"]
    first = call(api, lead("ann@example.com", pairs(ModifiedOn=version), JobTitle="COO"))
    assert first["Status"]["SuccessCount"] == 1
    if api.lead(ann)["ModifiedOn"] == version:  # the same second: the change is there all the same
        assert api.lead(ann)["JobTitle"] == "COO"
        return
    second = call(api, lead("ann@example.com", pairs(ModifiedOn=version), JobTitle="CMO"))
    assert second["Details"]["FailedLeads"][0]["ReasonCode"] == "PRECONDITION_FAILED"
    assert api.lead(ann)["JobTitle"] == "COO"


def test_a_field_the_caller_may_not_read_is_an_unknown_attribute(
    api: Api, db: Database, server: LiveServer, ann: str
) -> None:
    add_field(db, "mx_Salary")
    add_template(db, "NoPay", "all", hidden=["mx_Salary"])
    clerk = make_user(db, "SalesUser", template="NoPay")
    wait_until(lambda: server_state(server).catalog.fields.get("mx_Salary") is not None)

    def failure(name: str) -> dict[str, Any]:
        body = {"SearchByKey": "EmailAddress", "LeadPropertiesList": [lead("ann@example.com", pairs(**{name: ""}))]}
        item = api.post("/Lead/Bulk/UpdateV2", json=body, as_=clerk).json()["Details"]["FailedLeads"][0]
        return {**item, "Reason": item["Reason"].replace(name, "<field>")}

    assert failure("mx_Salary")["ReasonCode"] == "UNKNOWN_ATTRIBUTE"
    assert failure("mx_Salary") == failure("mx_Nothing")


@pytest.mark.parametrize(
    ("expect", "where"),
    [
        ({"JobTitle": "CEO"}, "LeadPropertiesList[0].Expect"),
        ([{"Attribute": "JobTitle"}], "LeadPropertiesList[0].Expect[0]"),
        ([{"Attribute": 3, "Value": "x"}], "LeadPropertiesList[0].Expect[0].Attribute"),
    ],
)
def test_a_malformed_expect_is_400_naming_the_position(api: Api, expect: Any, where: str) -> None:
    body = {"LeadPropertiesList": [{"Fields": pairs(EmailAddress="a@example.com"), "Expect": expect}]}
    response = api.post("/Lead/Bulk/UpdateV2", json={"SearchByKey": "EmailAddress", **body})
    assert response.status_code == 400
    assert where in response.json()["ExceptionMessage"]


def test_a_dry_run_checks_preconditions_too(api: Api, db: Database, ann: str) -> None:
    before = snapshot(db)
    answer = call(
        api,
        lead("ann@example.com", pairs(JobTitle="CFO"), JobTitle="CTO"),
        DryRun=True,
    )
    assert answer["Details"]["FailedLeads"][0]["ReasonCode"] == "PRECONDITION_FAILED"
    assert snapshot(db) == before


def test_two_callers_that_read_the_same_values_cannot_both_win(api: Api, ann: str, no_rate_limit: None) -> None:
    outcomes: dict[int, str] = {}

    def work(i: int, client: Api) -> None:
        answer = call(client, lead("ann@example.com", pairs(JobTitle="CEO"), JobTitle=f"Title {i}"))
        details = answer["Details"]
        outcomes[i] = "won" if "SuccessfulLeads" in details else details["FailedLeads"][0]["ReasonCode"]

    in_threads(8, work, api)
    assert sorted(outcomes.values()) == ["PRECONDITION_FAILED"] * 7 + ["won"]
    winner = next(i for i, outcome in outcomes.items() if outcome == "won")
    assert api.lead(ann)["JobTitle"] == f"Title {winner}"
    history = api.get("/Lead.ChangeHistory", params={"leadId": ann}).json()
    assert [c["NewValue"] for c in history if c["Field"] == "JobTitle"] == [f"Title {winner}", "CEO"]
