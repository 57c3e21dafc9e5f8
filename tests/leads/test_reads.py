"""The read endpoints of spec section 5: by id, email, phone, quick search, Leads.Get, the field
metadata, and who owns a key."""

from typing import Any

import httpx
import pytest

from leadstore.catalog import save_setting
from leadstore.db import Database
from leadstore.fields.model import SYSTEM_FIELDS
from tests.helpers import Api, add_live_field, make_user, wait_until
from tests.test_app import assert_error

READ_NAMES = {f.schema_name if f.schema_name != "ProspectId" else "ProspectID" for f in SYSTEM_FIELDS}


def ids(leads: list[dict[str, Any]]) -> list[str]:
    return [lead["ProspectID"] for lead in leads]


def leads_get(api: Api, body: dict[str, Any]) -> httpx.Response:
    return api.post("/Leads.Get", json=body)


def set_setting(api: Api, db: Database, key: str, value: str, check: Any) -> None:
    with db.write() as conn:
        save_setting(conn, key, value)
    wait_until(check)


class TestGetById:
    def test_answers_one_lead_with_every_readable_field(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="a@example.com", FirstName="Ann")
        response = api.get("/Leads.GetById", params={"id": prospect_id})
        assert response.status_code == 200
        [lead] = response.json()
        assert set(lead) == READ_NAMES
        assert (lead["ProspectID"], lead["FirstName"], lead["Company"]) == (prospect_id, "Ann", None)
        assert all(value is None or isinstance(value, str) for value in lead.values())

    def test_unknown_id_answers_an_empty_array(self, api: Api) -> None:
        assert api.get("/Leads.GetById", params={"id": "00000000-0000-0000-0000-000000000000"}).json() == []

    def test_missing_id_answers_an_empty_array(self, api: Api) -> None:
        response = api.get("/Leads.GetById")
        assert response.status_code == 200
        assert response.json() == []

    def test_parameter_name_is_case_insensitive(self, api: Api) -> None:
        prospect_id = api.create_lead(FirstName="Ann")
        assert ids(api.get("/Leads.GetById", params={"ID": prospect_id}).json()) == [prospect_id]

    def test_custom_fields_are_read_too(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Joined", "Date")
        prospect_id = api.create_lead(FirstName="Ann", mx_Joined="2026-01-31")
        assert api.lead(prospect_id)["mx_Joined"] == "2026-01-31"

    def test_a_lead_outside_the_callers_scope_is_not_shown(self, api: Api, db: Database) -> None:
        seller = make_user(db, "SalesUser")
        theirs = api.create_lead(FirstName="Other")
        mine = api.create_lead(FirstName="Mine", OwnerId=seller.user_id)
        assert api.get("/Leads.GetById", params={"id": theirs}, as_=seller).json() == []
        assert ids(api.get("/Leads.GetById", params={"id": mine}, as_=seller).json()) == [mine]


class TestGetByEmail:
    def test_matches_case_insensitively(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="Mixed.Case@Example.com")
        response = api.get("/Leads.GetByEmailaddress", params={"emailaddress": "MIXED.case@example.COM"})
        assert response.status_code == 200
        assert ids(response.json()) == [prospect_id]
        assert response.json()[0]["EmailAddress"] == "mixed.case@example.com"

    def test_parameter_name_is_case_insensitive(self, api: Api) -> None:
        prospect_id = api.create_lead(EmailAddress="b@example.com")
        assert ids(api.get("/Leads.GetByEmailaddress", params={"EmailAddress": "b@example.com"}).json()) == [
            prospect_id
        ]

    @pytest.mark.parametrize("email", ["nobody@example.com", "not an email", ""])
    def test_no_match_answers_an_empty_array(self, api: Api, email: str) -> None:
        api.create_lead(EmailAddress="b@example.com")
        response = api.get("/Leads.GetByEmailaddress", params={"emailaddress": email})
        assert response.status_code == 200
        assert response.json() == []


class TestGetByPhone:
    @pytest.mark.parametrize("phone", ["+91-1234554321", "+911234554321", "+91 12345 54321", "1234554321"])
    def test_matches_any_way_of_writing_the_number(self, api: Api, phone: str) -> None:
        prospect_id = api.create_lead(Phone="+91-1234554321")
        response = api.get("/RetrieveLeadByPhoneNumber", params={"phone": phone})
        assert response.status_code == 200
        assert ids(response.json()) == [prospect_id]

    def test_searches_phone_and_mobile(self, api: Api) -> None:
        by_phone = api.create_lead(Phone="+91-9876543210")
        by_mobile = api.create_lead(Mobile="+91-9876543210")
        api.create_lead(Phone="+91-9876543211")
        found = api.get("/RetrieveLeadByPhoneNumber", params={"phone": "9876543210"}).json()
        assert sorted(ids(found)) == sorted([by_phone, by_mobile])

    def test_no_match_answers_an_empty_array(self, api: Api) -> None:
        assert api.get("/RetrieveLeadByPhoneNumber", params={"phone": "+1-2025550123"}).json() == []
        assert api.get("/RetrieveLeadByPhoneNumber", params={"phone": "not a phone"}).json() == []

    def test_bare_number_matches_nothing_when_a_country_code_is_mandatory(self, api: Api, db: Database) -> None:
        prospect_id = api.create_lead(Phone="+91-1234554321")
        probes = iter(range(5550001000, 5550002000))

        def setting_applied() -> bool:
            response = api.post("/Lead.Create", json=[{"Attribute": "Mobile", "Value": str(next(probes))}])
            return response.status_code == 500 and "country code" in response.json()["ExceptionMessage"]

        set_setting(api, db, "phone_country_code_mandatory", "true", setting_applied)
        assert api.get("/RetrieveLeadByPhoneNumber", params={"phone": "1234554321"}).json() == []
        assert ids(api.get("/RetrieveLeadByPhoneNumber", params={"phone": "+911234554321"}).json()) == [prospect_id]

    def test_bare_number_takes_the_default_country_code(self, api: Api, db: Database) -> None:
        prospect_id = api.create_lead(Phone="+44-2079460958")

        def setting_applied() -> bool:
            return bool(api.get("/RetrieveLeadByPhoneNumber", params={"phone": "2079460958"}).json())

        set_setting(api, db, "default_country_code", "44", setting_applied)
        assert ids(api.get("/RetrieveLeadByPhoneNumber", params={"phone": "20 7946 0958"}).json()) == [prospect_id]


class TestQuickSearch:
    @pytest.fixture
    def people(self, api: Api) -> dict[str, str]:
        return {
            "ravi": api.create_lead(FirstName="Ravi", LastName="Berg", EmailAddress="rb@example.com"),
            "ravina": api.create_lead(FirstName="Ravina", LastName="Shah", Company="Northwind"),
            "anna": api.create_lead(FirstName="Anna", LastName="Ravel", EmailAddress="anna@acme.io"),
            "phone": api.create_lead(FirstName="Zed", Phone="+91-9988776655"),
            "corp": api.create_lead(FirstName="Max", Company="Ravioli Corp"),
        }

    def search(self, api: Api, key: str) -> list[str]:
        response = api.get("/Leads.GetByQuickSearch", params={"key": key})
        assert response.status_code == 200
        return ids(response.json())

    def test_matches_a_prefix_of_first_name_last_name_or_company(self, api: Api, people: dict[str, str]) -> None:
        assert self.search(api, "Rav") == [people[k] for k in ("ravi", "ravina", "anna", "corp")]

    def test_matches_a_prefix_of_email_and_phone(self, api: Api, people: dict[str, str]) -> None:
        assert self.search(api, "anna@") == [people["anna"]]
        assert self.search(api, "+91-99887") == [people["phone"]]

    def test_is_case_insensitive(self, api: Api, people: dict[str, str]) -> None:
        assert self.search(api, "ravi") == self.search(api, "RAVI") == self.search(api, "Ravi")
        assert self.search(api, "ANNA@ACME") == [people["anna"]]

    def test_is_a_prefix_not_a_substring(self, api: Api, people: dict[str, str]) -> None:
        assert self.search(api, "wind") == []
        assert self.search(api, "North") == [people["ravina"]]

    def test_like_wildcards_in_the_key_are_literal(self, api: Api, people: dict[str, str]) -> None:
        assert self.search(api, "%") == []
        assert self.search(api, "R_vi") == []

    def test_empty_key_answers_nothing(self, api: Api, people: dict[str, str]) -> None:
        assert self.search(api, "") == []
        assert self.search(api, "   ") == []


class TestLeadsGet:
    @pytest.fixture
    def scored(self, api: Api) -> list[str]:
        return [
            api.create_lead(FirstName=name, LastName="Test", Score=score, EmailAddress=f"{name.lower()}@example.com")
            for name, score in (("Ann", "10"), ("Bob", "20"), ("Cid", "30"), ("Dee", "40"), ("Eve", "20"))
        ]

    def query(self, api: Api, name: str, value: str, operator: str = "=", **extra: Any) -> list[dict[str, Any]]:
        body = {"Parameter": {"LookupName": name, "LookupValue": value, "SqlOperator": operator}, **extra}
        response = leads_get(api, body)
        assert response.status_code == 200, response.text
        return list(response.json())

    @pytest.mark.parametrize(
        ("operator", "value", "expected"),
        [
            ("=", "20", [1, 4]),
            ("<>", "20", [0, 2, 3]),
            (">", "20", [2, 3]),
            ("<", "20", [0]),
            (">=", "30", [2, 3]),
            ("<=", "10", [0]),
        ],
    )
    def test_number_operators(
        self, api: Api, scored: list[str], operator: str, value: str, expected: list[int]
    ) -> None:
        assert ids(self.query(api, "Score", value, operator)) == [scored[i] for i in expected]

    def test_like_matches_a_substring_case_insensitively(self, api: Api, scored: list[str]) -> None:
        assert ids(self.query(api, "FirstName", "e", "LIKE")) == [scored[3], scored[4]]
        assert ids(self.query(api, "FirstName", "E", "like")) == [scored[3], scored[4]]

    def test_like_honours_a_given_wildcard(self, api: Api, scored: list[str]) -> None:
        assert ids(self.query(api, "EmailAddress", "b%", "LIKE")) == [scored[1]]

    def test_equality_normalises_the_value(self, api: Api, scored: list[str]) -> None:
        assert ids(self.query(api, "EmailAddress", "BOB@example.com")) == [scored[1]]

    def test_sorting_descending_with_direction_1(self, api: Api, scored: list[str]) -> None:
        found = self.query(api, "LastName", "Test", Sorting={"ColumnName": "Score", "Direction": "1"})
        assert [lead["Score"] for lead in found] == ["40", "30", "20", "20", "10"]

    def test_sorting_ascending_otherwise(self, api: Api, scored: list[str]) -> None:
        found = self.query(api, "LastName", "Test", Sorting={"ColumnName": "FirstName", "Direction": "0"})
        assert [lead["FirstName"] for lead in found] == ["Ann", "Bob", "Cid", "Dee", "Eve"]

    def test_paging_starts_at_1(self, api: Api, scored: list[str]) -> None:
        sorting = {"ColumnName": "FirstName", "Direction": "0"}
        pages = [
            ids(self.query(api, "LastName", "Test", Sorting=sorting, Paging={"PageIndex": index, "PageSize": 2}))
            for index in (1, 2, 3, 4)
        ]
        assert pages == [scored[0:2], scored[2:4], scored[4:5], []]

    def test_columns_selects_fields(self, api: Api, scored: list[str]) -> None:
        found = self.query(api, "Score", "10", Columns={"Include_CSV": "FirstName, Score"})
        assert found == [{"ProspectID": scored[0], "FirstName": "Ann", "Score": "10"}]

    def test_custom_field_can_be_queried(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Joined", "Date")
        early = api.create_lead(FirstName="Early", mx_Joined="2025-12-31")
        api.create_lead(FirstName="Late", mx_Joined="2026-02-01")
        assert ids(self.query(api, "mx_Joined", "2026-01-01", "<")) == [early]

    @pytest.mark.parametrize(
        ("body", "complaint"),
        [
            ({"Parameter": {"LookupName": "Nope", "LookupValue": "1"}}, "Nope"),
            ({"Parameter": {"LookupName": "Score", "LookupValue": "1", "SqlOperator": "IN"}}, "SqlOperator"),
            ({"Parameter": {"LookupName": "Score", "LookupValue": "x"}}, "Score"),
            ({"Parameter": {"LookupName": "Score", "LookupValue": "1"}, "Paging": {"PageSize": 1001}}, "PageSize"),
            ({"Parameter": {"LookupName": "Score", "LookupValue": "1"}, "Paging": {"PageIndex": 0}}, "PageIndex"),
            (
                {"Parameter": {"LookupName": "Score", "LookupValue": "1"}, "Sorting": {"ColumnName": "Nope"}},
                "Nope",
            ),
            ({"Parameter": {"LookupName": "Score", "LookupValue": "1"}, "Columns": {"Include_CSV": "Nope"}}, "Nope"),
            ({"Columns": {"Include_CSV": "FirstName"}}, "Parameter"),
        ],
    )
    def test_a_query_not_as_specified_gets_400(self, api: Api, body: dict[str, Any], complaint: str) -> None:
        assert complaint in assert_error(leads_get(api, body), 400, "MXInvalidInputException")

    def test_page_size_of_1000_is_allowed(self, api: Api, scored: list[str]) -> None:
        assert len(self.query(api, "LastName", "Test", Paging={"PageIndex": 1, "PageSize": 1000})) == 5


class TestMetadata:
    def test_lists_every_field_in_leadsquared_shape(self, api: Api) -> None:
        response = api.get("/LeadsMetaData.Get")
        assert response.status_code == 200
        fields = {f["SchemaName"]: f for f in response.json()}
        assert set(fields) == {f.schema_name for f in SYSTEM_FIELDS}
        email = fields["EmailAddress"]
        assert {
            k: email[k] for k in ("SchemaName", "DisplayName", "DataType", "IsMandatory", "Options", "IsUnique")
        } == {
            "SchemaName": "EmailAddress",
            "DisplayName": "Email",
            "DataType": "Email",
            "IsMandatory": False,
            "Options": [],
            "IsUnique": True,
        }
        # LeadSquared's documented keys, on every field.
        documented = {"Entity", "Name", "RenderType", "RenderTypeTextValue", "IsVisible", "IsSearchable", "IsSortable"}
        assert all(documented <= set(f) for f in fields.values())
        assert (fields["Phone"]["RenderType"], fields["Phone"]["RenderTypeTextValue"]) == (6, "Phone")
        assert fields["FirstName"]["MaxLength"] == "200"
        assert all(f["MaxLength"].isdigit() for f in fields.values())  # a MaxLength for every field
        assert fields["ProspectStage"]["Options"] == [
            {"Value": "Prospect"},
            {"Value": "Opportunity"},
            {"Value": "Customer"},
            {"Value": "Inactive"},
        ]
        assert all(isinstance(f["MaxLength"], str) for f in fields.values())

    def test_schema_name_filters_case_insensitively(self, api: Api) -> None:
        found = api.get("/LeadsMetaData.Get", params={"schemaname": "phone"}).json()
        assert [f["SchemaName"] for f in found] == ["Phone"]
        assert api.get("/LeadsMetaData.Get", params={"schemaName": "mx_Nope"}).json() == []

    def test_a_new_custom_field_appears_within_a_second(self, api: Api, db: Database) -> None:
        from tests.helpers import add_field

        add_field(db, "mx_Tier", "Select", options=["Gold", "Silver"], mandatory=True, display_name="Tier")

        def listed() -> bool:
            return api.get("/LeadsMetaData.Get", params={"schemaName": "mx_Tier"}).json() != []

        wait_until(listed, timeout=1.0)
        [tier] = api.get("/LeadsMetaData.Get", params={"schemaName": "mx_Tier"}).json()
        assert {k: tier[k] for k in ("SchemaName", "DisplayName", "DataType", "IsMandatory", "Options")} == {
            "SchemaName": "mx_Tier",
            "DisplayName": "Tier",
            "DataType": "Select",
            "IsMandatory": True,
            "Options": [{"Value": "Gold"}, {"Value": "Silver"}],
        }
        assert (tier["MaxLength"], tier["RenderTypeTextValue"]) == ("6", "Dropdown")


class TestUserByAccessKey:
    def test_answers_who_owns_the_key(self, api: Api, db: Database) -> None:
        response = api.get("/v2/Authentication.svc/UserByAccessKey.Get")
        assert response.status_code == 200
        body = response.json()
        host = api.http.base_url.netloc.decode()
        assert body == {
            "Id": api.user.user_id,
            "Name": body["Name"],
            "EmailAddress": "admin@example.com",
            "Role": "Administrator",
            "PassPhrase": "",
            "OrgId": body["OrgId"],
            "DefaultCountryCode": "91",
            "LSQCommonServiceURLs": {"api": host, "app": host},
        }
        assert isinstance(body["Name"], str)
        assert body["Name"]
        assert api.user.secret_key not in response.text

    def test_answers_for_any_role(self, api: Api, db: Database) -> None:
        seller = make_user(db, "SalesUser")
        body = api.get("/v2/Authentication.svc/UserByAccessKey.Get", as_=seller).json()
        assert (body["Id"], body["Role"], body["EmailAddress"]) == (seller.user_id, "SalesUser", seller.email)
