"""Every size is bounded, and the bounds are documented: request body, fields per lead, leads per
call, page size. A slow client cannot hold a connection (and what it reserves) forever."""

import re
import threading
from pathlib import Path

import orjson
import pytest

from leadstore.catalog import save_setting
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.leads.changes import MAX_FIELDS_PER_LEAD
from leadstore.leads.search import MAX_PAGE_SIZE
from leadstore.middleware import MAX_BODY_BYTES
from tests.helpers import LM, Api, LiveServer, wait_until
from tests.reliability.support import assert_envelope, keys_query, raw_request, snapshot

README = Path(__file__).resolve().parents[2] / "README.md"
BODY_TIMEOUT = 1.0
BULK = "/Lead/Bulk/UpdateV2"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        catalog_refresh_seconds=0.1,
        body_timeout_seconds=BODY_TIMEOUT,
        _env_file=None,  # type: ignore[call-arg]
    )


def lead(email: str, **fields: str) -> dict[str, object]:
    pairs = {"EmailAddress": email, **fields}
    return {"Fields": [{"Attribute": k, "Value": v} for k, v in pairs.items()]}


def test_readme_documents_every_limit() -> None:
    text = README.read_text()
    section = text[text.index("## Limits") :]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else None]
    for figure in ("1 MiB", str(MAX_FIELDS_PER_LEAD), "25", "bulk_max_leads", str(MAX_PAGE_SIZE), "408", "413"):
        assert figure in section, figure
    assert re.search(r"body_timeout_seconds|LEADSTORE_BODY_TIMEOUT_SECONDS", section)


def test_leads_per_call_is_bounded_by_the_setting(api: Api, db: Database, server: LiveServer) -> None:
    leads = [lead(f"l{i}@example.com", FirstName="x") for i in range(26)]
    message = assert_envelope(api.post(BULK, json={"SearchByKey": "EmailAddress", "LeadPropertiesList": leads}), 400)
    assert "at most 25" in message
    with db.write() as conn:
        save_setting(conn, "bulk_max_leads", "3")
    wait_until(
        lambda: api.post(BULK, json={"SearchByKey": "EmailAddress", "LeadPropertiesList": leads[:4]}).status_code == 400
    )
    response = api.post(BULK, json={"SearchByKey": "EmailAddress", "LeadPropertiesList": leads[:4]})
    assert "at most 3" in assert_envelope(response, 400)
    assert api.post(BULK, json={"SearchByKey": "EmailAddress", "LeadPropertiesList": leads[:3]}).status_code == 200


def test_fields_per_lead_is_bounded(api: Api) -> None:
    fields = [{"Attribute": "FirstName", "Value": "x"}] * (MAX_FIELDS_PER_LEAD + 1)
    for path, body, where in (
        (BULK, {"LeadPropertiesList": [{"Fields": fields}]}, "LeadPropertiesList[0].Fields"),
        ("/Lead.Create", fields, "body"),
        ("/Lead.CreateOrUpdate", fields, "body"),
    ):
        message = assert_envelope(api.post(path, json=body), 400, "MXInvalidInputException")
        assert where in message
        assert f"at most {MAX_FIELDS_PER_LEAD}" in message
    # At the limit the request is taken (the lead fails on its repeated attribute, not on size).
    response = api.post(BULK, json={"LeadPropertiesList": [{"Fields": fields[:MAX_FIELDS_PER_LEAD]}]})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("paging", "ok"),
    [
        ({"PageIndex": 1, "PageSize": MAX_PAGE_SIZE}, True),
        ({"PageIndex": 1, "PageSize": MAX_PAGE_SIZE + 1}, False),
        ({"PageIndex": 1, "PageSize": 0}, False),
        ({"PageIndex": 0, "PageSize": 10}, False),
        ({"PageIndex": -1, "PageSize": 10}, False),
        ({"PageIndex": 2**62, "PageSize": MAX_PAGE_SIZE}, False),
        ({"PageIndex": 10**30, "PageSize": 10}, False),
        ({"PageIndex": 1_000_000_000, "PageSize": MAX_PAGE_SIZE}, True),
    ],
)
def test_page_size_and_index_are_bounded(api: Api, paging: dict[str, int], ok: bool) -> None:
    api.create_lead(EmailAddress="p@example.com", FirstName="Pat")
    body = {"Parameter": {"LookupName": "FirstName", "LookupValue": "Pat"}, "Paging": paging}
    response = api.post("/Leads.Get", json=body)
    if ok:
        assert response.status_code == 200, response.text
    else:
        assert "Page" in assert_envelope(response, 400, "MXInvalidInputException")


