"""More of LeadSquared's lead and user API (spec 12), sent as its documentation shows the
requests: Lead.Capture, Lead/Bulk/CreateOrUpdate, Lead/Bulk/Update, Leads/Retrieve/ByIds and the
User Management reads; each under the same keys, permissions, checks and history as every
other call."""

from typing import Any

import pytest

from leadstore.db import Database
from leadstore.users import service as user_service
from tests.access.conftest import add_group
from tests.helpers import Api, add_live_field, make_user

# Lead/Bulk/CreateOrUpdate's documented example (two of its leads), verbatim.
BULK_CREATE_OR_UPDATE = b"""[
    [
        {"Attribute": "EmailAddress", "Value": "email0@gmail.com"},
        {"Attribute": "FirstName", "Value": "F0Name"},
        {"Attribute": "LastName", "Value": "L0Name"},
        {"Attribute": "Company", "Value": "C0Company"},
        {"Attribute": "SearchBy", "Value": "EmailAddress"}
    ],
    [
        {"Attribute": "EmailAddress", "Value": "email1@gmail.com"},
        {"Attribute": "FirstName", "Value": "F1Name"},
        {"Attribute": "LastName", "Value": "L1Name"},
        {"Attribute": "Company", "Value": "C1Company"},
        {"Attribute": "SearchBy", "Value": "EmailAddress"}
    ]
]"""


