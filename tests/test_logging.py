"""Structured logs: one JSON object per line, with the request id, and no secret in any line."""

import io
import json
import logging
import logging.config
import socket
import sys
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import text

from leadstore.catalog import save_setting
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.ops.logs import REDACTED, JsonFormatter, RedactSecrets, redact
from leadstore.server import logging_config
from leadstore.users.service import Credentials
from tests.helpers import LM, Api, LiveServer, wait_until


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The service's logging configuration, writing to a buffer; the previous one comes back after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    config = logging_config("info")
    config["handlers"]["stderr"]["stream"] = buffer  # type: ignore[index]
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize(
    "text",
    [
        "GET /v2/LeadManagement.svc/Leads.GetById?accessKey=AK123&secretKey=SK456&id=1",
        "GET /x?accesskey=AK123&SECRETKEY=SK456",
        "url=/x%3FaccessKey%3DAK123%26secretKey%3DSK456",
        "headers: x-LSQ-AccessKey: AK123, x-LSQ-SecretKey: SK456",
        "{'x-lsq-accesskey': 'AK123', 'x-lsq-secretkey': 'SK456'}",
        "[(b'x-lsq-accesskey', b'AK123'), (b'x-lsq-secretkey', b'SK456')]",
        '{"accessKey": "AK123", "secretKey": "SK456"}',
        "access_key='AK123' secret_key='SK456'",
    ],
)
def test_redact_scrubs_keys_in_every_shape(text: str) -> None:
    scrubbed = redact(text)
    assert "AK123" not in scrubbed
    assert "SK456" not in scrubbed
    assert REDACTED in scrubbed


def test_redact_leaves_other_text_alone() -> None:
    message = "Invalid access key or secret key. Check your AccessKey and SecretKey; id=42"
    assert redact(message) == message


def test_filter_scrubs_message_arguments_extras_and_tracebacks() -> None:
    try:
        raise ValueError("bad call /x?secretKey=SK456")
    except ValueError:
        record = logging.LogRecord(
            "some.library", logging.ERROR, __file__, 1, "calling %s", ("/x?accessKey=AK123",), sys.exc_info()
        )
    record.url = "/x?secretKey=SK456"
    assert RedactSecrets().filter(record)
    line = JsonFormatter().format(record)
    assert "AK123" not in line
    assert "SK456" not in line
    parsed = json.loads(line)
    assert parsed["message"] == f"calling /x?accessKey={REDACTED}"
    assert "ValueError" in parsed["exception"]


def test_a_message_that_is_not_valid_unicode_is_still_written() -> None:
    record = logging.makeLogRecord({"msg": "file \udc80 not found", "name": "some.library"})
    assert json.loads(JsonFormatter().format(record))["message"] == "file \udc80 not found"


def test_a_line_is_one_json_object_with_the_fields(log_output: io.StringIO) -> None:
    logging.getLogger("leadstore.something").warning("hello %s", "world")
    (line,) = lines(log_output)
    assert set(line) == {"time", "level", "logger", "message", "request_id"}
    assert line["level"] == "WARNING"
    assert line["logger"] == "leadstore.something"
    assert line["message"] == "hello world"
    assert line["request_id"] is None
    assert str(line["time"]).endswith("+00:00")


