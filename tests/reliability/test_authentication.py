"""Authentication: every way of getting the keys wrong is a 401 that reveals nothing; keys stop
working at once when a user is deactivated or rotated; secrets are compared in constant time,
stored only as a hash, and never reach a log line, an error message, a metric or the history."""

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select

from leadstore.auth import keys
from leadstore.auth.service import Authenticator
from leadstore.catalog import Catalog
from leadstore.db import Database
from leadstore.models import User
from leadstore.ops.logs import JsonFormatter, RedactSecrets
from leadstore.users import service as user_service
from leadstore.users.service import Credentials
from tests.helpers import LM, Api, LiveServer, make_user, wait_until
from tests.reliability.support import assert_envelope, serving

WHO = "/v2/Authentication.svc/UserByAccessKey.Get"
UNAUTHORIZED = "MXUnAuthorizedAccessException"


def call(server: LiveServer, access: str | None, secret: str | None, *, in_headers: bool = False) -> httpx.Response:
    keys_ = {"accessKey": access, "secretKey": secret}
    keys_ = {k: v for k, v in keys_.items() if v is not None}
    if in_headers:
        headers = {f"x-LSQ-{k[0].upper()}{k[1:]}": v for k, v in keys_.items()}
        return httpx.get(server.base_url + WHO, headers=headers)
    return httpx.get(server.base_url + WHO, params=keys_)


def test_missing_keys_are_401(server: LiveServer, admin: Credentials) -> None:
    for access, secret in ((None, None), (admin.access_key, None), (None, admin.secret_key), ("", ""), ("", "x")):
        for in_headers in (False, True):
            message = assert_envelope(call(server, access, secret, in_headers=in_headers), 401, UNAUTHORIZED)
            assert "accessKey" in message
            assert "secretKey" in message


def test_wrong_and_swapped_keys_are_401_and_indistinguishable(server: LiveServer, db: Database) -> None:
    alice, bob = make_user(db, "SalesUser"), make_user(db, "SalesUser")
    wrong = [
        (alice.access_key, bob.secret_key),  # another user's secret
        (alice.access_key, alice.secret_key[:-1]),  # one character short
        (alice.access_key, alice.secret_key + "0"),
        (alice.access_key, alice.secret_key.upper()),
        (alice.secret_key, alice.access_key),  # swapped
        (alice.access_key, alice.access_key),
        (alice.secret_key, alice.secret_key),
        ("ak" + "0" * 36, alice.secret_key),  # no such access key
        (alice.access_key, keys.hash_secret(alice.secret_key)),  # the stored hash is no key
        (alice.access_key, "x" * 10_000),
        (alice.access_key, alice.secret_key + "\x00"),
        (alice.access_key + "' OR '1'='1", alice.secret_key),
        (alice.access_key, "ünïcødé"),
    ]
    messages = set()
    for access, secret in wrong:
        for in_headers in (False, True):
            if in_headers and not ((access + secret).isascii() and (access + secret).isprintable()):
                continue  # HTTP headers carry no such characters
            response = call(server, access, secret, in_headers=in_headers)
            messages.add(assert_envelope(response, 401, UNAUTHORIZED))
    # One message for every case: the answer never tells a real access key from an invented one.
    assert len(messages) == 1, messages
    assert call(server, alice.access_key, alice.secret_key).status_code == 200


def test_query_parameter_names_match_in_any_case(server: LiveServer, admin: Credentials) -> None:
    response = httpx.get(server.base_url + WHO, params={"ACCESSKEY": admin.access_key, "secretkey": admin.secret_key})
    assert response.status_code == 200


def test_deactivated_user_is_refused_at_once(server: LiveServer, db: Database) -> None:
    user = make_user(db, "SalesManager")
    assert call(server, user.access_key, user.secret_key).status_code == 200  # now cached by the server
    with db.write() as conn:
        user_service.deactivate(conn, user.email)
    wait_until(lambda: call(server, user.access_key, user.secret_key).status_code == 401, timeout=1.0)
    for in_headers in (False, True):
        assert_envelope(call(server, user.access_key, user.secret_key, in_headers=in_headers), 401, UNAUTHORIZED)
    response = httpx.post(
        f"{server.base_url}{LM}/Lead.Create",
        params={"accessKey": user.access_key, "secretKey": user.secret_key},
        json=[{"Attribute": "EmailAddress", "Value": "x@example.com"}],
    )
    assert_envelope(response, 401, UNAUTHORIZED)


def test_rotated_keys_replace_the_old_ones_at_once(server: LiveServer, db: Database) -> None:
    old = make_user(db, "SalesUser")
    assert call(server, old.access_key, old.secret_key).status_code == 200
    with db.write() as conn:
        new = user_service.rotate_keys(conn, old.email)
    assert new.secret_key != old.secret_key
    assert new.access_key != old.access_key
    wait_until(lambda: call(server, old.access_key, old.secret_key).status_code == 401, timeout=1.0)
    for access, secret in ((old.access_key, new.secret_key), (new.access_key, old.secret_key)):
        assert_envelope(call(server, access, secret), 401, UNAUTHORIZED)
    assert call(server, new.access_key, new.secret_key).status_code == 200


