"""Hostile and broken input: every case is answered with a clear error in LeadSquared's envelope,
and nothing is written.

Whole-request problems (not JSON, wrong shape, too big) are 400/413 on every endpoint. A bad
*field* is judged as the spec says: on Update Leads in Bulk v2 the lead lands in FailedLeads
(HTTP 200), on single-lead endpoints it is an HTTP 500 with a specific ``MX...Exception`` type
(LeadSquared's behaviour), never the generic server failure.
"""

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from leadstore.db import Database
from leadstore.leads.changes import MAX_FIELDS_PER_LEAD
from leadstore.middleware import MAX_BODY_BYTES
from tests.helpers import LM, Api, LiveServer
from tests.reliability.support import assert_envelope, keys_query, raw_request, snapshot

BULK = "/Lead/Bulk/UpdateV2"
EMAIL = "target@example.com"


@pytest.fixture
def target(api: Api) -> str:
    """One lead, so that a write that should not happen would have something to change."""
    return api.create_lead(EmailAddress=EMAIL, FirstName="Before", Company="Acme")


def bulk_body(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"SearchByKey": "EmailAddress", "LeadPropertiesList": [{"Fields": list(fields)}]}


def pair(attribute: Any, value: Any) -> dict[str, Any]:
    return {"Attribute": attribute, "Value": value}


KEY = pair("EmailAddress", EMAIL)

MALFORMED = [
    b"",
    b"{",
    b"[",
    b'{"LeadPropertiesList": [',
    b'{"LeadPropertiesList": [{"Fields": [{"Attribute": "FirstName", "Value": "x"',
    b"{'LeadPropertiesList': []}",
    b'{"LeadPropertiesList": []} trailing',
    b"nul",
    b"NaN",
    b'{"a": 1,}',
    b"\xef\xbb\xbf{}",
    b'{"LeadPropertiesList": [{"Fields": [{"Attribute": "FirstName", "Value": "\xff\xfe"}]}]}',
    b'{"LeadPropertiesList": [{"Fields": [{"Attribute": "FirstName", "Value": "\\ud800"}]}]}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"[" * 100_000,
]


# One database per test is costly on PostgreSQL, so each test walks a whole table of cases.
def test_malformed_json_is_400(api: Api, db: Database, target: str) -> None:
    before = snapshot(db)
    for path in (BULK, "/Lead.Create", "/Lead.Update", "/Lead.CreateOrUpdate", "/Leads.Get"):
        for content in MALFORMED:
            response = api.post(path, content=content, params={"leadId": target})
            message = assert_envelope(response, 400, "MXInvalidInputException")
            assert "JSON" in message, (path, content[:40])
    assert snapshot(db) == before


def test_every_truncation_of_a_valid_body_is_400(api: Api, db: Database, target: str) -> None:
    body = orjson.dumps(bulk_body(KEY, pair("FirstName", "After"), pair("Company", "Other")))
    before = snapshot(db)
    for cut in range(len(body)):
        response = api.post(BULK, content=body[:cut])
        assert_envelope(response, 400, "MXInvalidInputException")
    assert snapshot(db) == before


LEAD = {"Fields": [KEY, pair("FirstName", "After")]}

