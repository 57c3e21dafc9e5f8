"""Finding leads by phone and email keys (spec 3 and 4.2; the seed's FAQ)."""

from typing import Any

import pytest

from leadstore.db import Database
from tests.helpers import Api, LiveServer
from tests.leads.bulk_support import NOT_FOUND, assert_consistent, items, set_setting, snapshot

PUSH = {"PushNonExistentLeadsToUnProcessedList": True}


def call(api: Api, leads: list[dict[str, Any]], search_by: str) -> dict[str, Any]:
    response = api.bulk(leads, search_by=search_by, options=PUSH)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert_consistent(answer, len(leads), push=True)
    return answer


@pytest.fixture
def sam(api: Api) -> str:
    return api.create_lead(Phone="+91-1234554321", Mobile="+1-4155552671", EmailAddress="sam@example.com")


class TestPhoneKey:
    def test_the_seed_faq_example(self, api: Api, db: Database, server: LiveServer, sam: str) -> None:
        set_setting(db, server, "phone_country_code_mandatory", "true")
        answer = call(api, [{"Phone": "+91-1234554321", "FirstName": "Sam"}], "Phone")
        assert answer["Details"] == {
            "SuccessfulLeads": [
                {"Identifier": "Phone", "IdentifierValue": "+91-1234554321", "Index": 0, "ChangedFields": ["FirstName"]}
            ]
        }
        assert api.lead(sam)["FirstName"] == "Sam"

    def test_a_bare_number_matches_nothing_when_the_country_code_is_mandatory(
        self, api: Api, db: Database, server: LiveServer, sam: str
    ) -> None:
        set_setting(db, server, "phone_country_code_mandatory", "true")
        before = snapshot(db)
        answer = call(api, [{"Phone": "1234554321", "FirstName": "Sam"}], "Phone")
        assert items(answer, "UnProcessedLeads") == [
            {
                "Identifier": "Phone",
                "IdentifierValue": "1234554321",
                "Reason": NOT_FOUND,
                "Index": 0,
                "ReasonCode": "LEAD_NOT_FOUND",
            }
        ]
        assert snapshot(db) == before
        response = api.bulk([{"Phone": "1234554321", "FirstName": "Sam"}], search_by="Phone")
        assert response.json()["Details"]["FailedLeads"][0]["Reason"] == NOT_FOUND

    def test_a_bare_number_gets_the_default_country_code_when_not_mandatory(self, api: Api, sam: str) -> None:
        answer = call(api, [{"Phone": "1234554321", "FirstName": "Sam"}], "Phone")
        assert answer["Status"]["SuccessCount"] == 1
        assert api.lead(sam)["FirstName"] == "Sam"

    def test_the_default_country_code_is_a_setting(self, api: Api, db: Database, server: LiveServer, sam: str) -> None:
        set_setting(db, server, "default_country_code", "1")
        answer = call(
            api,
            [{"Mobile": "4155552671", "FirstName": "Sam"}, {"Mobile": "(415) 555-2672", "FirstName": "X"}],
            "Mobile",
        )
        assert answer["Status"]["SuccessCount"] == 1
        assert items(answer, "UnProcessedLeads")[0]["Index"] == 1
        assert api.lead(sam)["FirstName"] == "Sam"

    @pytest.mark.parametrize("spelling", ["+91-1234554321", "+911234554321", "+91 12345 54321", " +91-12345-54321 "])
    def test_every_spelling_with_a_country_code_matches(
        self, api: Api, db: Database, server: LiveServer, sam: str, spelling: str
    ) -> None:
        set_setting(db, server, "phone_country_code_mandatory", "true")
        answer = call(api, [{"Phone": spelling, "LastName": "Found"}], "Phone")
        assert answer["Details"]["SuccessfulLeads"][0]["IdentifierValue"] == spelling
        assert api.lead(sam)["LastName"] == "Found"

    def test_another_country_code_matches_nothing(self, api: Api, sam: str) -> None:
        answer = call(api, [{"Phone": "+44-1234554321", "LastName": "X"}], "Phone")
        assert items(answer, "UnProcessedLeads")[0]["ReasonCode"] == "LEAD_NOT_FOUND"

    def test_a_bare_number_as_a_value_is_invalid_when_the_country_code_is_mandatory(
        self, api: Api, db: Database, server: LiveServer, sam: str
    ) -> None:
        set_setting(db, server, "phone_country_code_mandatory", "true")
        before = snapshot(db)
        answer = call(api, [{"EmailAddress": "sam@example.com", "Mobile": "9876543210"}], "EmailAddress")
        failed = items(answer, "FailedLeads")[0]
        assert failed["ReasonCode"] == "INVALID_VALUE"
        assert "Mobile" in failed["Reason"]
        assert "country code" in failed["Reason"]
        assert snapshot(db) == before

    def test_a_written_phone_is_stored_with_the_country_code(self, api: Api, sam: str) -> None:
        call(api, [{"EmailAddress": "sam@example.com", "Mobile": "98765 43210"}], "EmailAddress")
        assert api.lead(sam)["Mobile"] == "+91-9876543210"


class TestEmailKey:
    @pytest.mark.parametrize("spelling", ["SAM@EXAMPLE.COM", "Sam@Example.com", "  sam@example.com  "])
    def test_email_keys_match_case_insensitively(self, api: Api, sam: str, spelling: str) -> None:
        answer = call(api, [{"EmailAddress": spelling, "FirstName": "Samuel"}], "EmailAddress")
        assert answer["Details"]["SuccessfulLeads"] == [
            {"Identifier": "EmailAddress", "IdentifierValue": spelling, "Index": 0, "ChangedFields": ["FirstName"]}
        ]
        assert api.lead(sam)["FirstName"] == "Samuel"

    def test_a_written_email_is_stored_lower_case(self, api: Api, sam: str) -> None:
        call(api, [{"ProspectId": sam, "EmailAddress": " Sam.New@Example.COM "}], "ProspectId")
        assert api.lead(sam)["EmailAddress"] == "sam.new@example.com"

    def test_an_email_differing_only_in_case_is_taken(self, api: Api, sam: str) -> None:
        other = api.create_lead(EmailAddress="other@example.com")
        answer = call(api, [{"ProspectId": other, "EmailAddress": "SAM@example.com"}], "ProspectId")
        failed = items(answer, "FailedLeads")[0]
        assert (failed["ReasonCode"], failed["Reason"]) == ("DUPLICATE_VALUE", "A Lead with same Email already exists.")
        assert api.lead(other)["EmailAddress"] == "other@example.com"


class TestOtherKeys:
    def test_prospect_auto_id_finds_leads(self, api: Api, sam: str) -> None:
        auto_id = api.lead(sam)["ProspectAutoId"]
        answer = call(
            api, [{"ProspectAutoId": auto_id, "FirstName": "ByAutoId"}, {"ProspectAutoId": "999"}], "prospectautoid"
        )
        assert answer["Details"]["SuccessfulLeads"] == [
            {"Identifier": "ProspectAutoId", "IdentifierValue": auto_id, "Index": 0, "ChangedFields": ["FirstName"]}
        ]
        assert items(answer, "UnProcessedLeads")[0]["Index"] == 1
        assert api.lead(sam)["FirstName"] == "ByAutoId"

    def test_a_prospect_id_key_is_not_written(self, api: Api, db: Database, sam: str) -> None:
        answer = call(api, [{"ProspectID": f" {sam} ", "FirstName": "Trimmed"}], "ProspectId")
        assert answer["Status"]["SuccessCount"] == 1
        assert api.lead(sam)["FirstName"] == "Trimmed"