def test_secret_is_compared_in_constant_time(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both places that compare a secret go through hmac.compare_digest, on equal-length hashes."""
    user = make_user(db, "SalesUser")
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with db.read() as conn:
        stored = conn.execute(select(User.secret_hash).where(User.id == user.user_id)).scalar_one()
    assert keys.secret_matches(user.secret_key, stored)
    assert not keys.secret_matches("guess", stored)

    catalog = Catalog(db)
    catalog.refresh()
    authenticator = Authenticator(catalog)
    assert authenticator.authenticate(user.access_key, user.secret_key).user_id == user.user_id
    with pytest.raises(Exception, match="Invalid access key or secret key"):
        authenticator.authenticate(user.access_key, "guess")
    assert len(compared) == 4
    for a, b in compared:
        assert b == stored
        assert len(a) == len(b)  # the hash of any guess has the stored hash's length
        assert user.secret_key not in (a, b)


def test_only_a_hash_of_the_secret_is_stored(db: Database) -> None:
    user = make_user(db, "SalesUser")
    with db.read() as conn:
        row = conn.execute(select(User).where(User.id == user.user_id)).mappings().one()
    assert row["secret_hash"] != user.secret_key
    assert row["secret_hash"] == hashlib.sha256(user.secret_key.encode()).hexdigest()
    assert user.secret_key not in _database_text(db)


def _database_text(db: Database) -> str:
    """Every value in every table, as text."""
    metadata = MetaData()
    metadata.reflect(db.engine)
    parts = []
    with db.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)


CLIENT_LOGGERS = ("httpx", "httpcore")


def _traffic(base_url: str, users: list[Credentials], lead_id: str) -> list[str]:
    """Calls of every outcome, keys in the query string (and in headers); returns all that came back."""
    seen = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for user in users:
            q = {"accessKey": user.access_key, "secretKey": user.secret_key}
            bad = {"accessKey": user.access_key, "secretKey": user.secret_key[::-1]}
            swapped = {"accessKey": user.secret_key, "secretKey": user.access_key}
            responses = [
                http.get(WHO, params=q),
                http.get(WHO, params=bad),
                http.get(WHO, params=swapped),
                http.get(WHO, headers={"x-LSQ-AccessKey": user.access_key, "x-LSQ-SecretKey": user.secret_key}),
                http.get(f"{LM}/Leads.GetById", params={**q, "id": lead_id}),
                http.get(f"{LM}/No.Such.Api", params=q),
                http.delete(f"{LM}/Lead.Create", params=q),
                http.post(f"{LM}/Lead.Create", params=q, content=b"{not json"),
                http.post(f"{LM}/Lead.Create", params=q, json=[{"Attribute": "Bogus", "Value": user.secret_key}]),
                http.post(
                    f"{LM}/Lead.Update",
                    params={**q, "leadId": lead_id},
                    json=[{"Attribute": "JobTitle", "Value": "Boss"}],
                ),
                http.post(f"{LM}/Lead/Bulk/UpdateV2", params=q, content=b"x" * (1024 * 1024 + 1)),
                http.post(
                    f"{LM}/Lead/Bulk/UpdateV2",
                    params=q,
                    json={
                        "LeadPropertiesList": [
                            {
                                "Fields": [
                                    {"Attribute": "ProspectId", "Value": lead_id},
                                    {"Attribute": "Notes", "Value": "n"},
                                ]
                            }
                        ]
                    },
                ),
                http.get("/metrics"),
                http.get("/ready"),
            ]
            for response in responses:
                seen.append(response.text)
                seen.extend(f"{k}: {v}" for k, v in response.headers.items())
    return seen


def _assert_no_secret(texts: list[str], users: list[Credentials]) -> None:
    for user in users:
        for secret in (user.secret_key, user.secret_key[::-1]):
            found = [text for text in texts if secret in text]
            assert not found, [text[max(0, text.index(secret) - 300) : text.index(secret) + 100] for text in found]


def test_no_secret_in_logs_answers_metrics_or_history(
    server: LiveServer, api: Api, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    users = [api.user, make_user(db, "SalesUser")]
    lead_id = api.create_lead(EmailAddress="l@example.com")
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "leadstore", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name)
    answers = _traffic(server.base_url, users, lead_id)

    records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert any(r.name.startswith("leadstore") for r in records), "nothing was logged: the scan proves nothing"
    # Our own code and the database layer never put a secret in a record at all...
    own = [r for r in records if r.name.startswith(("leadstore", "sqlalchemy", "uvicorn.error"))]
    _assert_no_secret([_record_text(r) for r in own] + answers + [_database_text(db)], users)
    # ...and whatever any logger writes (uvicorn's access log prints query strings when a
    # deployment turns it on) passes the output handler's filter with no secret left.
    redact, output = RedactSecrets(), JsonFormatter()
    _assert_no_secret([output.format(r) for r in records if redact.filter(r)], users)


def _record_text(record: logging.LogRecord) -> str:
    parts = (record.getMessage(), record.exc_text, record.stack_info, *vars(record).values())
    return " ".join(str(part) for part in parts if part is not None)


def test_no_secret_in_the_real_server_log(database_url: str, db: Database, tmp_path: Path) -> None:
    """``leadstore serve`` at debug level, as deployed: its whole output is scanned."""
    users = [make_user(db, "Administrator"), make_user(db, "SalesUser")]
    log = tmp_path / "server.log"
    with serving(database_url, log, log_level="debug") as server:
        lead_id = Api(server.base_url, users[0]).create_lead(EmailAddress="l@example.com")
        answers = _traffic(server.base_url, users, lead_id)
    output = log.read_text(errors="replace")
    assert "/v2/Authentication.svc/UserByAccessKey.Get" in output, "the access log is missing"
    _assert_no_secret([output, *answers, _database_text(db)], users)
