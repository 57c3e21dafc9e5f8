"""One normal form per value: every spelling of a number, a phone number or a mailbox is stored as
one value, so it collides on the unique index and every lookup finds it; and no text at all makes
a write or a lookup fail with a server error."""

import json
import unicodedata
from typing import Any

import idna
import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadstore.catalog import save_setting
from leadstore.db import Database
from leadstore.fields.model import SYSTEM_FIELDS, DataType, Field
from leadstore.fields.validation import InvalidValue, PhoneRules, normalize, to_wire
from tests.fields.test_validation import field
from tests.helpers import Api, add_field, wait_until

RULES = (
    PhoneRules(country_code_mandatory=False, default_country_code="91"),
    PhoneRules(country_code_mandatory=True, default_country_code="91"),
    PhoneRules(country_code_mandatory=False, default_country_code="44"),
)
OPTIONS = ("Gold", "Silver", "Ünïcode", "ﬁne")
FIELDS = [field(t, options=OPTIONS) for t in DataType] + [f for f in SYSTEM_FIELDS if not f.server_managed]

# Decimal digits in scripts people type phone numbers and dates in: ASCII, full-width,
# Arabic-Indic, Extended Arabic-Indic (Persian), Devanagari, Bengali, mathematical bold.
DIGIT_ZEROS = ("0", "\uff10", "\u0660", "\u06f0", "\u0966", "\u09e6", "\U0001d7ce")
SEPARATORS = ("", " ", "-", ".", "\u2013", "\u00a0", "\u3000", "\uff0d")
DASHES = ("-", "\u2013", "\uff0d")
# Characters that look like digits but are not decimal digits (str.isdigit() says yes, int() no).
NOT_DIGITS = "²³¹⁹①⑨⒈❶₂"
NASTY = [
    "+²-9812345671",
    "+⁹¹-9812345671",
    "+91-①9812345671",
    "\x00",
    "a\x00b",
    "\ud800",
    "x@\udfff.com",
    "+",
    "+٩١-",
    "１e５",
    "ﬁ@ｘ.ｃｏｍ",
    "a@xn--zz.example",
    "a@-x.example",
    "2026-٠١-٣١",
    "0001-01-01",
    "٢٤:٠٠",
    "+999999-1",
    "ﷺ" * 30,
    "\u0958" * 150,
    "İ@example.com",
    "\u0130\u0307",
    "%_\\",
    "0.00001",
    "-٠٫٥",
]

any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # includes lone surrogates
encodable_text = st.text(st.characters(codec="utf-8"), max_size=40)


def spelt_digits(digits: str, draw: Any) -> str:
    """``digits`` with each digit in a script of its own choosing."""
    return "".join(chr(ord(draw(st.sampled_from(DIGIT_ZEROS))) + int(d)) for d in digits)


@st.composite
def near_values(draw: Any) -> str:
    """Text shaped like the values of the typed fields, in any digits, with stray characters."""
    digits = draw(st.text("0123456789", min_size=1, max_size=14))
    shape = draw(st.sampled_from(["+{}", "+{}-{}", "{}", "{}.{}", "-{}", "{}-{}-{}", "{}:{}", "{}@{}.com", "{} {}"]))
    parts = [spelt_digits(digits[i::2] or "1", draw) for i in range(shape.count("{}"))]
    value = shape.format(*parts)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(value)))
        value = value[:at] + draw(st.sampled_from([*NOT_DIGITS, "\u3000", "\u2212", "(", "Ä", "\x00"])) + value[at:]
    return value


hostile = st.one_of(any_text, near_values(), st.sampled_from(NASTY))