def post(api: Api, path: str, body: bytes, **params: str) -> Any:
    response = api.post(path, content=body, params=params, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


class TestBulkCreateOrUpdate:
    def test_the_documented_request_creates_then_updates(self, api: Api) -> None:
        first = post(api, "/Lead/Bulk/CreateOrUpdate", BULK_CREATE_OR_UPDATE)
        assert [(r["RowNumber"], r["LeadCreated"], r["LeadUpdated"], r["AffectedRows"]) for r in first] == [
            (1, True, False, 1),
            (2, True, False, 1),
        ]
        again = post(api, "/Lead/Bulk/CreateOrUpdate", BULK_CREATE_OR_UPDATE.replace(b"C0Company", b"Other"))
        assert [(r["LeadId"], r["LeadCreated"], r["LeadUpdated"]) for r in again] == [
            (first[0]["LeadId"], False, True),
            (first[1]["LeadId"], False, True),
        ]
        assert [r["AffectedRows"] for r in again] == [1, 0]  # the second held every value already
        assert api.lead(first[0]["LeadId"])["Company"] == "Other"
        history = api.get("/Lead.ChangeHistory", params={"leadId": first[0]["LeadId"]}).json()
        assert history[0]["Field"] == "Company"

    def test_a_bad_lead_fails_alone_and_the_limit_holds(self, api: Api) -> None:
        api.create_lead(EmailAddress="taken@example.com", Mobile="+91-9800000001")
        body = [
            [{"Attribute": "EmailAddress", "Value": "ok@example.com"}],
            [{"Attribute": "EmailAddress", "Value": "bad@example.com"}, {"Attribute": "Score", "Value": "x"}],
            [
                {"Attribute": "EmailAddress", "Value": "dup@example.com"},
                {"Attribute": "Mobile", "Value": "+91-9800000001"},
            ],
            [{"Attribute": "EmailAddress", "Value": "OK@example.com"}],
        ]
        rows = api.post("/Lead/Bulk/CreateOrUpdate", json=body).json()
        assert [(r["RowNumber"], r["LeadCreated"]) for r in rows] == [(1, True), (2, False), (3, False), (4, False)]
        assert [r.get("ExceptionType") for r in rows] == [
            None,
            "MXInvalidInputException",
            "MXDuplicateEntryException",
            "MXDuplicateEntryException",
        ]
        assert "row 1" in rows[3]["ExceptionMessage"]
        assert api.get("/Leads.GetByEmailaddress", params={"emailaddress": "bad@example.com"}).json() == []
        too_many = api.post("/Lead/Bulk/CreateOrUpdate", json=[[{"Attribute": "FirstName", "Value": "x"}]] * 26)
        assert too_many.status_code == 400

    def test_a_mandatory_field_applies_to_the_leads_it_creates(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Region", mandatory=True)
        api.create_lead(EmailAddress="old@example.com", mx_Region="North")
        body = [
            [{"Attribute": "EmailAddress", "Value": "old@example.com"}],
            [{"Attribute": "EmailAddress", "Value": "x@example.com"}],
        ]
        rows = api.post("/Lead/Bulk/CreateOrUpdate", json=body).json()
        assert (rows[0]["LeadUpdated"], rows[1]["ExceptionType"]) == (True, "MXMandatoryAttributeMissingException")


class TestCapture:
    def test_search_by_and_the_update_behaviours(self, api: Api) -> None:
        lead = api.create_lead(EmailAddress="cap@example.com", Phone="+91-9800000002", FirstName="Old")
        body = (
            b'[{"Attribute":"Phone","Value":"+91-9800000002"},{"Attribute":"FirstName","Value":"New"},'
            b'{"Attribute":"Company","Value":"Acme"},{"Attribute":"SearchBy","Value":"Phone"}]'
        )
        kept = post(api, "/Lead.Capture", body, LeadUpdateBehavior="DoNotUpdate")
        assert kept == {"Status": "Success", "Message": {"Id": lead, "RelatedId": lead, "IsCreated": False}}
        assert api.lead(lead)["FirstName"] == "Old"
        post(api, "/Lead.Capture", body, LeadUpdateBehavior="UpdateOnlyEmptyFields")
        assert (api.lead(lead)["FirstName"], api.lead(lead)["Company"]) == ("Old", "Acme")
        post(api, "/Lead.Capture", body)
        assert api.lead(lead)["FirstName"] == "New"
        nothing_to_find = post(api, "/Lead.Capture", b'[{"Attribute":"FirstName","Value":"Anon"}]')
        assert nothing_to_find["Message"]["IsCreated"] is True
        refused = api.post("/Lead.Capture", content=body, params={"LeadUpdateBehavior": "Sometimes"})
        assert refused.status_code == 400

    def test_unique_fields_are_left_alone_when_asked(self, api: Api) -> None:
        lead = api.create_lead(EmailAddress="u@example.com", Mobile="+91-9800000003")
        body = (
            b'[{"Attribute":"EmailAddress","Value":"u@example.com"},{"Attribute":"Mobile","Value":"+91-9800000004"},'
            b'{"Attribute":"JobTitle","Value":"CEO"}]'
        )
        post(api, "/Lead.Capture", body, LeadUpdateBehavior="DoNotUpdateUniqueFields")
        assert (api.lead(lead)["Mobile"], api.lead(lead)["JobTitle"]) == ("+91-9800000003", "CEO")


class TestBulkUpdateOneField:
    def test_the_documented_request(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_City")
        ids = [api.create_lead(EmailAddress=f"c{i}@example.com") for i in range(3)]
        body = (
            f'{{"LeadIds": ["{ids[0]}", "{ids[1]}", "00000000-0000-0000-0000-000000000000"], '
            '"LeadFields": {"Attribute": "mx_City", "Value": "Bangalore"}}'
        ).encode()
        assert post(api, "/Lead/Bulk/Update", body) == {"Status": "Success", "Message": {"AffectedRows": 2}}
        assert [api.lead(i)["mx_City"] for i in ids] == ["Bangalore", "Bangalore", None]

    def test_a_bad_value_or_a_shared_unique_value_is_refused(self, api: Api) -> None:
        ids = [api.create_lead(EmailAddress=f"d{i}@example.com") for i in range(2)]
        bad = api.post("/Lead/Bulk/Update", json={"LeadIds": ids, "LeadFields": {"Attribute": "Score", "Value": "x"}})
        assert (bad.status_code, bad.json()["ExceptionType"]) == (500, "MXInvalidInputException")
        shared = {"LeadIds": ids, "LeadFields": {"Attribute": "Mobile", "Value": "+91-9800000005"}}
        assert api.post("/Lead/Bulk/Update", json=shared).status_code == 400
        assert api.post("/Lead/Bulk/Update", json={"LeadIds": ids}).status_code == 400


class TestRetrieveByIds:
    def test_the_documented_request_in_the_callers_reach(self, api: Api, db: Database) -> None:
        mine = api.create_lead(EmailAddress="m@example.com", FirstName="Ringo", LastName="Starr")
        seller = make_user(db, "SalesUser")
        theirs = api.create_lead(EmailAddress="t@example.com", FirstName="John", OwnerId=seller.user_id)
        body = (
            f'{{"SearchParameters": {{"LeadIds": ["{mine}", "{theirs}"]}}, "Columns": {{"Include_CSV": '
            '"CreatedOn, ModifiedOn, CompanyType, EmailAddress, ProspectId, FirstName, LastName"}, '
            '"Paging": {"PageIndex": 1, "PageSize": 1000}}'
        ).encode()
        answer = post(api, "/Leads/Retrieve/ByIds", body)
        assert answer["RecordCount"] == 2
        assert set(answer["Leads"][0]) == {
            "ProspectID",
            "CreatedOn",
            "ModifiedOn",
            "EmailAddress",
            "FirstName",
            "LastName",
        }
        seen = api.post("/Leads/Retrieve/ByIds", content=body, as_=seller).json()
        assert [lead["ProspectID"] for lead in seen["Leads"]] == [theirs]


class TestUsers:
    @pytest.fixture
    def team(self, db: Database) -> dict[str, Any]:
        add_group(db, "North")
        manager = make_user(db, "SalesManager", groups=["North"])
        rep = make_user(db, "SalesUser", groups=["North"])
        loner = make_user(db, "SalesUser")
        with db.write() as conn:
            user_service.deactivate(conn, loner.email)
        return {"manager": manager, "rep": rep, "loner": loner}

    def test_users_get_shows_whom_the_caller_may_see_and_never_a_key(self, api: Api, team: dict[str, Any]) -> None:
        everyone = api.get("/v2/UserManagement.svc/Users.Get").json()
        by_email = {u["EmailAddress"]: u for u in everyone}
        assert by_email[team["loner"].email]["StatusCode"] == 1
        assert by_email[team["rep"].email]["Role"] == "Sales_User"
        assert by_email[team["rep"].email]["MemberOfGroups"] == ["North"]
        text = api.get("/v2/UserManagement.svc/Users.Get").text
        assert all(team[n].access_key not in text and team[n].secret_key not in text for n in team)
        assert "secret" not in text.lower()
        assert "access" not in text.lower()
        seen = api.get("/v2/UserManagement.svc/Users.Get", as_=team["rep"]).json()
        assert {u["EmailAddress"] for u in seen} == {team["manager"].email, team["rep"].email}

    def test_one_user_by_id_or_email(self, api: Api, team: dict[str, Any]) -> None:
        rep = team["rep"]
        [by_id] = api.get("/v2/UserManagement.svc/User/Retrieve/ByUserId", params={"userId": rep.user_id}).json()
        [by_email] = api.get(
            "/v2/UserManagement.svc/User/Retrieve/ByEmailAddress", params={"emailAddress": rep.email.upper()}
        ).json()
        assert by_id == by_email
        assert (by_id["UserId"], by_id["Groups"]) == (rep.user_id, [{"Id": "North", "Name": "North"}])
        inactive = api.get("/v2/UserManagement.svc/User/Retrieve/ByUserId", params={"userId": team["loner"].user_id})
        assert inactive.json() == []
        hidden = api.get(
            "/v2/UserManagement.svc/User/Retrieve/ByUserId", params={"userId": api.user.user_id}, as_=rep
        ).json()
        assert hidden == []  # the Administrator shares no group with the rep
