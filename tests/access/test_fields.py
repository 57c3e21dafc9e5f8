"""Field rules of permission templates: a read-only field is read but never written; a hidden
field is neither, and the API answers as if it did not exist."""

from typing import Any

import httpx
import pytest

from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.access.conftest import add_template, server_state
from tests.helpers import Api, LiveServer, add_field, make_user, wait_until

SECRET = "s3cr3t-value"


@pytest.fixture
def clerk(many_calls: None, db: Database, api: Api, server: LiveServer) -> Credentials:
    """A user of template Clerk: every lead, JobTitle read-only, Company, mx_Secret and mx_Code hidden."""
    add_field(db, "mx_Secret")
    add_field(db, "mx_Code", unique=True)
    add_template(db, "Clerk", "all", read_only=["JobTitle"], hidden=["Company", "mx_Secret", "mx_Code"])
    user = make_user(db, "SalesUser", template="Clerk")
    wait_until(lambda: server_state(server).catalog.fields.get("mx_Code") is not None)
    return user


@pytest.fixture
def lead(api: Api, clerk: Credentials) -> str:
    return api.create_lead(
        EmailAddress="lead@example.com",
        Phone="+91-9876543210",
        FirstName="Ann",
        JobTitle="CEO",
        Company="Zenith",
        mx_Secret=SECRET,
        mx_Code="Z-1",
    )


def pairs(**fields: str) -> list[dict[str, str]]:
    return [{"Attribute": k, "Value": v} for k, v in fields.items()]


def renamed(response: httpx.Response, name: str) -> tuple[int, bytes]:
    return response.status_code, response.content.replace(name.encode(), b"<field>")


class TestReadOnly:
    def test_the_bulk_lead_fails_naming_the_field_and_nothing_of_it_is_written(
        self, api: Api, clerk: Credentials, lead: str
    ) -> None:
        other = api.create_lead(EmailAddress="other@example.com")
        answer = api.bulk(
            [
                {"EmailAddress": "lead@example.com", "FirstName": "Bob", "JobTitle": "CTO"},
                {"EmailAddress": "other@example.com", "FirstName": "Bob"},
            ],
            as_=clerk,
        ).json()
        (failed,) = answer["Details"]["FailedLeads"]
        assert (failed["Index"], failed["ReasonCode"]) == (0, "FIELD_READ_ONLY")
        assert failed["Reason"] == "JobTitle is read-only for you (permission template)"
        assert [s["Index"] for s in answer["Details"]["SuccessfulLeads"]] == [1]
        assert api.lead(lead)["FirstName"] == "Ann"
        assert api.lead(lead)["JobTitle"] == "CEO"
        assert api.lead(other)["FirstName"] == "Bob"
        assert api.lead(lead, as_=clerk)["JobTitle"] == "CEO"  # still read

    @pytest.mark.parametrize("path", ["/Lead.Update", "/Lead.CreateOrUpdate", "/Lead.Create"])
    def test_a_single_lead_write_gets_a_500_naming_the_field(
        self, api: Api, clerk: Credentials, lead: str, path: str
    ) -> None:
        body = pairs(EmailAddress="lead@example.com", FirstName="Bob", JobTitle="CTO")
        if path == "/Lead.Create":
            body = pairs(EmailAddress="new@example.com", FirstName="Bob", JobTitle="CTO")
        response = api.post(path, params={"leadId": lead}, json=body, as_=clerk)
        assert response.status_code == 500
        error = response.json()
        assert error["Status"] == "Error"
        assert error["ExceptionType"] == "MXAccessDeniedException"
        assert "JobTitle" in error["ExceptionMessage"]
        assert api.lead(lead)["FirstName"] == "Ann"
        assert api.get("/Leads.GetByEmailaddress", params={"emailaddress": "new@example.com"}).json() == []
        history = api.get("/Lead.ChangeHistory", params={"leadId": lead}).json()
        assert {c["ChangedBy"] for c in history} == {api.user.user_id}

    def test_server_managed_fields_are_read_only_for_everyone(self, api: Api, lead: str) -> None:
        answer = api.bulk([{"EmailAddress": "lead@example.com", "CreatedBy": "x"}]).json()
        failed = answer["Details"]["FailedLeads"][0]
        assert failed["ReasonCode"] == "FIELD_READ_ONLY"
        assert failed["Reason"] == "CreatedBy is set by the server"


