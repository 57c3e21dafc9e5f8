"""Whole-request errors of the bulk update (spec 4.1): HTTP 400, MXInvalidInputException, a
message naming the offending position, and nothing written."""

from typing import Any

import orjson
import pytest

from leadstore.db import Database
from tests.helpers import Api, LiveServer
from tests.leads.bulk_support import BULK, assert_consistent, assert_invalid_input, body, set_setting, snapshot


@pytest.fixture
def two_leads(api: Api) -> list[str]:
    return [
        api.create_lead(EmailAddress="ann@example.com", FirstName="Ann"),
        api.create_lead(EmailAddress="bob@example.com", FirstName="Bob"),
    ]


GOOD_LEAD = {
    "Fields": [{"Attribute": "EmailAddress", "Value": "ann@example.com"}, {"Attribute": "FirstName", "Value": "X"}]
}


@pytest.mark.parametrize(
    ("payload", "fragments"),
    [
        ([], ["JSON object"]),
        (None, ["JSON object"]),
        ("LeadPropertiesList", ["JSON object"]),
        ({"SearchByKey": "EmailAddress"}, ["LeadPropertiesList"]),
        ({"LeadPropertiesList": {"Fields": []}}, ["LeadPropertiesList"]),
        ({"LeadPropertiesList": [GOOD_LEAD, "lead"]}, ["LeadPropertiesList[1]"]),
        ({"LeadPropertiesList": [GOOD_LEAD, {"Fields": "FirstName=X"}]}, ["LeadPropertiesList[1].Fields"]),
        (
            {"LeadPropertiesList": [GOOD_LEAD, GOOD_LEAD, GOOD_LEAD, {"Fields": [GOOD_LEAD["Fields"][0], "x"]}]},
            ["LeadPropertiesList[3].Fields[1]"],
        ),
        (
            {"LeadPropertiesList": [GOOD_LEAD, {"Fields": [{"Attribute": "FirstName"}]}]},
            ["LeadPropertiesList[1].Fields[0]"],
        ),
        (
            {"LeadPropertiesList": [GOOD_LEAD, {"Fields": [{"Value": "X"}]}]},
            ["LeadPropertiesList[1].Fields[0]"],
        ),
        (
            {"LeadPropertiesList": [GOOD_LEAD, {"Fields": [{"Attribute": 7, "Value": "X"}]}]},
            ["LeadPropertiesList[1].Fields[0].Attribute"],
        ),
        (
            {"LeadPropertiesList": [GOOD_LEAD, {"Fields": [{"Attribute": "Score", "Value": {"n": 1}}]}]},
            ["LeadPropertiesList[1].Fields[0].Value"],
        ),
        ({"SearchByKey": 5, "LeadPropertiesList": [GOOD_LEAD]}, ["SearchByKey"]),
        ({"Options": [], "LeadPropertiesList": [GOOD_LEAD]}, ["Options"]),
        ({"Options": "true", "LeadPropertiesList": [GOOD_LEAD]}, ["Options"]),
        (
            {"Options": {"PushNonExistentLeadsToUnProcessedList": "yes"}, "LeadPropertiesList": [GOOD_LEAD]},
            ["PushNonExistentLeadsToUnProcessedList"],
        ),
        ({"Options": {"DryRun": 1}, "LeadPropertiesList": [GOOD_LEAD]}, ["DryRun"]),
    ],
)
def test_malformed_body_is_refused_whole(
    api: Api, db: Database, two_leads: list[str], payload: Any, fragments: list[str]
) -> None:
    before = snapshot(db)
    response = api.post(BULK, content=orjson.dumps(payload), headers={"Content-Type": "application/json"})
    assert_invalid_input(response, *fragments)
    assert snapshot(db) == before


def test_body_that_is_not_json_is_refused(api: Api, db: Database, two_leads: list[str]) -> None:
    before = snapshot(db)
    response = api.post(BULK, content=b'{"LeadPropertiesList": [', headers={"Content-Type": "application/json"})
    assert_invalid_input(response, "JSON")
    assert snapshot(db) == before


