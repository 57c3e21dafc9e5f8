"""Field validation of spec section 3: every data type, phone numbers and the country-code
setting, and the rules every field has (max length, mandatory, unique)."""

from typing import Any

import pytest

from leadstore.db import Database
from leadstore.fields.model import DataType, Field
from leadstore.fields.validation import InvalidValue, PhoneRules, normalize, to_wire
from tests.helpers import Api, add_live_field, wait_until

OPTIONAL_CODE = PhoneRules(country_code_mandatory=False, default_country_code="91")
MANDATORY_CODE = PhoneRules(country_code_mandatory=True, default_country_code="91")


def field(data_type: DataType, **kw: Any) -> Field:
    return Field(f"mx_{data_type.value}", f"mx_{data_type.value.lower()}", data_type, data_type.value, **kw)


def stored(data_type: DataType, raw: str | None, phone: PhoneRules = OPTIONAL_CODE, **kw: Any) -> Any:
    return normalize(field(data_type, **kw), raw, phone)


def wire(data_type: DataType, raw: str, **kw: Any) -> str | None:
    """A value as it reads back after being written."""
    return to_wire(field(data_type, **kw), stored(data_type, raw, **kw))


def refused(data_type: DataType, raw: str, phone: PhoneRules = OPTIONAL_CODE, **kw: Any) -> InvalidValue:
    with pytest.raises(InvalidValue) as caught:
        stored(data_type, raw, phone, **kw)
    assert f"mx_{data_type.value}" in caught.value.message
    return caught.value


class TestTypes:
    @pytest.mark.parametrize(
        ("raw", "read"),
        [("12", "12"), ("-3", "-3"), ("3.50", "3.5"), (" 7 ", "7"), ("0.25", "0.25"), ("+4", "4"), (".5", "0.5")],
    )
    def test_number_accepts_decimals(self, raw: str, read: str) -> None:
        assert wire(DataType.NUMBER, raw) == read

    @pytest.mark.parametrize("raw", ["twelve", "1,5", "1e3", "0x10", "12abc", "--1", "NaN", "inf", "1 000"])
    def test_number_refuses_anything_else(self, raw: str) -> None:
        refused(DataType.NUMBER, raw)

    def test_email_is_trimmed_and_lower_cased(self) -> None:
        assert stored(DataType.EMAIL, "  John.Doe@Example.COM ") == "john.doe@example.com"

    @pytest.mark.parametrize("raw", ["john", "john@", "@example.com", "john@@example.com", "jo hn@example.com"])
    def test_email_refuses_invalid_addresses(self, raw: str) -> None:
        refused(DataType.EMAIL, raw)

    @pytest.mark.parametrize("raw", ["http://example.com", "https://example.com/path?q=1", "HTTPS://Example.com"])
    def test_website_accepts_http_urls(self, raw: str) -> None:
        assert stored(DataType.WEBSITE, raw) == raw

    @pytest.mark.parametrize(
        "raw", ["example.com", "ftp://example.com", "https://", "https://exa mple.com", "mailto:x"]
    )
    def test_website_refuses_other_values(self, raw: str) -> None:
        refused(DataType.WEBSITE, raw)

    def test_date_is_year_month_day(self) -> None:
        assert wire(DataType.DATE, "2026-01-31") == "2026-01-31"
        assert wire(DataType.DATE, "2024-02-29") == "2024-02-29"

    @pytest.mark.parametrize("raw", ["31-01-2026", "2026/01/31", "2026-02-30", "2026-13-01", "2026-01-31 10:00:00"])
    def test_date_refuses_other_forms_and_impossible_days(self, raw: str) -> None:
        refused(DataType.DATE, raw)

    def test_datetime_is_date_and_time_to_the_second(self) -> None:
        assert wire(DataType.DATETIME, "2026-01-31 14:05:09") == "2026-01-31 14:05:09"

    @pytest.mark.parametrize("raw", ["2026-01-31", "2026-01-31T14:05:09", "2026-01-31 25:00:00", "2026-01-31 14:05"])
    def test_datetime_refuses_other_forms(self, raw: str) -> None:
        refused(DataType.DATETIME, raw)

    def test_time_is_hours_and_minutes(self) -> None:
        assert wire(DataType.TIME, "14:05") == "14:05"
        assert wire(DataType.TIME, "00:00") == "00:00"

    @pytest.mark.parametrize("raw", ["24:00", "14:60", "2pm", "14:05:09", "1405"])
    def test_time_refuses_other_forms(self, raw: str) -> None:
        refused(DataType.TIME, raw)

    @pytest.mark.parametrize(("raw", "read"), [("1", "1"), ("0", "0"), ("true", "1"), ("FALSE", "0"), ("True", "1")])
    def test_boolean_accepts_1_0_true_false(self, raw: str, read: str) -> None:
        assert wire(DataType.BOOLEAN, raw) == read

    @pytest.mark.parametrize("raw", ["yes", "2", "t", "on"])
    def test_boolean_refuses_anything_else(self, raw: str) -> None:
        refused(DataType.BOOLEAN, raw)

    def test_select_matches_an_option_case_insensitively_and_stores_its_spelling(self) -> None:
        assert stored(DataType.SELECT, "gold", options=("Gold", "Silver")) == "Gold"
        assert stored(DataType.SELECT, " SILVER ", options=("Gold", "Silver")) == "Silver"

    def test_select_refuses_other_values_and_names_the_options(self) -> None:
        error = refused(DataType.SELECT, "Bronze", options=("Gold", "Silver"))
        assert "Gold" in error.message
        assert "Silver" in error.message

    def test_text_is_trimmed(self) -> None:
        assert stored(DataType.TEXT, "  Pune ") == "Pune"

    @pytest.mark.parametrize("data_type", list(DataType))
    def test_empty_means_no_value(self, data_type: DataType) -> None:
        assert stored(data_type, "", options=("A",)) is None
        assert stored(data_type, None, options=("A",)) is None
        assert stored(data_type, "   ", options=("A",)) is None