class TestProperties:
    @given(value=hostile, field_=st.sampled_from(FIELDS), rules=st.sampled_from(RULES))
    @settings(max_examples=1000, deadline=None)
    def test_normalising_twice_changes_nothing(self, value: str, field_: Field, rules: PhoneRules) -> None:
        try:
            once = normalize(field_, value, rules)
        except InvalidValue:
            return
        assert normalize(field_, to_wire(field_, once), rules) == once  # also a Number, read back as text

    @given(value=hostile, field_=st.sampled_from(FIELDS), rules=st.sampled_from(RULES))
    @settings(max_examples=1000, deadline=None)
    def test_nothing_but_invalid_value_is_raised(self, value: str, field_: Field, rules: PhoneRules) -> None:
        try:
            normalize(field_, value, rules)
        except InvalidValue as exc:
            message = exc.message
        else:
            return
        assert field_.schema_name in message

    @given(data=st.data(), region=st.sampled_from(["IN", "GB", "US", "AE", "DE", "IT", "RU", "BR", "SG", "EG"]))
    @settings(max_examples=300, deadline=None)
    def test_every_spelling_of_a_phone_number_is_one_number(self, data: Any, region: str) -> None:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        code, national = str(example.country_code), phonenumbers.national_significant_number(example)
        canonical = f"+{code}-{national}"
        plus = data.draw(st.sampled_from(["+", "\uff0b"]))
        separator = data.draw(st.sampled_from(SEPARATORS))
        cut = data.draw(st.integers(0, len(national)))
        # Unless the country code stands apart, a dash would end it ("+1" "2-0155..." is +12).
        second = data.draw(st.sampled_from([s for s in SEPARATORS if separator or s not in DASHES]))
        spelling = (
            f"{plus}{spelt_digits(code, data.draw)}{separator}"
            f"{spelt_digits(national[:cut], data.draw)}{second}{spelt_digits(national[cut:], data.draw)}"
        )
        phone = field(DataType.PHONE)
        assert normalize(phone, canonical, RULES[0]) == canonical
        assert normalize(phone, spelling, RULES[0]) == canonical

    @pytest.mark.parametrize(
        ("spelling", "canonical"),
        [
            ("+91-09812345671", "+91-9812345671"),  # the trunk prefix is not part of the number
            ("09812345671", "+91-9812345671"),
            ("+44 (0)20 7946 0958", "+44-2079460958"),
            ("+1 1 202 555 0123", "+1-2025550123"),
            ("+39 06 1234 5678", "+39-0612345678"),  # Italy keeps its leading 0
            ("+7 812 123 45 67", "+7-8121234567"),  # the 8 is St Petersburg's area code here
        ],
    )
    def test_trunk_prefixes(self, spelling: str, canonical: str) -> None:
        assert normalize(field(DataType.PHONE), spelling, RULES[0]) == canonical

    @pytest.mark.parametrize("value", ["+²-9812345671", "+⁹¹-9812345671", "+91-①9812345671", "+91-98123⑤5671"])
    def test_digits_only_to_isdigit_are_not_digits(self, value: str) -> None:
        with pytest.raises(InvalidValue, match="must be a possible phone number"):
            normalize(field(DataType.PHONE), value, RULES[0])

    @given(
        local=st.text("abcxyz09._éüñ", min_size=1, max_size=12).filter(
            lambda s: s[0] not in "._" and s[-1] not in "._" and ".." not in s
        ),
        labels=st.lists(st.text("abcdeéöü", min_size=1, max_size=10), min_size=1, max_size=3),
        data=st.data(),
    )
    @settings(max_examples=300, deadline=None)
    def test_every_spelling_of_a_mailbox_is_one_address(self, local: str, labels: list[str], data: Any) -> None:
        domain = ".".join([*labels, "example"])
        email = field(DataType.EMAIL)
        canonical = normalize(email, f"{local}@{domain}", RULES[0])
        punycode = idna.encode(domain, uts46=True).decode()
        assert canonical.endswith("@" + punycode)
        full_width = "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in local)
        spelling = data.draw(st.sampled_from([local, local.upper(), full_width, unicodedata.normalize("NFD", local)]))
        at = data.draw(st.sampled_from(["@", "\uff20"]))
        host = data.draw(st.sampled_from([domain, domain.upper(), punycode, unicodedata.normalize("NFD", domain)]))
        assert normalize(email, f"{spelling}{at}{host}", RULES[0]) == canonical

    @given(data=st.data(), number=st.integers(0, 10**12), year=st.integers(1, 9999), minute=st.integers(0, 1439))
    @settings(max_examples=200, deadline=None)
    def test_any_digits_spell_one_number_date_and_time(self, data: Any, number: int, year: int, minute: int) -> None:
        assert normalize(field(DataType.NUMBER), spelt_digits(str(number), data.draw), RULES[0]) == number
        date = f"{year:04d}-03-01"
        assert normalize(field(DataType.DATE), spelt_digits(date[:4], data.draw) + date[4:], RULES[0]) == date
        time = f"{minute // 60:02d}:{minute % 60:02d}"
        spelt = spelt_digits(time[:2], data.draw) + ":" + spelt_digits(time[3:], data.draw)
        assert normalize(field(DataType.TIME), spelt, RULES[0]) == time

    @given(number=st.from_regex(r"-?[0-9]{1,9}\.0{0,10}[0-9]{1,6}", fullmatch=True))
    @settings(max_examples=300, deadline=None)
    def test_a_number_reads_back_as_a_number_it_accepts(self, number: str) -> None:
        number_field = field(DataType.NUMBER)
        stored = normalize(number_field, number, RULES[0])
        assert normalize(number_field, to_wire(number_field, stored), RULES[0]) == stored

    def test_text_is_composed_but_not_folded(self) -> None:
        text = field(DataType.TEXT)
        assert normalize(text, "Cafe\u0301", RULES[0]) == "Caf\u00e9"
        assert normalize(text, "ﬁne x²", RULES[0]) == "ﬁne x²"  # what people wrote in a name stays

    def test_select_and_boolean_match_in_any_width(self) -> None:
        assert normalize(field(DataType.SELECT, options=OPTIONS), "ＧＯＬＤ", RULES[0]) == "Gold"
        assert normalize(field(DataType.SELECT, options=OPTIONS), "fine", RULES[0]) == "ﬁne"
        assert normalize(field(DataType.BOOLEAN), "ｔｒｕｅ", RULES[0]) == "1"