def test_json_body_is_accepted_whatever_the_content_type(api: Api, two_leads: list[str]) -> None:
    payload = body([{"EmailAddress": "ann@example.com", "FirstName": "Anna"}], SearchByKey="EmailAddress")
    response = api.post(BULK, content=orjson.dumps(payload), headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    assert api.lead(two_leads[0])["FirstName"] == "Anna"


def test_empty_lead_list_is_refused(api: Api, db: Database, two_leads: list[str]) -> None:
    before = snapshot(db)
    assert_invalid_input(api.bulk([]), "LeadPropertiesList", "empty")
    assert snapshot(db) == before


def test_more_than_25_leads_are_refused_and_nothing_is_written(api: Api, db: Database, two_leads: list[str]) -> None:
    leads = [{"EmailAddress": "ann@example.com", "FirstName": "Changed"}]
    leads += [{"EmailAddress": f"n{i}@example.com", "FirstName": "X"} for i in range(25)]
    before = snapshot(db)
    assert_invalid_input(api.bulk(leads), "26", "25")
    assert snapshot(db) == before
    assert api.lead(two_leads[0])["FirstName"] == "Ann"


def test_exactly_25_leads_are_accepted(api: Api, two_leads: list[str]) -> None:
    leads = [{"EmailAddress": "ann@example.com", "FirstName": "Changed"}]
    leads += [{"EmailAddress": f"n{i}@example.com", "FirstName": "X"} for i in range(24)]
    response = api.bulk(leads)
    assert response.status_code == 200, response.text
    assert_consistent(response.json(), 25)
    assert api.lead(two_leads[0])["FirstName"] == "Changed"


def test_the_maximum_is_the_bulk_max_leads_setting(
    api: Api, db: Database, server: LiveServer, two_leads: list[str]
) -> None:
    set_setting(db, server, "bulk_max_leads", "2")
    three = [
        {"EmailAddress": "ann@example.com", "FirstName": "A2"},
        {"EmailAddress": "bob@example.com", "FirstName": "B2"},
        {"EmailAddress": "cat@example.com", "FirstName": "C2"},
    ]
    before = snapshot(db)
    assert_invalid_input(api.bulk(three), "3", "2")
    assert snapshot(db) == before
    response = api.bulk(three[:2])
    assert response.status_code == 200, response.text
    assert [api.lead(p)["FirstName"] for p in two_leads] == ["A2", "B2"]


@pytest.mark.parametrize("key", ["NoSuchField", "mx_Missing", ""])
def test_search_by_key_naming_no_field_is_refused(api: Api, db: Database, two_leads: list[str], key: str) -> None:
    before = snapshot(db)
    response = api.bulk([{"EmailAddress": "ann@example.com", "FirstName": "X"}], search_by=key)
    if key == "":
        # An empty SearchByKey is LeadSquared's "not passed": leads are found by ProspectId.
        assert response.status_code == 200, response.text
        assert response.json()["Details"]["FailedLeads"][0]["ReasonCode"] == "SEARCH_KEY_MISSING"
    else:
        assert_invalid_input(response, "SearchByKey", key)
    assert snapshot(db) == before


@pytest.mark.parametrize("key", ["FirstName", "Company", "Score", "ProspectStage"])
def test_search_by_key_must_be_unique(api: Api, db: Database, two_leads: list[str], key: str) -> None:
    before = snapshot(db)
    response = api.bulk([{key: "Ann", "LastName": "X"}], search_by=key)
    assert_invalid_input(response, "SearchByKey", "unique", "EmailAddress")
    assert snapshot(db) == before


@pytest.mark.parametrize("key", ["ProspectId", "ProspectID", "prospectid", "PROSPECTID"])
def test_search_by_key_matches_names_case_insensitively(api: Api, two_leads: list[str], key: str) -> None:
    response = api.bulk([{"ProspectId": two_leads[1], "FirstName": "Bobby"}], search_by=key)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_consistent(answer, 1)
    assert answer["Details"]["SuccessfulLeads"] == [
        {"Identifier": "ProspectId", "IdentifierValue": two_leads[1], "Index": 0, "ChangedFields": ["FirstName"]}
    ]
    assert api.lead(two_leads[1])["FirstName"] == "Bobby"


@pytest.mark.parametrize("key", ["emailaddress", "EMAILADDRESS", "EmailAddress"])
def test_identifier_is_the_canonical_schema_name(api: Api, two_leads: list[str], key: str) -> None:
    response = api.bulk([{"emailAddress": "ann@example.com", "FirstName": "Annie"}], search_by=key)
    answer = response.json()
    assert answer["Details"]["SuccessfulLeads"][0]["Identifier"] == "EmailAddress"
    assert api.lead(two_leads[0])["FirstName"] == "Annie"


def test_unknown_options_are_ignored(api: Api, two_leads: list[str]) -> None:
    response = api.bulk(
        [{"EmailAddress": "ann@example.com", "FirstName": "Annie"}],
        options={"PushNonExistentLeadsToUnProcessedList": False, "SomethingNew": "x"},
    )
    assert response.status_code == 200, response.text
    assert api.lead(two_leads[0])["FirstName"] == "Annie"


def test_numbers_and_booleans_are_values_in_bulk_too(api: Api) -> None:
    api.create_lead(EmailAddress="num@example.com")
    body = {
        "SearchByKey": "EmailAddress",
        "LeadPropertiesList": [
            {
                "Fields": [
                    {"Attribute": "EmailAddress", "Value": "num@example.com"},
                    {"Attribute": "Score", "Value": 42},
                    {"Attribute": "DoNotCall", "Value": True},
                ],
                "Expect": [{"Attribute": "Score", "Value": None}],
            }
        ],
    }
    answer = api.post("/Lead/Bulk/UpdateV2", json=body).json()
    assert answer["Details"]["SuccessfulLeads"][0]["ChangedFields"] == ["Score", "DoNotCall"]
    lead = api.get("/Leads.GetByEmailaddress", params={"emailaddress": "num@example.com"}).json()[0]
    assert (lead["Score"], lead["DoNotCall"]) == ("42", "1")