class TestFieldRules:
    def test_text_default_max_length_is_200(self) -> None:
        assert stored(DataType.TEXT, "x" * 200) == "x" * 200
        error = refused(DataType.TEXT, "x" * 201)
        assert "200" in error.message
        assert error.code == "TOO_LONG"

    def test_max_length_is_per_field(self) -> None:
        assert stored(DataType.TEXT, "abcde", max_length=5) == "abcde"
        assert refused(DataType.TEXT, "abcdef", max_length=5).code == "TOO_LONG"

    def test_max_length_counts_characters_not_bytes(self) -> None:
        assert stored(DataType.TEXT, "é" * 5, max_length=5) == "é" * 5

    @pytest.mark.parametrize("data_type", list(DataType))
    def test_mandatory_field_cannot_be_emptied(self, data_type: DataType) -> None:
        error = refused(data_type, " ", is_mandatory=True, options=("A",))
        assert error.code == "MANDATORY_MISSING"


class TestPhone:
    @pytest.mark.parametrize(
        "raw", ["+91-1234554321", "+911234554321", "+91 12345 54321", "1234554321", "12345 54321", "+91-12345-54321"]
    )
    def test_seed_example_in_every_accepted_form(self, raw: str) -> None:
        assert stored(DataType.PHONE, raw) == "+91-1234554321"

    @pytest.mark.parametrize(
        ("raw", "normal"),
        [
            ("+1-2025550123", "+1-2025550123"),
            ("+12025550123", "+1-2025550123"),
            ("+1 (202) 555-0123", "+1-2025550123"),
            ("+1-202-555-0123", "+1-2025550123"),
            ("+44 20 7946 0958", "+44-2079460958"),
            ("+971501234567", "+971-501234567"),
        ],
    )
    def test_other_countries(self, raw: str, normal: str) -> None:
        assert stored(DataType.PHONE, raw) == normal

    def test_bare_number_takes_the_default_country_code(self) -> None:
        rules = PhoneRules(country_code_mandatory=False, default_country_code="44")
        assert stored(DataType.PHONE, "2079460958", rules) == "+44-2079460958"

    def test_bare_number_is_refused_when_a_country_code_is_mandatory(self) -> None:
        error = refused(DataType.PHONE, "1234554321", MANDATORY_CODE)
        assert "country code" in error.message
        assert stored(DataType.PHONE, "+911234554321", MANDATORY_CODE) == "+91-1234554321"

    @pytest.mark.parametrize(
        "raw",
        ["+91-12", "+91-123456789012345678", "+999-1234567", "abc", "+", "+91-", "+-1234554321", "12ab34", "+91x"],
    )
    def test_impossible_numbers_are_refused(self, raw: str) -> None:
        refused(DataType.PHONE, raw)


