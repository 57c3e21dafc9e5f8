"""Attempts to reach a hidden field or a lead out of scope through the corners of the search API:
spellings of field names, column lists, SQL-ish operators and values, LIKE wildcards, paging past
the end, comparison operators used as an oracle. The role and template matrix itself is tested
in tests/access; here every answer is scanned for anything the caller may not see."""

import time

import pytest

from leadstore.catalog import Catalog
from leadstore.db import Database
from leadstore.users import service as user_service
from leadstore.users.service import Credentials
from tests.helpers import Api, add_field, make_user

SECRET_VALUE = "classified-7f3a"
FOREIGN = {"EmailAddress": "foreign@example.com", "FirstName": "Foreign", "Company": "Elsewhere"}


@pytest.fixture
def clerk(api: Api, db: Database) -> Credentials:
    """A SalesUser (own leads only) whose template hides mx_Secret; one lead of its own, one not."""
    add_field(db, "mx_Secret", "Text", unique=True)
    catalog = Catalog(db)
    catalog.refresh()
    with db.write() as conn:
        user_service.save_template(conn, catalog.fields, "NoSecret", "own", [], ["mx_Secret"], create=True)
    clerk = make_user(db, "SalesUser", template="NoSecret")
    deadline = time.monotonic() + 5
    while api.get("/LeadsMetaData.Get", params={"schemaName": "mx_Secret"}).json() == []:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    api.create_lead(**FOREIGN, mx_Secret="other-" + SECRET_VALUE)
    api.create_lead(EmailAddress="mine@example.com", FirstName="Mine", OwnerId=clerk.user_id, mx_Secret=SECRET_VALUE)
    return clerk


def leads_get(api: Api, clerk: Credentials, body: object) -> tuple[int, str]:
    response = api.post("/Leads.Get", json=body, as_=clerk)
    assert response.status_code in (200, 400), response.text
    return response.status_code, response.text


HIDDEN_SPELLINGS = ["mx_Secret", "MX_SECRET", " mx_secret ", "mx_Secret\t", "mx_Secret\x00", "Mx_Secret"]


def test_hidden_field_in_any_spelling_finds_sorts_and_shows_nothing(api: Api, clerk: Credentials) -> None:
    seen = []
    for name in HIDDEN_SPELLINGS:
        for body in (
            {"Parameter": {"LookupName": name, "LookupValue": SECRET_VALUE}},
            {"Parameter": {"LookupName": name, "LookupValue": "c", "SqlOperator": ">"}},
            {"Parameter": {"LookupName": name, "LookupValue": "%", "SqlOperator": "LIKE"}},
            {
                "Parameter": {"LookupName": "FirstName", "LookupValue": "%", "SqlOperator": "LIKE"},
                "Sorting": {"ColumnName": name},
            },
            {"Parameter": {"LookupName": "FirstName", "LookupValue": "Mine"}, "Columns": {"Include_CSV": name}},
            {
                "Parameter": {"LookupName": "FirstName", "LookupValue": "Mine"},
                "Columns": {"Include_CSV": f"FirstName,{name}"},
            },
        ):
            status, text = leads_get(api, clerk, body)
            assert status == 400, (body, text)
            seen.append(text)
    # Column lists that are not field names at all.
    for columns in ("*", "FirstName,*", "mx_Secret AS x", "FirstName;mx_Secret", "leads.mx_secret", "1"):
        body = {"Parameter": {"LookupName": "FirstName", "LookupValue": "Mine"}, "Columns": {"Include_CSV": columns}}
        seen.append(leads_get(api, clerk, body)[1])
    for answer in seen:
        assert SECRET_VALUE not in answer


def test_operators_values_and_paging_reach_no_lead_out_of_scope(api: Api, clerk: Credentials) -> None:
    seen = []
    for operator, value in (
        ("LIKE", "%"),
        ("LIKE", "_%"),
        ("LIKE", "%%"),
        ("LIKE", "%' OR '1'='1"),
        ("=", "x' OR '1'='1"),
        ("<>", "nobody"),
        (">", ""),
        (">=", "A"),
        ("<", "zzzz"),
    ):
        for name in ("FirstName", "EmailAddress", "Company"):
            body = {
                "Parameter": {"LookupName": name, "LookupValue": value, "SqlOperator": operator},
                "Paging": {"PageIndex": 1, "PageSize": 1000},
                "Sorting": {"ColumnName": "EmailAddress", "Direction": "1"},
            }
            status, text = leads_get(api, clerk, body)
            seen.append(text)
            if status == 200:
                assert all(
                    lead["EmailAddress"] == "mine@example.com"
                    for lead in api.post("/Leads.Get", json=body, as_=clerk).json()
                )
    for operator in ("= 1 OR 1=1 --", "IN", "LIKE'", "; DROP TABLE leads", "IS NOT", "ILIKE", "GLOB", "REGEXP"):
        body = {"Parameter": {"LookupName": "FirstName", "LookupValue": "x", "SqlOperator": operator}}
        status, text = leads_get(api, clerk, body)
        assert status == 400, (operator, text)
        seen.append(text)
    for page in (2, 3, 1_000_000):
        body = {
            "Parameter": {"LookupName": "FirstName", "LookupValue": "%", "SqlOperator": "LIKE"},
            "Paging": {"PageIndex": page, "PageSize": 1},
        }
        assert leads_get(api, clerk, body) == (200, "[]")
    for key in ("%", "_", "F", "Fo", "foreign", "Elsewhere", "*", "\\"):
        response = api.get("/Leads.GetByQuickSearch", params={"key": key}, as_=clerk)
        assert response.status_code == 200
        seen.append(response.text)
    seen.append(api.get("/Leads.GetByEmailaddress", params={"emailaddress": FOREIGN["EmailAddress"]}, as_=clerk).text)
    for answer in seen:
        for value in FOREIGN.values():
            assert value not in answer, answer
        assert SECRET_VALUE not in answer


def test_writes_cannot_probe_a_hidden_field(api: Api, clerk: Credentials) -> None:
    """A hidden field is answered as an unknown one, as a search key and as a written attribute."""
    unknown = api.bulk([{"mx_Nonexistent": "x", "FirstName": "y"}], search_by="mx_Nonexistent", as_=clerk)
    hidden = api.bulk([{"mx_Secret": SECRET_VALUE, "FirstName": "y"}], search_by="mx_Secret", as_=clerk)
    assert unknown.status_code == hidden.status_code == 400
    assert unknown.json()["ExceptionMessage"].replace("mx_Nonexistent", "X") == hidden.json()[
        "ExceptionMessage"
    ].replace("mx_Secret", "X")
    answers = [
        api.bulk([{"EmailAddress": "mine@example.com", name: "z"}], as_=clerk).json()["Details"]["FailedLeads"][0]
        for name in ("mx_Nonexistent", "mx_Secret")
    ]
    assert answers[0]["ReasonCode"] == answers[1]["ReasonCode"] == "UNKNOWN_ATTRIBUTE"