class TestHidden:
    def test_left_out_of_every_read(self, api: Api, clerk: Credentials, lead: str) -> None:
        api.bulk([{"EmailAddress": "lead@example.com", "mx_Secret": SECRET + "2", "FirstName": "Bob"}])
        reads = {
            "GetById": api.get("/Leads.GetById", params={"id": lead}, as_=clerk),
            "GetByEmailaddress": api.get(
                "/Leads.GetByEmailaddress", params={"emailaddress": "lead@example.com"}, as_=clerk
            ),
            "RetrieveLeadByPhoneNumber": api.get(
                "/RetrieveLeadByPhoneNumber", params={"phone": "+91-9876543210"}, as_=clerk
            ),
            "GetByQuickSearch": api.get("/Leads.GetByQuickSearch", params={"key": "Bob"}, as_=clerk),
            "Leads.Get": api.post(
                "/Leads.Get", json={"Parameter": {"LookupName": "FirstName", "LookupValue": "Bob"}}, as_=clerk
            ),
        }
        for name, response in reads.items():
            assert response.status_code == 200, name
            (found,) = response.json()
            assert found["ProspectID"] == lead, name
            assert found["JobTitle"] == "CEO", name
            assert not {"Company", "mx_Secret", "mx_Code"} & set(found), name
        for response in (*reads.values(), api.get("/Lead.ChangeHistory", params={"leadId": lead}, as_=clerk)):
            assert SECRET.encode() not in response.content
            assert b"Zenith" not in response.content
            assert b"mx_Secret" not in response.content

        history = api.get("/Lead.ChangeHistory", params={"leadId": lead}, as_=clerk).json()
        assert {c["Field"] for c in history} == {"EmailAddress", "Phone", "FirstName", "JobTitle", "OwnerId"}
        admins_history = api.get("/Lead.ChangeHistory", params={"leadId": lead}).json()
        assert {"Company", "mx_Secret", "mx_Code"} <= {c["Field"] for c in admins_history}

    def test_left_out_of_the_metadata(self, api: Api, clerk: Credentials) -> None:
        names = [f["SchemaName"] for f in api.get("/LeadsMetaData.Get", as_=clerk).json()]
        assert "JobTitle" in names
        assert not {"Company", "mx_Secret", "mx_Code"} & set(names)
        assert {"Company", "mx_Secret", "mx_Code"} <= {f["SchemaName"] for f in api.get("/LeadsMetaData.Get").json()}
        hidden = api.get("/LeadsMetaData.Get", params={"schemaName": "mx_Secret"}, as_=clerk)
        unknown = api.get("/LeadsMetaData.Get", params={"schemaName": "mx_Nope"}, as_=clerk)
        assert hidden.json() == unknown.json() == []

    def test_cannot_be_written_and_is_answered_like_an_unknown_field(
        self, api: Api, clerk: Credentials, lead: str
    ) -> None:
        def bulk(name: str) -> httpx.Response:
            return api.bulk([{"EmailAddress": "lead@example.com", "FirstName": "Bob", name: "x"}], as_=clerk)

        def single(path: str) -> Any:
            def call(name: str) -> httpx.Response:
                body = pairs(EmailAddress="lead@example.com", FirstName="Bob", **{name: "x"})
                return api.post(path, params={"leadId": lead}, json=body, as_=clerk)

            return call

        for call in (bulk, single("/Lead.Update"), single("/Lead.CreateOrUpdate"), single("/Lead.Create")):
            for hidden in ("mx_Secret", "company", "mx_Code"):
                assert renamed(call(hidden), hidden) == renamed(call("mx_Nope"), "mx_Nope")
        assert bulk("mx_Secret").json()["Details"]["FailedLeads"][0]["ReasonCode"] == "UNKNOWN_ATTRIBUTE"
        assert single("/Lead.Update")("mx_Secret").json()["ExceptionType"] == "MXUnknownAttributeException"
        after = api.lead(lead)
        assert (after["FirstName"], after["Company"], after["mx_Secret"]) == ("Ann", "Zenith", SECRET)

    @pytest.mark.parametrize(
        "body",
        [
            {"Parameter": {"LookupName": "{}", "LookupValue": "Zenith"}},
            {"Parameter": {"LookupName": "{}", "LookupValue": "Z", "SqlOperator": "LIKE"}},
            {"Parameter": {"LookupName": "{}", "LookupValue": "A", "SqlOperator": ">"}},
            {"Parameter": {"LookupName": "FirstName", "LookupValue": "Ann"}, "Sorting": {"ColumnName": "{}"}},
            {
                "Parameter": {"LookupName": "FirstName", "LookupValue": "Ann"},
                "Columns": {"Include_CSV": "FirstName,{}"},
            },
        ],
    )
    def test_cannot_be_searched_sorted_or_selected(
        self, api: Api, clerk: Credentials, lead: str, body: dict[str, Any]
    ) -> None:
        def call(name: str, user: Credentials = clerk) -> httpx.Response:
            filled = {k: {kk: vv.replace("{}", name) for kk, vv in v.items()} for k, v in body.items()}
            return api.post("/Leads.Get", json=filled, as_=user)

        assert call("Company", api.user).status_code == 200
        for hidden in ("Company", "mx_Secret"):
            response = call(hidden)
            assert response.status_code == 400
            assert renamed(response, hidden) == renamed(call("mx_Nope"), "mx_Nope")

    def test_cannot_find_leads_as_a_search_key(self, api: Api, clerk: Credentials, lead: str) -> None:
        def bulk(key: str) -> httpx.Response:
            return api.bulk([{key: "Z-1", "FirstName": "Bob"}], search_by=key, as_=clerk)

        assert bulk("mx_Code").status_code == 400
        assert renamed(bulk("mx_Code"), "mx_Code") == renamed(bulk("mx_Nope"), "mx_Nope")
        not_unique = api.bulk([{"FirstName": "Ann"}], search_by="FirstName", as_=clerk)
        assert not_unique.status_code == 400
        assert b"mx_Code" not in not_unique.content
        assert b"mx_Code" in api.bulk([{"FirstName": "Ann"}], search_by="FirstName").content

        def create_or_update(key: str) -> httpx.Response:
            body = [{"Attribute": "SearchBy", "Value": key}, *pairs(FirstName="Bob")]
            return api.post("/Lead.CreateOrUpdate", json=body, as_=clerk)

        assert renamed(create_or_update("mx_Code"), "mx_Code") == renamed(create_or_update("mx_Nope"), "mx_Nope")
        assert api.lead(lead)["FirstName"] == "Ann"

    def test_quick_search_does_not_match_on_it(
        self, api: Api, clerk: Credentials, lead: str, db: Database, server: LiveServer
    ) -> None:
        def quick(key: str, user: Credentials) -> list[str]:
            return [x["ProspectID"] for x in api.get("/Leads.GetByQuickSearch", params={"key": key}, as_=user).json()]

        assert quick("Zeni", api.user) == [lead]
        assert quick("Zeni", clerk) == []
        assert quick("Ann", clerk) == [lead]

        searched = ["FirstName", "LastName", "EmailAddress", "Phone", "Mobile", "Company"]
        add_template(db, "Blind", "all", hidden=searched)
        blind = make_user(db, "MarketingUser", template="Blind")
        wait_until(lambda: api.get("/Leads.GetById", params={"id": lead}, as_=blind).status_code == 200)
        for key in ("Ann", "Zeni", "lead", "+91", "a"):
            assert quick(key, blind) == []
        assert api.get("/Leads.GetByEmailaddress", params={"emailaddress": "lead@example.com"}, as_=blind).json() == []
        assert api.get("/RetrieveLeadByPhoneNumber", params={"phone": "+91-9876543210"}, as_=blind).json() == []


def test_administrators_ignore_their_template(api: Api, db: Database, clerk: Credentials, lead: str) -> None:
    boss = make_user(db, "Administrator", template="Clerk")
    read = api.lead(lead, as_=boss)
    assert (read["Company"], read["mx_Secret"]) == ("Zenith", SECRET)
    answer = api.bulk([{"EmailAddress": "lead@example.com", "JobTitle": "CTO", "mx_Secret": "new"}], as_=boss)
    assert answer.json()["Status"]["SuccessCount"] == 1
    assert "mx_Secret" in {f["SchemaName"] for f in api.get("/LeadsMetaData.Get", as_=boss).json()}