# -- Through the live server ------------------------------------------------------------------

PHONE = "+91-9812345671"
PHONE_SPELLINGS = ["＋９１-９８１２３４５６７１", "+٩١-٩٨١٢٣٤٥٦٧١", "+91 ०९८१२ ३४५६७१", "+91-09812345671", "9812345671"]
EMAIL = "josé@xn--bcher-kva.example"
EMAIL_SPELLINGS = ["jose\u0301@bücher.example", "ｊｏｓé＠BÜCHER.example", "JOSÉ@xn--bcher-kva.example"]
# DataType -> a value of that type, for custom fields.
CUSTOM = {
    "Number": "1",
    "Email": "a@example.com",
    "Phone": "+91-9000000001",
    "Website": "https://example.com",
    "Date": "2026-01-31",
    "DateTime": "2026-01-31 14:05:09",
    "Time": "14:05",
    "Select": "Gold",
    "Boolean": "true",
    "Text": "x",
}
OPERATORS = ("=", "<>", ">", "<", ">=", "<=", "LIKE")
# LeadSquared answers a bad field on a single-lead endpoint with HTTP 500 and one of these types
# (spec section 1); any other 500 is a failure of the server.
DOCUMENTED_500 = {
    "MXDuplicateEntryException",
    "MXInvalidEntityException",
    "MXUnknownAttributeException",
    "MXMandatoryAttributeMissingException",
    "MXInvalidInputException",
    "MXAccessDeniedException",
}


@pytest.fixture
def api(db: Database, api: Api) -> Api:
    """The live server, with the rate limit lifted: these tests send many calls (others test it)."""
    with db.write() as conn:
        save_setting(conn, "rate_limit_calls", "1000000")
    wait_until(lambda: api.get("/LeadsMetaData.Get").headers.get("X-RateLimit-Limit") == "1000000", timeout=5)
    return api


def pairs(**fields: str) -> list[dict[str, str]]:
    return [{"Attribute": k, "Value": v} for k, v in fields.items()]


def ids(leads: Any) -> list[str]:
    return [lead["ProspectID"] for lead in leads]


def leads_get(api: Api, name: str, value: str, operator: str = "=") -> Any:
    body = {"Parameter": {"LookupName": name, "LookupValue": value, "SqlOperator": operator}}
    response = api.post("/Leads.Get", json=body)
    assert response.status_code == 200, response.text
    return response.json()