# (body, the position the message must name)
WRONG_BULK_SHAPES: list[tuple[Any, str]] = [
    ([LEAD], "body"),
    ("LeadPropertiesList", "body"),
    (25, "body"),
    (None, "body"),
    ({"SearchByKey": 5, "LeadPropertiesList": [LEAD]}, "SearchByKey"),
    ({"SearchByKey": ["EmailAddress"], "LeadPropertiesList": [LEAD]}, "SearchByKey"),
    ({"SearchByKey": {"EmailAddress": 1}, "LeadPropertiesList": [LEAD]}, "SearchByKey"),
    ({"SearchByKey": "FirstName", "LeadPropertiesList": [LEAD]}, "SearchByKey"),
    ({"SearchByKey": "EmailAddress; DROP TABLE leads--", "LeadPropertiesList": [LEAD]}, "SearchByKey"),
    ({"Options": "yes", "LeadPropertiesList": [LEAD]}, "Options"),
    ({"Options": [], "LeadPropertiesList": [LEAD]}, "Options"),
    ({"Options": {"PushNonExistentLeadsToUnProcessedList": "true"}, "LeadPropertiesList": [LEAD]}, "Options"),
    ({"Options": {"PushNonExistentLeadsToUnProcessedList": 1}, "LeadPropertiesList": [LEAD]}, "Options"),
    ({"Options": {"DryRun": "false"}, "LeadPropertiesList": [LEAD]}, "Options.DryRun"),
    ({"SearchByKey": "EmailAddress"}, "LeadPropertiesList"),
    ({"LeadPropertiesList": None}, "LeadPropertiesList"),
    ({"LeadPropertiesList": LEAD}, "LeadPropertiesList"),
    ({"LeadPropertiesList": "x"}, "LeadPropertiesList"),
    ({"LeadPropertiesList": []}, "LeadPropertiesList"),
    ({"LeadPropertiesList": [LEAD] * 26}, "LeadPropertiesList"),
    ({"LeadPropertiesList": [LEAD, "x"]}, "LeadPropertiesList[1]"),
    ({"LeadPropertiesList": [LEAD, [LEAD]]}, "LeadPropertiesList[1]"),
    ({"LeadPropertiesList": [LEAD, 7]}, "LeadPropertiesList[1]"),
    ({"LeadPropertiesList": [LEAD, None]}, "LeadPropertiesList[1]"),
    ({"LeadPropertiesList": [LEAD, {"Fields": "x"}]}, "LeadPropertiesList[1].Fields"),
    ({"LeadPropertiesList": [LEAD, {"Fields": {"Attribute": "a", "Value": "b"}}]}, "LeadPropertiesList[1].Fields"),
    ({"LeadPropertiesList": [LEAD, {"Fields": 3}]}, "LeadPropertiesList[1].Fields"),
    ({"LeadPropertiesList": [{"Fields": [KEY, "x"]}]}, "LeadPropertiesList[0].Fields[1]"),
    ({"LeadPropertiesList": [{"Fields": [KEY, []]}]}, "LeadPropertiesList[0].Fields[1]"),
    ({"LeadPropertiesList": [{"Fields": [KEY, None]}]}, "LeadPropertiesList[0].Fields[1]"),
    ({"LeadPropertiesList": [{"Fields": [KEY, {}]}]}, "LeadPropertiesList[0].Fields[1]"),
    ({"LeadPropertiesList": [{"Fields": [KEY, {"Attribute": "FirstName"}]}]}, "LeadPropertiesList[0].Fields[1]"),
    ({"LeadPropertiesList": [{"Fields": [KEY, {"Value": "x"}]}]}, "LeadPropertiesList[0].Fields[1]"),
    ({"LeadPropertiesList": [{"Fields": [KEY, pair(5, "x")]}]}, "LeadPropertiesList[0].Fields[1].Attribute"),
    ({"LeadPropertiesList": [{"Fields": [KEY, pair(None, "x")]}]}, "LeadPropertiesList[0].Fields[1].Attribute"),
    ({"LeadPropertiesList": [{"Fields": [KEY, pair("", "x")]}]}, "LeadPropertiesList[0].Fields[1].Attribute"),
    (
        {"LeadPropertiesList": [{"Fields": [KEY, pair(["FirstName"], "x")]}]},
        "LeadPropertiesList[0].Fields[1].Attribute",
    ),
    ({"LeadPropertiesList": [{"Fields": [KEY, pair({"a": 1}, "x")]}]}, "LeadPropertiesList[0].Fields[1].Attribute"),
    (
        {"LeadPropertiesList": [{"Fields": [KEY, pair("FirstName", {"a": "b"})]}]},
        "LeadPropertiesList[0].Fields[1].Value",
    ),
    ({"LeadPropertiesList": [{"Fields": [KEY, pair("FirstName", ["x"])]}]}, "LeadPropertiesList[0].Fields[1].Value"),
    # The last lead is the broken one: nothing of the first may be written either.
    ({"LeadPropertiesList": [LEAD, {"Fields": [KEY, pair("Company", [1])]}]}, "LeadPropertiesList[1].Fields[1].Value"),
]


def test_bulk_body_of_the_wrong_shape_is_400_naming_the_position(api: Api, db: Database, target: str) -> None:
    before = snapshot(db)
    for body, position in WRONG_BULK_SHAPES:
        sent = {"SearchByKey": "EmailAddress", **body} if isinstance(body, dict) and "SearchByKey" not in body else body
        response = api.post(BULK, content=orjson.dumps(sent))
        message = assert_envelope(response, 400, "MXInvalidInputException")
        assert position in message, (body, message)
    assert snapshot(db) == before