def test_no_secret_reaches_the_log_of_calls_with_keys_in_the_query(
    log_output: io.StringIO, settings: Settings, admin: Credentials
) -> None:
    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        ok = api.get("/Leads.GetByQuickSearch", params={"key": "x"}, headers={"X-Request-Id": "req-ok-1"})
        assert ok.status_code == 200
        wrong = Credentials(admin.user_id, admin.email, admin.access_key, admin.secret_key + "x")
        assert api.get("/Leads.GetByQuickSearch", as_=wrong).status_code == 401
        assert api.get(f"{LM}/No.Such.Api").status_code == 404
        assert api.post("/Lead/Bulk/UpdateV2", content=b"{not json").status_code == 400
        headers = {"x-LSQ-AccessKey": admin.access_key, "x-LSQ-SecretKey": admin.secret_key}
        assert api.http.get(f"{LM}/LeadsMetaData.Get", headers=headers).status_code == 200
        # Something else logs a URL with the keys in it: the filter on the handler catches it.
        logging.getLogger("some.library").warning("fetching %s", ok.request.url)
    output = log_output.getvalue()
    assert admin.secret_key not in output
    assert admin.access_key not in output
    parsed = lines(log_output)  # every line is JSON
    access = [line for line in parsed if line["logger"] == "leadstore.access"]
    assert [line["status"] for line in access] == [200, 401, 404, 400, 200]
    first = access[0]
    assert first["request_id"] == "req-ok-1"
    assert first["method"] == "GET"
    assert first["path"] == f"{LM}/Leads.GetByQuickSearch"
    assert isinstance(first["duration_ms"], float)
    assert all(line["request_id"] for line in access)
    (library,) = [line for line in parsed if line["logger"] == "some.library"]
    assert REDACTED in str(library["message"])


BULK = f"{LM}/Lead/Bulk/UpdateV2"


def hang_up_during(port: int, user: Credentials, request_id: str, body: bytes, send: int) -> None:
    """Send a bulk call (its first ``send`` bytes of ``body``) over a raw socket, and close it
    without waiting for the answer."""
    head = (
        f"POST {BULK}?accessKey={user.access_key}&secretKey={user.secret_key} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-Request-Id: {request_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + body[:send])


def test_a_client_that_hangs_up_mid_call_is_one_line_and_leaves_no_half_write(
    log_output: io.StringIO, settings: Settings, admin: Credentials, db: Database
) -> None:
    with db.write() as conn:
        save_setting(conn, "rate_limit_calls", "1000000")
    emails = [f"hangup{i}@example.com" for i in range(20)]
    body = orjson.dumps(
        {
            "SearchByKey": "EmailAddress",
            "LeadPropertiesList": [
                {"Fields": [{"Attribute": "EmailAddress", "Value": e}, {"Attribute": "JobTitle", "Value": "Gone"}]}
                for e in emails
            ],
        }
    )

    def access(request_id: str) -> dict[str, object] | None:
        found = [line for line in lines(log_output) if line["request_id"] == request_id]
        return found[0] if found else None

    def history(request_id: str) -> int:
        with db.read() as conn:
            query = text("SELECT count(*) FROM lead_changes WHERE request_id = :r")
            return int(conn.execute(query, {"r": request_id}).scalar_one())

    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        for email in emails:
            api.create_lead(EmailAddress=email)
        # Gone while the body is on its way: nothing is written.
        hang_up_during(live.port, admin, "hangup-body", body, send=len(body) // 2)
        wait_until(lambda: access("hangup-body") is not None)
        # Gone right after the whole call: it is written whole (or, were it stopped, not at all).
        hang_up_during(live.port, admin, "hangup-answer", body, send=len(body))
        wait_until(lambda: access("hangup-answer") is not None)
        assert 'status="499"' in api.http.get("/metrics").text  # not counted as a server error

    parsed = lines(log_output)
    assert [line for line in parsed if line["level"] not in ("INFO", "WARNING")] == []
    assert [line for line in parsed if "exception" in line] == []
    assert [line for line in parsed if line["request_id"] == "hangup-body"] == [access("hangup-body")]
    gone = access("hangup-body")
    assert gone is not None
    assert gone["level"] == "INFO"
    assert gone["logger"] == "leadstore.access"
    assert gone["status"] == 499
    assert gone["path"] == BULK
    assert "the client went away before the answer" in str(gone["message"])
    assert BULK in str(gone["message"])
    assert "?" not in str(gone["message"])
    assert admin.secret_key not in log_output.getvalue()
    assert history("hangup-body") == 0
    with db.read() as conn:
        titles = conn.execute(text("SELECT count(*) FROM leads WHERE job_title = 'Gone'")).scalar_one()
    assert (titles, history("hangup-answer")) in ((0, 0), (len(emails), len(emails)))
