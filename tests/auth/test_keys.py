"""Access keys and secret keys: random, stored only as a hash, never logged, and dead within a
second of a user's deactivation."""

import logging

import httpx
import pytest
from sqlalchemy import select

from leadstore.auth import keys
from leadstore.db import Database
from leadstore.models import User
from leadstore.users import service as user_service
from leadstore.users.service import Credentials
from tests.helpers import LM, Api, LiveServer, make_user, wait_until

WHO_AM_I = "/v2/Authentication.svc/UserByAccessKey.Get"


def works(server: LiveServer, user: Credentials) -> bool:
    params = {"accessKey": user.access_key, "secretKey": user.secret_key}
    response = httpx.get(server.base_url + WHO_AM_I, params=params)
    assert response.status_code in (200, 401), response.text
    return response.status_code == 200


class TestKeys:
    def test_secret_is_stored_only_as_its_hash(self, db: Database) -> None:
        user = make_user(db, "SalesUser")
        with db.read() as conn:
            row = conn.execute(select(User.__table__).where(User.id == user.user_id)).mappings().one()
        assert user.secret_key not in [str(value) for value in row.values()]
        assert row["secret_hash"] == keys.hash_secret(user.secret_key)
        assert row["access_key"] == user.access_key

    def test_keys_are_long_random_and_distinct(self, db: Database) -> None:
        users = [make_user(db, "SalesUser") for _ in range(20)]
        assert len({u.access_key for u in users}) == len({u.secret_key for u in users}) == 20
        for user in users:
            assert len(user.secret_key) >= 32
            assert len(set(user.secret_key)) > 8  # not a constant or a counter
            assert user.secret_key not in user.access_key

    def test_a_secret_is_matched_exactly(self) -> None:
        secret = keys.new_secret_key()
        stored = keys.hash_secret(secret)
        assert keys.secret_matches(secret, stored)
        assert not keys.secret_matches(secret.upper() if secret != secret.upper() else secret + "x", stored)
        assert not keys.secret_matches(secret[:-1], stored)
        assert not keys.secret_matches("", stored)


class TestDeactivation:
    def test_a_deactivated_users_keys_stop_within_a_second(self, server: LiveServer, db: Database) -> None:
        user = make_user(db, "SalesManager")
        assert works(server, user)  # the server now holds the user in its cache
        with db.write() as conn:
            user_service.deactivate(conn, user.email)
        wait_until(lambda: not works(server, user), timeout=1.0)
        response = httpx.get(
            server.base_url + LM + "/Leads.GetById",
            params={"id": "x", "accessKey": user.access_key, "secretKey": user.secret_key},
        )
        assert response.status_code == 401
        assert response.json()["ExceptionType"] == "MXUnAuthorizedAccessException"

    def test_rotated_keys_replace_the_old_ones_within_a_second(self, server: LiveServer, db: Database) -> None:
        old = make_user(db, "SalesUser")
        assert works(server, old)
        with db.write() as conn:
            new = user_service.rotate_keys(conn, old.email)
        wait_until(lambda: not works(server, old), timeout=1.0)
        assert works(server, new)

    def test_other_users_keep_working(self, server: LiveServer, db: Database, admin: Credentials) -> None:
        leaver = make_user(db, "SalesUser")
        with db.write() as conn:
            user_service.deactivate(conn, leaver.email)
        wait_until(lambda: not works(server, leaver), timeout=1.0)
        assert works(server, admin)


class TestNoSecretInLogs:
    # The test's own HTTP client logs the URLs it calls; the service's log lines are what count.
    CLIENT_LOGGERS = ("httpx", "httpcore")

    def test_secret_keys_in_query_strings_never_reach_a_log_line(
        self, caplog: pytest.LogCaptureFixture, api: Api, db: Database
    ) -> None:
        """Every logger at DEBUG, uvicorn's access log included (caplog gives it a handler, as
        `uvicorn leadstore.asgi:app` would), for calls that succeed and calls that fail."""
        caplog.set_level(logging.DEBUG)
        seller = make_user(db, "SalesUser")
        wrong_secret = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"
        prospect_id = api.create_lead(EmailAddress="log@example.com")
        calls = [
            api.get("/Leads.GetById", params={"id": prospect_id}),
            api.get("/Leads.GetByEmailaddress", params={"EmailAddress": "log@example.com"}),
            api.post("/Lead.Update", params={"leadId": prospect_id}, json=[{"Attribute": "Score", "Value": "bad"}]),
            api.post("/Lead.Update", params={"leadId": prospect_id}, as_=seller, json=[]),
            api.post("/Lead.Create", content=b"{not json"),
            api.post("/Lead.Create", content=b"x" * (1024 * 1024 + 10)),
            api.get("/v2/Nowhere.svc/Nothing"),
            api.get("/Lead.Create"),
            api.bulk([{"EmailAddress": "log@example.com", "FirstName": "Bulk"}]),
            api.post("/Leads.Get", json={"Parameter": {"LookupName": "Nope", "LookupValue": "x"}}),
            api.http.get(WHO_AM_I, params={"accessKey": seller.access_key, "secretKey": wrong_secret}),
            api.http.get(WHO_AM_I, params={"accesskey": "ak-unknown", "SECRETKEY": wrong_secret}),
            api.http.get(WHO_AM_I, headers={"x-LSQ-AccessKey": seller.access_key, "x-LSQ-SecretKey": wrong_secret}),
            api.http.get(
                WHO_AM_I, headers={"x-LSQ-AccessKey": seller.access_key, "x-LSQ-SecretKey": seller.secret_key}
            ),
        ]
        assert {c.status_code for c in calls} >= {200, 400, 401, 404, 413, 500}
        service_records = [r for r in caplog.records if not r.name.startswith(self.CLIENT_LOGGERS)]
        assert service_records, "the service logged nothing; this test would prove nothing"
        for record in service_records:
            text = f"{record.getMessage()} {record.__dict__}"
            for secret in (api.user.secret_key, seller.secret_key, wrong_secret):
                assert secret not in text, f"{record.name}: {record.getMessage()}"