WRONG_PAIRS_SHAPES: list[tuple[Any, str]] = [
    ({"Attribute": "FirstName", "Value": "x"}, "body"),
    ("FirstName=x", "body"),
    (None, "body"),
    (3, "body"),
    ([pair("EmailAddress", "n@example.com"), "x"], "body[1]"),
    ([pair("EmailAddress", "n@example.com"), None], "body[1]"),
    ([pair("EmailAddress", "n@example.com"), ["FirstName", "x"]], "body[1]"),
    ([{"Attribute": "FirstName"}], "body[0]"),
    ([{"Value": "x"}], "body[0]"),
    ([pair(1, "x")], "body[0].Attribute"),
    ([pair(None, "x")], "body[0].Attribute"),
    ([pair("", "x")], "body[0].Attribute"),
    ([pair("EmailAddress", "n@example.com"), pair("FirstName", {"x": "y"})], "body[1].Value"),
    ([pair("EmailAddress", "n@example.com"), pair("FirstName", ["x"])], "body[1].Value"),
]


def test_single_lead_body_of_the_wrong_shape_is_400_naming_the_position(api: Api, db: Database, target: str) -> None:
    before = snapshot(db)
    for path in ("/Lead.Create", "/Lead.Update", "/Lead.CreateOrUpdate"):
        for body, position in WRONG_PAIRS_SHAPES:
            response = api.post(path, content=orjson.dumps(body), params={"leadId": target})
            message = assert_envelope(response, 400, "MXInvalidInputException")
            assert position in message, (path, body, message)
    assert snapshot(db) == before