def create(api: Api, **fields: str) -> Any:
    return api.post("/Lead.Create", json=[{"Attribute": k, "Value": v} for k, v in fields.items()])


class TestThroughTheApi:
    """The same rules hold on a running server, for system and custom fields."""

    @pytest.mark.parametrize(
        ("data_type", "good", "read", "bad"),
        [
            ("Number", "42.5", "42.5", "lots"),
            ("Email", "A@B.io", "a@b.io", "a@"),
            ("Phone", "+91 12345 54321", "+91-1234554321", "+91-1"),
            ("Website", "https://x.io", "https://x.io", "x.io"),
            ("Date", "2026-01-31", "2026-01-31", "31/01/2026"),
            ("DateTime", "2026-01-31 14:05:09", "2026-01-31 14:05:09", "2026-01-31"),
            ("Time", "14:05", "14:05", "2pm"),
            ("Boolean", "true", "1", "yes"),
            ("Text", "anything", "anything", "x" * 201),
        ],
    )
    def test_custom_field_of_each_type(
        self, api: Api, db: Database, data_type: str, good: str, read: str, bad: str
    ) -> None:
        add_live_field(api, db, "mx_Value", data_type)
        response = create(api, mx_Value=good)
        assert response.status_code == 200, response.text
        assert api.lead(response.json()["Message"]["Id"])["mx_Value"] == read
        response = create(api, mx_Value=bad)
        assert response.status_code == 500
        assert "mx_Value" in response.json()["ExceptionMessage"]

    def test_select_field(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Tier", "Select", options=["Gold", "Silver"])
        response = create(api, mx_Tier="GOLD")
        assert api.lead(response.json()["Message"]["Id"])["mx_Tier"] == "Gold"
        assert create(api, mx_Tier="Bronze").json()["ExceptionType"] == "MXInvalidInputException"

    def test_system_select_field_has_the_stages(self, api: Api) -> None:
        assert api.lead(api.create_lead(ProspectStage="opportunity"))["ProspectStage"] == "Opportunity"
        assert create(api, ProspectStage="Lost").status_code == 500

    def test_custom_max_length(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Code", "Text", max_length=4)
        assert create(api, mx_Code="ABCD").status_code == 200
        response = create(api, mx_Code="ABCDE")
        assert response.json()["ExceptionType"] == "MXInvalidInputException"
        assert "4" in response.json()["ExceptionMessage"]

    def test_custom_unique_field_refuses_a_second_holder(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_Badge", "Text", unique=True)
        api.create_lead(mx_Badge="B-1")
        response = create(api, mx_Badge="B-1")
        assert response.status_code == 500
        assert response.json()["ExceptionType"] == "MXDuplicateEntryException"
        assert create(api, mx_Badge="B-2").status_code == 200

    def test_custom_unique_email_field_compares_case_insensitively(self, api: Api, db: Database) -> None:
        add_live_field(api, db, "mx_WorkEmail", "Email", unique=True)
        api.create_lead(mx_WorkEmail="Boss@Corp.com")
        assert create(api, mx_WorkEmail="boss@corp.COM").json()["ExceptionType"] == "MXDuplicateEntryException"

    def test_leads_without_a_unique_value_do_not_clash(self, api: Api) -> None:
        api.create_lead(FirstName="A")
        api.create_lead(FirstName="B")
        assert create(api, FirstName="C", EmailAddress="").status_code == 200

    def test_phone_and_mobile_are_unique_separately(self, api: Api) -> None:
        api.create_lead(Phone="+91-1234554321")
        assert create(api, Mobile="+91-1234554321").status_code == 200
        assert create(api, Mobile="1234554321").json()["ExceptionType"] == "MXDuplicateEntryException"

    def test_country_code_setting_reaches_the_server(self, api: Api, db: Database) -> None:
        from leadstore.catalog import save_setting

        assert api.lead(api.create_lead(Phone="9876543210"))["Phone"] == "+91-9876543210"
        with db.write() as conn:
            save_setting(conn, "phone_country_code_mandatory", "true")
        probes = iter(range(5550001000, 5550002000))
        wait_until(lambda: create(api, Mobile=str(next(probes))).status_code == 500, timeout=1.0)
        response = create(api, Mobile="9876500000")
        assert response.json()["ExceptionType"] == "MXInvalidInputException"
        assert "country code" in response.json()["ExceptionMessage"]
        assert create(api, Mobile="+91 98765 00000").status_code == 200
