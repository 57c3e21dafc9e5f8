"""Rules that must hold on every endpoint alike: every way of creating a lead applies every
field rule, a hidden field is never named (errors included), reads never fail with 500, and
an error never echoes a huge input whole."""

import pytest

from leadstore.db import Database
from leadstore.errors import AdminInputError
from tests.access.conftest import add_template, server_state
from tests.helpers import Api, LiveServer, add_field, add_live_field, make_user, wait_until

CREATE_PATHS = ["/Lead.Create", "/Lead.CreateOrUpdate"]
HUGE = "X" * 100_000
HUGE_QUERY = "X" * 20_000  # within the URL lengths clients send


def pairs(**fields: str) -> list[dict[str, str]]:
    return [{"Attribute": k, "Value": v} for k, v in fields.items()]


def leads_named(api: Api, email: str) -> list[object]:
    return list(api.get("/Leads.GetByEmailaddress", params={"emailaddress": email}).json())


class TestEveryCreatePathAppliesEveryRule:
    @pytest.mark.parametrize("path", CREATE_PATHS)
    def test_a_lead_without_a_mandatory_custom_field_is_refused(self, api: Api, db: Database, path: str) -> None:
        add_live_field(api, db, "mx_Region", mandatory=True)
        response = api.post(path, json=pairs(EmailAddress="new@example.com", FirstName="Ann"))
        assert response.status_code == 500
        assert response.json()["ExceptionType"] == "MXMandatoryAttributeMissingException"
        assert "mx_Region" in response.json()["ExceptionMessage"]
        assert leads_named(api, "new@example.com") == []

    @pytest.mark.parametrize("path", CREATE_PATHS)
    def test_a_lead_with_the_mandatory_field_is_created(self, api: Api, db: Database, path: str) -> None:
        add_live_field(api, db, "mx_Region", mandatory=True)
        response = api.post(path, json=pairs(EmailAddress="new@example.com", mx_Region="North"))
        assert response.status_code == 200, response.text
        assert len(leads_named(api, "new@example.com")) == 1

    def test_create_or_update_of_an_existing_lead_needs_no_mandatory_value_it_already_has(
        self, api: Api, db: Database
    ) -> None:
        add_live_field(api, db, "mx_Region", mandatory=True)
        api.create_lead(EmailAddress="old@example.com", mx_Region="North")
        response = api.post("/Lead.CreateOrUpdate", json=pairs(EmailAddress="old@example.com", FirstName="Bo"))
        assert response.status_code == 200, response.text
        assert api.lead(response.json()["Message"]["Id"])["FirstName"] == "Bo"


class TestAHiddenMandatoryFieldIsNeverNamed:
    @pytest.mark.parametrize("path", CREATE_PATHS)
    def test_the_create_error_does_not_name_it_and_nothing_is_written(
        self, api: Api, db: Database, server: LiveServer, path: str
    ) -> None:
        add_field(db, "mx_Salary", mandatory=True)
        add_template(db, "NoPay", "all", hidden=["mx_Salary"])
        clerk = make_user(db, "SalesUser", template="NoPay")
        wait_until(lambda: server_state(server).catalog.fields.get("mx_Salary") is not None)
        response = api.post(path, json=pairs(EmailAddress="new@example.com"), as_=clerk)
        assert response.status_code == 500
        body = response.json()
        assert body["ExceptionType"] == "MXMandatoryAttributeMissingException"
        assert "salary" not in response.text.lower()
        assert "administrator" in body["ExceptionMessage"]
        assert leads_named(api, "new@example.com") == []

    def test_a_visible_missing_field_is_named_but_the_hidden_one_is_not(
        self, api: Api, db: Database, server: LiveServer
    ) -> None:
        add_field(db, "mx_Salary", mandatory=True)
        add_field(db, "mx_Region", mandatory=True)
        add_template(db, "NoPay", "all", hidden=["mx_Salary"])
        clerk = make_user(db, "SalesUser", template="NoPay")
        wait_until(lambda: server_state(server).catalog.fields.get("mx_Region") is not None)
        response = api.post("/Lead.Create", json=pairs(EmailAddress="new@example.com"), as_=clerk)
        assert "mx_Region" in response.json()["ExceptionMessage"]
        assert "salary" not in response.text.lower()


class TestReadsNeverFail:
    def test_change_history_answers_the_same_empty_list_for_unknown_and_out_of_reach_leads(
        self, api: Api, db: Database
    ) -> None:
        hidden_lead = api.create_lead(EmailAddress="boss@example.com", FirstName="Ann")
        seller = make_user(db, "SalesUser")
        unknown = "00000000-0000-0000-0000-000000000000"
        answers = [
            api.get("/Lead.ChangeHistory", params={"leadId": lead_id}, as_=seller)
            for lead_id in (hidden_lead, unknown, "not-a-uuid", "", HUGE_QUERY, "a\x00b", "+²-9812345671")
        ]
        answers.append(api.get("/Lead.ChangeHistory", as_=seller))
        assert [(a.status_code, a.json()) for a in answers] == [(200, [])] * len(answers)
        assert api.get("/Lead.ChangeHistory", params={"leadId": hidden_lead}).json() != []

    @pytest.mark.parametrize(
        ("path", "param"),
        [
            ("/Leads.GetById", "id"),
            ("/Leads.GetByEmailaddress", "emailaddress"),
            ("/RetrieveLeadByPhoneNumber", "phone"),
            ("/Leads.GetByQuickSearch", "key"),
            ("/Lead.ChangeHistory", "leadId"),
        ],
    )
    @pytest.mark.parametrize("value", ["a\x00b", "\x00", HUGE_QUERY, "%_\\", "+²-9812345671", "١٢٣"])
    def test_a_lookup_of_any_value_answers_a_list(self, api: Api, path: str, param: str, value: str) -> None:
        response = api.get(path, params={param: value})
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), list)

    @pytest.mark.parametrize("operator", ["=", "LIKE", "<>", ">"])
    @pytest.mark.parametrize("value", ["a\x00b", HUGE])
    def test_leads_get_with_any_value_never_answers_500(self, api: Api, operator: str, value: str) -> None:
        body = {"Parameter": {"LookupName": "FirstName", "LookupValue": value, "SqlOperator": operator}}
        response = api.post("/Leads.Get", json=body)
        assert response.status_code in (200, 400), response.text
        assert len(response.content) < 2_000

    def test_an_update_of_a_lead_id_no_lead_can_have_is_not_found(self, api: Api) -> None:
        for lead_id in ("a\x00b", HUGE_QUERY):
            response = api.post("/Lead.Update", params={"leadId": lead_id}, json=pairs(FirstName="Bo"))
            assert response.status_code == 500
            assert response.json()["ExceptionType"] == "MXInvalidEntityException"