# (attribute, value, the ReasonCode of the failed lead, the single-lead exception type)
BAD_FIELDS = [
    ("FirstName", "x" * 201, "TOO_LONG", "MXInvalidInputException"),
    ("Notes", "x" * 900_000, "TOO_LONG", "MXInvalidInputException"),
    ("mx_Nowhere", "x" * 900_000, "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ("FirstName", "a\x00b", "INVALID_VALUE", "MXInvalidInputException"),
    ("Company", "\x00", "INVALID_VALUE", "MXInvalidInputException"),
    ("First\x00Name", "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ("FirstName\x00", "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ("EmailAddress; DROP TABLE leads--", "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ('"mx_a" --', "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ('mx_a\\" --', "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ("first_name", "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ("FirstName' OR '1'='1", "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ("leads.first_name", "x", "UNKNOWN_ATTRIBUTE", "MXUnknownAttributeException"),
    ("Score", "1; DROP TABLE leads", "INVALID_VALUE", "MXInvalidInputException"),
    ("Score", "1e400", "INVALID_VALUE", "MXInvalidInputException"),
    ("Score", "NaN", "INVALID_VALUE", "MXInvalidInputException"),
    ("Score", "9" * 5000, "INVALID_VALUE", "MXInvalidInputException"),
    ("Phone", "+91-" + "1" * 5000, "INVALID_VALUE", "MXInvalidInputException"),
    ("Website", "javascript:alert(1)", "INVALID_VALUE", "MXInvalidInputException"),
    ("ProspectStage", "Customer'; --", "INVALID_VALUE", "MXInvalidInputException"),
    ("ProspectAutoId", "1", "FIELD_READ_ONLY", "MXAccessDeniedException"),
    ("CreatedOn", "2020-01-01 00:00:00", "FIELD_READ_ONLY", "MXAccessDeniedException"),
    ("OwnerId", "' OR 1=1 --", "INVALID_VALUE", "MXInvalidInputException"),
]


def test_bad_field_fails_the_lead_in_bulk_and_writes_nothing(api: Api, db: Database, target: str) -> None:
    before = snapshot(db)
    for attribute, value, code, _ in BAD_FIELDS:
        response = api.post(BULK, json=bulk_body(KEY, pair("JobTitle", "After"), pair(attribute, value)))
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["Status"]["FailureCount"] == 1, (attribute, answer)
        failed = answer["Details"]["FailedLeads"][0]
        assert failed["ReasonCode"] == code, (attribute, failed)
        assert 0 < len(failed["Reason"]) < 1000, attribute  # names the field without echoing a huge value
    assert snapshot(db) == before
    assert api.lead(target)["JobTitle"] is None


def test_bad_field_on_a_single_lead_endpoint_names_it_and_writes_nothing(api: Api, db: Database, target: str) -> None:
    before = snapshot(db)
    for attribute, value, _, exception_type in BAD_FIELDS:
        create = [pair("EmailAddress", "new@example.com"), pair(attribute, value)]
        update = [pair("JobTitle", "After"), pair(attribute, value)]
        for path, body in (("/Lead.Create", create), ("/Lead.Update", update), ("/Lead.CreateOrUpdate", create)):
            response = api.post(path, json=body, params={"leadId": target})
            message = assert_envelope(response, 500, exception_type)
            assert "failed to process" not in message, (path, attribute)
            assert len(message) < 1000, (path, attribute)
    assert snapshot(db) == before


def test_repeated_attribute_fails_and_writes_nothing(api: Api, db: Database, target: str) -> None:
    before = snapshot(db)
    for attribute in ("FirstName", "firstname", "FIRSTNAME"):
        _repeated(api, target, attribute)
    assert snapshot(db) == before


def _repeated(api: Api, target: str, attribute: str) -> None:
    response = api.post(BULK, json=bulk_body(KEY, pair("FirstName", "A"), pair(attribute, "B")))
    failed = response.json()["Details"]["FailedLeads"][0]
    assert failed["ReasonCode"] == "DUPLICATE_ATTRIBUTE"
    assert "FirstName" in failed["Reason"]
    response = api.post("/Lead.Update", json=[pair("FirstName", "A"), pair(attribute, "B")], params={"leadId": target})
    assert "more than once" in assert_envelope(response, 500)
    response = api.post(BULK, json=bulk_body(KEY, pair("EmailAddress", EMAIL), pair("FirstName", "B")))
    assert response.json()["Details"]["FailedLeads"][0]["ReasonCode"] == "DUPLICATE_ATTRIBUTE"


def test_sql_looking_search_key_value_finds_nothing(api: Api, db: Database, target: str) -> None:
    before = snapshot(db)
    for value in ("' OR '1'='1", "target@example.com' --", "%", "_", "*"):
        response = api.post(BULK, json=bulk_body(pair("EmailAddress", value), pair("FirstName", "After")))
        assert response.json()["Details"]["FailedLeads"][0]["ReasonCode"] == "LEAD_NOT_FOUND"
        response = api.post(
            BULK,
            json={"LeadPropertiesList": [{"Fields": [pair("ProspectId", value), pair("FirstName", "After")]}]},
        )
        assert response.json()["Details"]["FailedLeads"][0]["ReasonCode"] == "LEAD_NOT_FOUND"
    assert snapshot(db) == before


@pytest.mark.parametrize("count", [MAX_FIELDS_PER_LEAD + 1, 10_000])
def test_too_many_fields_in_one_lead_is_400(api: Api, db: Database, target: str, count: int) -> None:
    fields = [KEY] + [pair(f"mx_f{i}", "x") for i in range(count - 1)]
    before = snapshot(db)
    response = api.post(BULK, json={"SearchByKey": "EmailAddress", "LeadPropertiesList": [{"Fields": fields}]})
    message = assert_envelope(response, 400, "MXInvalidInputException")
    assert "LeadPropertiesList[0].Fields" in message
    assert str(MAX_FIELDS_PER_LEAD) in message
    response = api.post("/Lead.Create", json=fields)
    assert str(MAX_FIELDS_PER_LEAD) in assert_envelope(response, 400, "MXInvalidInputException")
    assert snapshot(db) == before


def test_many_unknown_fields_under_the_limit_fail_the_lead_quickly(api: Api, db: Database, target: str) -> None:
    fields = [KEY] + [pair(f"mx_f{i}", "x" * 1000) for i in range(MAX_FIELDS_PER_LEAD - 1)]
    before = snapshot(db)
    started = time.monotonic()
    response = api.post(BULK, json={"SearchByKey": "EmailAddress", "LeadPropertiesList": [{"Fields": fields}] * 2})
    assert time.monotonic() - started < 5
    assert response.json()["Status"]["FailureCount"] == 2
    assert snapshot(db) == before


def _padded_bulk(size: int) -> bytes:
    """A valid bulk body of exactly ``size`` bytes (padding in an ignored key)."""
    base = orjson.dumps({**bulk_body(KEY, pair("FirstName", "After")), "Padding": ""})
    return base[:-2] + b"x" * (size - len(base)) + base[-2:]


def test_body_of_exactly_one_mib_is_accepted(api: Api, target: str) -> None:
    body = _padded_bulk(MAX_BODY_BYTES)
    assert len(body) == MAX_BODY_BYTES
    response = api.post(BULK, content=body)
    assert response.status_code == 200, response.text
    assert api.lead(target)["FirstName"] == "After"


def test_body_of_one_mib_and_one_byte_is_413(api: Api, db: Database, server: LiveServer, target: str) -> None:
    body = _padded_bulk(MAX_BODY_BYTES + 1)
    before = snapshot(db)
    message = assert_envelope(api.post(BULK, content=body), 413, "MXRequestEntityTooLargeException")
    assert "1 MiB" in message
    # The same body without Content-Length (chunked), where only counting can tell.
    query = keys_query(api.user)
    head = f"POST {LM}{BULK}?{query} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = raw_request(server.port, head, _chunked([body[i : i + 4096] for i in range(0, len(body), 4096)]))
    assert answer.status == 413
    assert answer.json()["ExceptionType"] == "MXRequestEntityTooLargeException"
    assert snapshot(db) == before


def _chunked(pieces: Any) -> Iterator[bytes]:
    for piece in pieces:
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b"0\r\n\r\n"


def test_100_mib_chunked_body_is_refused_without_reading_it(api: Api, db: Database, server: LiveServer) -> None:
    total, piece = 100 * 1024 * 1024, b"[" * 65536
    before = snapshot(db)
    query = keys_query(api.user)
    head = f"POST {LM}{BULK}?{query} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = raw_request(server.port, head, _chunked(piece for _ in range(total // len(piece))))
    assert answer.status == 413
    assert answer.json()["ExceptionType"] == "MXRequestEntityTooLargeException"
    # The server stopped early: it answered and hung up long before the body's end.
    assert answer.sent < total / 4, answer.sent
    assert answer.closed
    assert answer.elapsed < 10
    assert snapshot(db) == before


def test_declared_100_mib_body_is_refused_before_reading(api: Api, server: LiveServer) -> None:
    total, piece = 100 * 1024 * 1024, b"x" * 65536
    query = keys_query(api.user)
    head = f"POST {LM}{BULK}?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n"
    answer = raw_request(server.port, head, (piece for _ in range(total // len(piece))))
    assert answer.status == 413
    assert answer.sent < total / 4
    assert answer.closed
    assert answer.elapsed < 10


def test_content_length_shorter_than_the_body(api: Api, db: Database, server: LiveServer, target: str) -> None:
    """The server reads exactly Content-Length bytes; the rest is not taken as part of the body."""
    full = orjson.dumps(bulk_body(KEY, pair("FirstName", "After")))
    before = snapshot(db)
    query = keys_query(api.user)
    head = f"POST {LM}{BULK}?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(full) - 10}\r\n\r\n"
    answer = raw_request(server.port, head, [full])
    # The truncated body is not JSON (400 in the envelope), or the surplus is refused as a
    # broken next request (uvicorn's plain 400) before the answer goes out.
    assert answer.status == 400
    assert snapshot(db) == before


IMPOSSIBLE_FRAMING = [
    "Content-Length: abc",
    "Content-Length: -5",
    "Content-Length: 5\r\nContent-Length: 50",
    "Content-Length: 5\r\nTransfer-Encoding: chunked",
    "Transfer-Encoding: gzip",
]


def test_impossible_framing_is_refused(api: Api, db: Database, server: LiveServer) -> None:
    """Refused by the HTTP server itself (a plain 400), before the app sees a byte."""
    before = snapshot(db)
    query = keys_query(api.user)
    for header in IMPOSSIBLE_FRAMING:
        head = f"POST {LM}{BULK}?{query} HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n"
        answer = raw_request(server.port, head, [b'{"LeadPropertiesList": []}'], timeout=10)
        assert answer.status is not None, (header, answer)
        assert 400 <= answer.status < 500, (header, answer)
        assert answer.closed, header
    assert snapshot(db) == before


def test_server_still_serves_after_the_abuse(api: Api, target: str) -> None:
    api.post(BULK, content=b"[" * 100_000)
    api.post(BULK, content=_padded_bulk(MAX_BODY_BYTES + 1))
    response = api.post(BULK, json=bulk_body(KEY, pair("FirstName", "After")))
    assert response.status_code == 200
    assert api.lead(target)["FirstName"] == "After"


def test_a_reused_request_id_does_not_break_writes(api: Api, db: Database, target: str) -> None:
    """The request id comes from the client's X-Request-Id; history must not rely on it being unique."""
    headers = {"X-Request-Id": "client-chosen-id"}
    for value in ("One", "Two"):
        response = api.post(BULK, json=bulk_body(KEY, pair("JobTitle", value)), headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["Status"]["SuccessCount"] == 1, response.text
    for value in ("Three", "Four"):
        response = api.post("/Lead.Update", json=[pair("JobTitle", value)], params={"leadId": target}, headers=headers)
        assert response.status_code == 200, response.text
    assert api.lead(target)["JobTitle"] == "Four"