def test_body_size_is_bounded_before_reading(api: Api, server: LiveServer) -> None:
    head = f"POST {LM}{BULK}?{keys_query(api.user)} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    answer = raw_request(server.port, head, [])  # not one byte of the body is sent
    assert answer.status == 413
    assert answer.closed


def test_a_client_that_never_sends_its_body_gets_408(api: Api, db: Database, server: LiveServer) -> None:
    """Content-Length promises more than comes: the server gives up after the body timeout."""
    body = orjson.dumps({"LeadPropertiesList": [lead("a@example.com", FirstName="x")]})
    before = snapshot(db)
    head = f"POST {LM}{BULK}?{keys_query(api.user)} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) + 100}\r\n\r\n"
    answer = raw_request(server.port, head, [body], timeout=BODY_TIMEOUT + 10)
    assert answer.status == 408
    assert answer.json()["ExceptionType"] == "MXRequestTimeoutException"
    assert "seconds" in answer.json()["ExceptionMessage"]
    assert answer.closed
    assert BODY_TIMEOUT <= answer.elapsed < BODY_TIMEOUT + 3
    assert snapshot(db) == before


def test_a_client_that_trickles_its_body_gets_408(api: Api, db: Database, server: LiveServer) -> None:
    """A byte every 0.1 s never lets a single read wait long: the deadline is for the whole body."""
    body = orjson.dumps({"LeadPropertiesList": [lead("a@example.com", FirstName="x" * 100)]})
    before = snapshot(db)
    head = f"POST {LM}{BULK}?{keys_query(api.user)} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    answer = raw_request(server.port, head, (body[i : i + 1] for i in range(len(body))), pause=0.1, timeout=15)
    assert answer.status == 408
    assert answer.closed
    assert answer.sent < len(body)
    assert answer.elapsed < BODY_TIMEOUT + 3
    assert snapshot(db) == before


def test_a_slow_but_steady_body_within_the_deadline_is_served(api: Api, server: LiveServer) -> None:
    api.create_lead(EmailAddress="a@example.com")
    body = orjson.dumps({"SearchByKey": "EmailAddress", "LeadPropertiesList": [lead("a@example.com", FirstName="S")]})
    head = f"POST {LM}{BULK}?{keys_query(api.user)} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    third = len(body) // 3 + 1
    answer = raw_request(server.port, head, (body[i : i + third] for i in range(0, len(body), third)), pause=0.2)
    assert answer.status == 200, answer
    assert answer.json()["Status"]["SuccessCount"] == 1


def test_slow_clients_do_not_hold_up_others(api: Api, server: LiveServer) -> None:
    """While slow clients wait out their deadline, other calls are answered at once."""
    head = f"POST {LM}{BULK}?{keys_query(api.user)} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    slow = [threading.Thread(target=raw_request, args=(server.port, head, [b"{"]), daemon=True) for _ in range(20)]
    for thread in slow:
        thread.start()
    for _ in range(10):
        response = api.get("/LeadsMetaData.Get")
        assert response.status_code == 200
        assert response.elapsed.total_seconds() < BODY_TIMEOUT / 2
    for thread in slow:
        thread.join(BODY_TIMEOUT + 10)
