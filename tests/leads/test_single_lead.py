"""Lead.Create, Lead.Update and Lead.CreateOrUpdate (spec section 5): LeadSquared's answers, and
its HTTP 500 ``MX...Exception`` answers for a lead that breaks a rule."""

import re
from typing import Any

import httpx
import pytest

from leadstore.db import Database
from tests.helpers import Api, add_live_field, make_user
from tests.test_app import assert_error

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def pairs(**fields: str | None) -> list[dict[str, Any]]:
    return [{"Attribute": k, "Value": v} for k, v in fields.items()]


def create(api: Api, **fields: str | None) -> httpx.Response:
    return api.post("/Lead.Create", json=pairs(**fields))


def update(api: Api, prospect_id: str, **fields: str | None) -> httpx.Response:
    return api.post("/Lead.Update", params={"leadId": prospect_id}, json=pairs(**fields))


def upsert(api: Api, body: list[dict[str, Any]]) -> httpx.Response:
    return api.post("/Lead.CreateOrUpdate", json=body)


class TestCreate:
    def test_answers_the_new_prospect_id(self, api: Api) -> None:
        response = create(api, EmailAddress="new@example.com", FirstName="New")
        assert response.status_code == 200
        body = response.json()
        assert body == {"Status": "Success", "Message": {"Id": body["Message"]["Id"]}}
        assert UUID.match(body["Message"]["Id"])

    def test_lead_reads_back_as_strings(self, api: Api) -> None:
        prospect_id = api.create_lead(
            EmailAddress=" Ada@Example.COM ",
            FirstName="Ada",
            Phone="+91 12345 54321",
            Score="12",
            DoNotEmail="true",
            DoNotCall="0",
            ProspectStage="customer",
            Website="https://ada.example.com",
        )
        lead = api.lead(prospect_id)
        assert lead["ProspectID"] == prospect_id
        assert lead["EmailAddress"] == "ada@example.com"
        assert lead["Phone"] == "+91-1234554321"
        assert lead["Score"] == "12"
        assert (lead["DoNotEmail"], lead["DoNotCall"]) == ("1", "0")
        assert lead["ProspectStage"] == "Customer"
        assert lead["LastName"] is None
        assert lead["CreatedBy"] == lead["ModifiedBy"] == lead["OwnerId"] == api.user.user_id
        assert MOMENT.match(lead["CreatedOn"] or "")
        assert lead["ModifiedOn"] == lead["CreatedOn"]
        assert int(lead["ProspectAutoId"] or "0") >= 1

    def test_auto_ids_are_sequential(self, api: Api) -> None:
        first = api.lead(api.create_lead(FirstName="One"))["ProspectAutoId"]
        second = api.lead(api.create_lead(FirstName="Two"))["ProspectAutoId"]
        assert int(second or "0") == int(first or "0") + 1

    def test_owner_can_be_given(self, api: Api, db: Database) -> None:
        owner = make_user(db, "SalesUser")
        lead = api.lead(api.create_lead(FirstName="Owned", OwnerId=owner.user_id))
        assert lead["OwnerId"] == owner.user_id
        assert lead["CreatedBy"] == api.user.user_id

    def test_owner_must_be_a_user(self, api: Api) -> None:
        message = assert_error(create(api, OwnerId="no-such-user"), 500, "MXInvalidInputException")
        assert "OwnerId" in message

    def test_duplicate_email_is_refused_whatever_its_case(self, api: Api) -> None:
        api.create_lead(EmailAddress="dup@example.com")
        message = assert_error(create(api, EmailAddress="DUP@example.com"), 500, "MXDuplicateEntryException")
        assert message == "A Lead with same Email already exists."

    def test_duplicate_phone_is_refused_whatever_its_format(self, api: Api) -> None:
        api.create_lead(Phone="+91-1234554321")
        message = assert_error(create(api, Phone="1234554321"), 500, "MXDuplicateEntryException")
        assert "Phone" in message

    def test_unknown_attribute_is_refused(self, api: Api) -> None:
        message = assert_error(create(api, FirstName="A", mx_Nope="x"), 500, "MXUnknownAttributeException")
        assert "mx_Nope" in message

    def test_invalid_value_is_refused_naming_the_field(self, api: Api) -> None:
        message = assert_error(create(api, FirstName="A", Score="many"), 500, "MXInvalidInputException")
        assert "Score" in message

    def test_server_managed_field_cannot_be_written(self, api: Api) -> None:
        response = create(api, FirstName="A", CreatedOn="2020-01-01 00:00:00")
        assert response.status_code == 500
        assert "CreatedOn" in response.json()["ExceptionMessage"]

    def test_missing_mandatory_field_is_refused(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Region", "Text", mandatory=True)
        message = assert_error(create(api, FirstName="A"), 500, "MXMandatoryAttributeMissingException")
        assert "mx_Region" in message

    def test_refused_lead_leaves_no_trace(self, api: Api) -> None:
        assert create(api, EmailAddress="half@example.com", Score="x").status_code == 500
        assert api.get("/Leads.GetByEmailaddress", params={"emailaddress": "half@example.com"}).json() == []

    def test_attribute_names_match_case_insensitively(self, api: Api) -> None:
        response = api.post("/Lead.Create", json=[{"Attribute": "firstname", "Value": "Lower"}])
        assert response.status_code == 200
        assert api.lead(response.json()["Message"]["Id"])["FirstName"] == "Lower"

    @pytest.mark.parametrize(
        ("value", "stored"), [(33, "33"), (3.5, "3.5"), (-0.25, "-0.25"), (10**12, "1000000000000")]
    )
    def test_a_number_is_taken_as_the_text_json_wrote(self, api: Api, value: float, stored: str) -> None:
        response = api.post("/Lead.Create", json=[{"Attribute": "Score", "Value": value}, *pairs(Company=value)])
        assert response.status_code == 200, response.text
        lead = api.lead(response.json()["Message"]["Id"])
        assert (lead["Score"], lead["Company"]) == (stored, stored)

    def test_a_boolean_is_true_or_false(self, api: Api) -> None:
        body = [{"Attribute": "DoNotCall", "Value": True}, {"Attribute": "DoNotEmail", "Value": False}]
        response = api.post("/Lead.Create", json=body)
        assert response.status_code == 200, response.text
        lead = api.lead(response.json()["Message"]["Id"])
        assert (lead["DoNotCall"], lead["DoNotEmail"]) == ("1", "0")
        refused = api.post("/Lead.Create", json=[{"Attribute": "Score", "Value": True}])
        assert_error(refused, 500, "MXInvalidInputException")  # "true" is no number

    @pytest.mark.parametrize("value", [{"n": 1}, [1], []])
    def test_an_object_or_an_array_is_no_value(self, api: Api, value: object) -> None:
        response = api.post("/Lead.Create", json=[{"Attribute": "Score", "Value": value}])
        assert_error(response, 400, "MXInvalidInputException")

    def test_custom_field_added_at_run_time_is_writable(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_City", "Text")
        response = create(api, FirstName="A", mx_City="Pune")
        assert response.status_code == 200, response.text
        assert api.lead(response.json()["Message"]["Id"])["mx_City"] == "Pune"


class TestUpdate:
    def test_answers_affected_rows_and_writes(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="u@example.com", FirstName="Old")
        response = update(api, prospect_id, FirstName="New", Score="7.5")
        assert response.status_code == 200
        assert response.json() == {"Status": "Success", "Message": {"AffectedRows": 1}}
        lead = api.lead(prospect_id)
        assert (lead["FirstName"], lead["Score"], lead["EmailAddress"]) == ("New", "7.5", "u@example.com")

    @pytest.mark.parametrize("name", ["leadid", "LEADID", "LeadId"])
    def test_lead_id_parameter_name_is_case_insensitive(self, api: Api, name: str) -> None:
        prospect_id = api.create_lead(FirstName="Old")
        response = api.post("/Lead.Update", params={name: prospect_id}, json=pairs(FirstName="New"))
        assert response.status_code == 200, response.text
        assert api.lead(prospect_id)["FirstName"] == "New"

    def test_sets_modified_by_to_the_caller(self, api: Api, db: Database) -> None:
        manager = make_user(db, "Administrator")
        prospect_id = api.create_lead(FirstName="Old")
        assert api.post("/Lead.Update", params={"leadId": prospect_id}, json=pairs(FirstName="B"), as_=manager)
        lead = api.lead(prospect_id)
        assert lead["ModifiedBy"] == manager.user_id
        assert lead["CreatedBy"] == api.user.user_id

    def test_empty_value_clears_a_field(self, api: Api) -> None:
        prospect_id = api.create_lead(FirstName="Old", Company="Acme")
        assert update(api, prospect_id, Company="").status_code == 200
        assert api.lead(prospect_id)["Company"] is None

    def test_unknown_lead_is_an_invalid_entity(self, api: Api) -> None:
        response = update(api, "00000000-0000-0000-0000-000000000000", FirstName="X")
        assert assert_error(response, 500, "MXInvalidEntityException") == "Lead does not exist in the system"

    def test_lead_the_caller_may_not_update_looks_unknown(self, api: Api, db: Database) -> None:
        seller = make_user(db, "SalesUser")
        prospect_id = api.create_lead(FirstName="Admin's")
        response = api.post("/Lead.Update", params={"leadId": prospect_id}, json=pairs(FirstName="X"), as_=seller)
        assert assert_error(response, 500, "MXInvalidEntityException") == "Lead does not exist in the system"
        assert api.lead(prospect_id)["FirstName"] == "Admin's"

    def test_missing_lead_id_is_a_missing_attribute(self, api: Api) -> None:
        response = api.post("/Lead.Update", json=pairs(FirstName="X"))
        message = assert_error(response, 500, "MXMandatoryAttributeMissingException")
        assert "leadId" in message

    def test_taking_another_leads_email_is_refused_and_writes_nothing(self, api: Api) -> None:
        api.create_lead(EmailAddress="taken@example.com")
        prospect_id = api.create_lead(EmailAddress="mine@example.com", FirstName="Before")
        response = update(api, prospect_id, FirstName="After", EmailAddress="Taken@Example.com")
        assert assert_error(response, 500, "MXDuplicateEntryException") == "A Lead with same Email already exists."
        lead = api.lead(prospect_id)
        assert (lead["FirstName"], lead["EmailAddress"]) == ("Before", "mine@example.com")

    def test_keeping_its_own_unique_values_is_fine(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="same@example.com", Phone="+91-1234554321")
        response = update(api, prospect_id, EmailAddress="SAME@example.com", Phone="1234554321", FirstName="Z")
        assert response.status_code == 200, response.text

    def test_emptying_a_mandatory_field_is_refused(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Region", "Text", mandatory=True)
        prospect_id = api.create_lead(FirstName="A", mx_Region="West")
        response = update(api, prospect_id, mx_Region="  ")
        assert "mx_Region" in assert_error(response, 500, "MXMandatoryAttributeMissingException")
        assert api.lead(prospect_id)["mx_Region"] == "West"

    def test_read_only_fields_cannot_be_written(self, api: Api) -> None:
        prospect_id = api.create_lead(FirstName="A")
        response = update(api, prospect_id, ProspectAutoId="99")
        assert response.status_code == 500
        assert "ProspectAutoId" in response.json()["ExceptionMessage"]

    def test_unknown_attribute_is_refused(self, api: Api) -> None:
        prospect_id = api.create_lead(FirstName="A")
        assert_error(update(api, prospect_id, Nickname="Al"), 500, "MXUnknownAttributeException")


class TestCreateOrUpdate:
    def test_creates_when_no_lead_matches(self, api: Api) -> None:
        response = upsert(api, pairs(EmailAddress="fresh@example.com", FirstName="Fresh"))
        assert response.status_code == 200
        body = response.json()
        assert body == {"Status": "Success", "Message": {"Id": body["Message"]["Id"], "AffectedRows": 1}}
        assert api.lead(body["Message"]["Id"])["FirstName"] == "Fresh"

    def test_updates_the_lead_with_the_same_email_by_default(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="known@example.com", FirstName="Old")
        response = upsert(api, pairs(EmailAddress="KNOWN@example.com", FirstName="New"))
        assert response.status_code == 200
        assert response.json()["Message"] == {"Id": prospect_id, "AffectedRows": 1}
        assert api.lead(prospect_id)["FirstName"] == "New"
        found = api.get("/Leads.GetByQuickSearch", params={"key": "known"}).json()
        assert len(found) == 1

    def test_falls_back_to_phone_without_an_email(self, api: Api) -> None:
        prospect_id = api.create_lead(Phone="+91-1234554321", FirstName="Old")
        response = upsert(api, pairs(Phone="+911234554321", FirstName="New"))
        assert response.json()["Message"]["Id"] == prospect_id
        assert api.lead(prospect_id)["FirstName"] == "New"

    def test_search_by_names_the_key(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Badge", "Text", unique=True)
        prospect_id = api.create_lead(mx_Badge="B-7", EmailAddress="old@example.com")
        body = [*pairs(mx_Badge="B-7", EmailAddress="new@example.com"), {"Attribute": "SearchBy", "Value": "mx_Badge"}]
        response = upsert(api, body)
        assert response.status_code == 200, response.text
        assert response.json()["Message"]["Id"] == prospect_id
        assert api.lead(prospect_id)["EmailAddress"] == "new@example.com"

    def test_search_by_mobile(self, api: Api) -> None:
        prospect_id = api.create_lead(Mobile="+44-7911123456")
        body = [{"Attribute": "SearchBy", "Value": "Mobile"}, *pairs(Mobile="+447911123456", LastName="Mob")]
        assert upsert(api, body).json()["Message"]["Id"] == prospect_id
        assert api.lead(prospect_id)["LastName"] == "Mob"

    def test_search_by_a_field_that_is_not_unique_is_refused(self, api: Api) -> None:
        body = [{"Attribute": "SearchBy", "Value": "FirstName"}, *pairs(FirstName="A")]
        message = assert_error(upsert(api, body), 500, "MXInvalidInputException")
        assert "SearchBy" in message

    def test_created_lead_is_checked_like_lead_create(self, api: Api) -> None:
        api.create_lead(Phone="+91-1234554321")
        response = upsert(api, pairs(EmailAddress="other@example.com", Phone="1234554321"))
        assert_error(response, 500, "MXDuplicateEntryException")

    def test_invalid_value_is_refused(self, api: Api) -> None:
        response = upsert(api, pairs(EmailAddress="not-an-email"))
        assert "EmailAddress" in assert_error(response, 500, "MXInvalidInputException")