class TestOneLeadPerValue:
    def test_spellings_of_a_phone_collide_on_the_unique_index(self, api: Api) -> None:
        api.create_lead(Phone=PHONE)
        other = api.create_lead(Phone="+91-9000000000")
        for spelling in PHONE_SPELLINGS:
            created = api.post("/Lead.Create", json=pairs(Phone=spelling))
            updated = api.post("/Lead.Update", json=pairs(Phone=spelling), params={"leadId": other})
            for response in (created, updated):
                assert response.status_code == 500, (spelling, response.text)
                assert response.json()["ExceptionType"] == "MXDuplicateEntryException"

    def test_spellings_of_a_mailbox_collide_on_the_unique_index(self, api: Api) -> None:
        lead = api.create_lead(EmailAddress=EMAIL_SPELLINGS[0])
        assert api.lead(lead)["EmailAddress"] == EMAIL
        for spelling in EMAIL_SPELLINGS:
            response = api.post("/Lead.Create", json=pairs(EmailAddress=spelling))
            assert response.json()["ExceptionType"] == "MXDuplicateEntryException", (spelling, response.text)

    def test_every_lookup_finds_the_lead_by_any_spelling(self, api: Api) -> None:
        lead = api.create_lead(Phone=PHONE_SPELLINGS[0], EmailAddress=EMAIL_SPELLINGS[1], FirstName="Jose\u0301")
        read = api.lead(lead)
        assert (read["Phone"], read["EmailAddress"], read["FirstName"]) == (PHONE, EMAIL, "José")
        for phone in [PHONE, *PHONE_SPELLINGS]:
            assert ids(api.get("/RetrieveLeadByPhoneNumber", params={"phone": phone}).json()) == [lead], phone
            assert ids(leads_get(api, "Phone", phone)) == [lead], phone
        for email in [EMAIL, *EMAIL_SPELLINGS]:
            assert ids(api.get("/Leads.GetByEmailaddress", params={"emailaddress": email}).json()) == [lead], email
            assert ids(leads_get(api, "EmailAddress", email)) == [lead], email
        assert ids(api.get("/Leads.GetById", params={"id": lead.upper()}).json()) == [lead]
        assert ids(leads_get(api, "Phone", "٩٨١٢٣", "LIKE")) == [lead]
        assert ids(leads_get(api, "FirstName", "Jose\u0301", "LIKE")) == [lead]
        assert ids(leads_get(api, "Phone", "+٩١-٩٨١٢٣٤٥٦٧٠", ">")) == [lead]
        for key in ("ｊｏｓé", "jose\u0301@", "＋９１-９８"):
            assert ids(api.get("/Leads.GetByQuickSearch", params={"key": key}).json()) == [lead], key

    def test_create_or_update_finds_the_lead_by_any_spelling(self, api: Api) -> None:
        lead = api.create_lead(Phone=PHONE, EmailAddress=EMAIL)
        for number, spelling in enumerate(PHONE_SPELLINGS):
            body = pairs(Phone=spelling, JobTitle=f"T{number}", SearchBy="Phone")
            response = api.post("/Lead.CreateOrUpdate", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["Message"]["Id"] == lead
        for spelling in EMAIL_SPELLINGS:
            response = api.post("/Lead.CreateOrUpdate", json=pairs(EmailAddress=spelling, Company="Acme"))
            assert response.json()["Message"]["Id"] == lead, response.text
        assert api.lead(lead)["JobTitle"] == f"T{len(PHONE_SPELLINGS) - 1}"

    @pytest.mark.parametrize(("key", "spellings"), [("Phone", PHONE_SPELLINGS), ("EmailAddress", EMAIL_SPELLINGS)])
    def test_bulk_search_key_matches_any_spelling(self, api: Api, key: str, spellings: list[str]) -> None:
        lead = api.create_lead(Phone=PHONE, EmailAddress=EMAIL)
        for number, spelling in enumerate(spellings):
            response = api.bulk([{key: spelling, "JobTitle": f"J{number}"}], search_by=key)
            assert response.status_code == 200, response.text
            details = response.json()["Details"]
            assert len(details["SuccessfulLeads"]) == 1, (spelling, details)
            assert api.lead(lead)["JobTitle"] == f"J{number}"

    def test_a_backslash_in_a_like_pattern_is_literal(self, api: Api) -> None:
        lead = api.create_lead(FirstName="a\\b", LastName="a%b")
        assert ids(leads_get(api, "FirstName", "a\\")) == []  # = compares whole values
        for pattern in ("a\\", "%\\b", "\\b", "%a\\b%"):
            assert ids(leads_get(api, "FirstName", pattern, "LIKE")) == [lead], pattern
        for pattern in ("%\\", "%\\%\\"):  # ends with a backslash; has two
            assert ids(leads_get(api, "FirstName", pattern, "LIKE")) == [], pattern
        assert ids(leads_get(api, "LastName", "a%", "LIKE")) == [lead]

    @pytest.mark.parametrize("path", ["/Lead.Create", "/Lead.CreateOrUpdate"])
    def test_a_digit_int_refuses_is_an_invalid_value_not_a_failure(self, api: Api, path: str) -> None:
        response = api.post(path, json=pairs(Phone="+²-9812345671"))
        assert response.status_code == 500
        body = response.json()
        assert body["ExceptionType"] == "MXInvalidInputException", body
        assert "must be a possible phone number" in body["ExceptionMessage"]
        lookup = api.get("/RetrieveLeadByPhoneNumber", params={"phone": "+²-9812345671"})
        assert lookup.status_code == 200, lookup.text
        assert lookup.json() == []
        response = api.post("/Leads.Get", json={"Parameter": {"LookupName": "Phone", "LookupValue": "+²-9812345671"}})
        assert response.status_code == 400, response.text
        assert "must be a possible phone number" in response.json()["ExceptionMessage"]


def no_failure(response: Any) -> None:
    """The server answered the call itself: in the envelope, and a 500 only where LeadSquared
    answers a bad value with one."""
    assert response.status_code != 502
    if response.status_code >= 400:
        body = response.json()
        assert body["Status"] == "Error", body
        if response.status_code >= 500:
            assert body["ExceptionType"] in DOCUMENTED_500, body


def post_raw(api: Api, path: str, body: Any, **params: str) -> Any:
    """JSON with \\u escapes, so that lone surrogates reach the server as a client may send them."""
    content = json.dumps(body).encode()
    return api.post(path, content=content, headers={"Content-Type": "application/json"}, params=params)


def test_hostile_values_never_fail_the_server(api: Api, db: Database) -> None:
    for data_type, _ in CUSTOM.items():
        options = OPTIONS if data_type == "Select" else ()
        add_field(db, f"mx_{data_type}", data_type, unique=data_type in ("Email", "Phone"), options=options)
    wait_until(lambda: len(api.get("/LeadsMetaData.Get").json()) >= len(SYSTEM_FIELDS) + len(CUSTOM))
    lead = api.create_lead(EmailAddress="known@example.com", Phone=PHONE)
    names = [f.schema_name for f in SYSTEM_FIELDS if not f.server_managed] + [f"mx_{t}" for t in CUSTOM]
    unique = {"EmailAddress", "Phone", "Mobile", "mx_Email", "mx_Phone"}

    # A URL cannot carry a lone surrogate: lookups by query parameter get text that can be encoded.
    @given(value=hostile, lookup=encodable_text | near_values(), name=st.sampled_from(names))
    @example(value="+²-9812345671", lookup="+²-9812345671", name="Phone")
    @example(value="%_\\", lookup="%_\\", name="FirstName")
    @example(value="\ud800", lookup="١٢", name="Score")
    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def calls(value: str, lookup: str, name: str) -> None:
        key = name if name in unique else "EmailAddress"
        no_failure(post_raw(api, "/Lead.Create", pairs(**{name: value})))
        no_failure(post_raw(api, "/Lead.Update", pairs(**{name: value}), leadId=lead))
        no_failure(post_raw(api, "/Lead.CreateOrUpdate", pairs(**{name: value, "SearchBy": key})))
        bulk = {"SearchByKey": key, "LeadPropertiesList": [{"Fields": pairs(**{key: value, "JobTitle": "x"})}]}
        no_failure(post_raw(api, "/Lead/Bulk/UpdateV2", bulk))
        bulk["LeadPropertiesList"] = [{"Fields": pairs(**{"EmailAddress": "known@example.com", name: value})}]
        bulk["SearchByKey"] = "EmailAddress"
        no_failure(post_raw(api, "/Lead/Bulk/UpdateV2", bulk))
        for path, parameter in [
            ("/Leads.GetById", "id"),
            ("/Leads.GetByEmailaddress", "emailaddress"),
            ("/RetrieveLeadByPhoneNumber", "phone"),
            ("/Leads.GetByQuickSearch", "key"),
        ]:
            no_failure(api.get(path, params={parameter: lookup}))
        for operator in OPERATORS:
            body = {"Parameter": {"LookupName": name, "LookupValue": value, "SqlOperator": operator}}
            no_failure(post_raw(api, "/Leads.Get", body))

    calls()