class TestEchoedInputIsBounded:
    """Every error quotes what it was sent cut short: a 100,000-character input never comes back."""

    def test_bulk_search_by_key(self, api: Api) -> None:
        response = api.bulk([{"EmailAddress": "a@example.com"}], search_by=HUGE)
        assert response.status_code == 400
        assert "SearchByKey" in response.json()["ExceptionMessage"]
        assert len(response.content) < 1_000

    def test_bulk_unknown_attribute(self, api: Api) -> None:
        api.create_lead(EmailAddress="a@example.com")
        answer = api.bulk([{"EmailAddress": "a@example.com", HUGE: "x"}]).json()
        reason = answer["Details"]["FailedLeads"][0]["Reason"]
        assert answer["Details"]["FailedLeads"][0]["ReasonCode"] == "UNKNOWN_ATTRIBUTE"
        assert len(reason) < 300

    @pytest.mark.parametrize("path", ["/Lead.Create", "/Lead.CreateOrUpdate"])
    def test_single_lead_unknown_attribute_and_bad_value(self, api: Api, path: str) -> None:
        for body in (pairs(**{HUGE: "x"}), pairs(EmailAddress=HUGE), pairs(Score=HUGE), pairs(Phone=HUGE)):
            response = api.post(path, json=body)
            assert response.status_code in (400, 500)
            assert len(response.content) < 1_000, response.text[:200]

    def test_create_or_update_search_by(self, api: Api) -> None:
        response = api.post("/Lead.CreateOrUpdate", json=[*pairs(EmailAddress="a@example.com"), *pairs(SearchBy=HUGE)])
        assert response.status_code == 500
        assert len(response.content) < 1_000

    @pytest.mark.parametrize(
        "body",
        [
            {"Parameter": {"LookupName": HUGE, "LookupValue": "x"}},
            {"Parameter": {"LookupName": "FirstName", "LookupValue": "x", "SqlOperator": HUGE}},
            {"Parameter": {"LookupName": "FirstName", "LookupValue": "x"}, "Sorting": {"ColumnName": HUGE}},
            {"Parameter": {"LookupName": "FirstName", "LookupValue": "x"}, "Columns": {"Include_CSV": HUGE}},
            {"Parameter": {"LookupName": "Score", "LookupValue": HUGE}},
            {"Parameter": {"LookupName": "FirstName", "LookupValue": "x"}, "Paging": {"PageIndex": HUGE}},
        ],
    )
    def test_leads_get(self, api: Api, body: dict[str, object]) -> None:
        response = api.post("/Leads.Get", json=body)
        assert response.status_code == 400, response.text[:200]
        assert len(response.content) < 1_000, response.text[:200]

    def test_unknown_path(self, api: Api) -> None:
        response = api.get("/" + "Y" * 20_000)
        assert response.status_code == 404
        assert len(response.content) < 1_000


class TestUniqueValuesFitTheirIndex:
    """A unique value is kept in an index; one too large for it is refused as too long, on both
    databases alike, never as a database failure."""

    @pytest.mark.parametrize("path", CREATE_PATHS)
    def test_a_unique_value_of_any_spelling_within_the_limit_is_stored(self, api: Api, db: Database, path: str) -> None:
        add_live_field(api, db, "mx_Code", unique=True)
        value = "".join(chr(0x10000 + i) for i in range(200))  # 4 bytes a character in UTF-8
        response = api.post(path, json=pairs(mx_Code=value))
        assert response.status_code == 200, response.text

    def test_a_unique_value_longer_than_the_index_takes_is_too_long_everywhere(self, api: Api, db: Database) -> None:
        add_field(db, "mx_Wide", "Website", unique=True)
        add_live_field(api, db, "mx_Code", unique=True, max_length=500)
        wide = "https://example.com/" + "\u4e00" * 3000
        response = api.post("/Lead.Create", json=pairs(mx_Wide=wide))
        assert response.status_code == 500
        assert response.json()["ExceptionType"] == "MXInvalidInputException"
        assert "maximum length of 500" in response.json()["ExceptionMessage"]
        lead = api.create_lead(EmailAddress="a@example.com")
        answer = api.bulk([{"EmailAddress": "a@example.com", "mx_Code": "\u4e00" * 501}]).json()
        assert answer["Details"]["FailedLeads"][0]["ReasonCode"] == "TOO_LONG"
        assert api.lead(lead)["mx_Code"] is None

    def test_a_unique_field_cannot_be_given_a_longer_maximum(self, db: Database) -> None:
        with pytest.raises(AdminInputError, match="at most 500"):
            add_field(db, "mx_Code", unique=True, max_length=4000)
