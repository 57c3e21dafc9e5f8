"""Operability: /health, /ready, /metrics, and 503s while the database is away (spec section 1,
issue 5). The database outage runs on PostgreSQL in both halves of the suite; it fails, rather
than skips, when PostgreSQL cannot be reached."""

import os
import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from leadstore import migrate
from leadstore.catalog import save_setting
from leadstore.config import Settings, driver_url
from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.helpers import LM, Api, LiveServer, make_user, wait_until

PG_URL = POSTGRES_URL or os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
QUICK_SEARCH = "/Leads.GetByQuickSearch"


def metrics_text(api: Api) -> str:
    response = api.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def sample(text_: str, name: str, **labels: str) -> float:
    """The value of one series (labels given must all match), or 0 when absent."""
    total = 0.0
    for line in text_.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match[3])
    return total


class TestHealthAndReady:
    def test_health_needs_no_keys(self, api: Api) -> None:
        response = api.http.get("/health")
        assert response.status_code == 200
        assert response.json() == {"Status": "OK"}
        assert "X-Request-Id" in response.headers
        assert "X-RateLimit-Limit" not in response.headers

    def test_ready_checks_the_database(self, api: Api) -> None:
        response = api.http.get("/ready")
        assert response.status_code == 200
        assert response.json() == {"Status": "Ready", "Checks": {"Database": "OK"}}

    def test_ready_checks_redis_when_configured(self, settings: Settings) -> None:
        with LiveServer.start(settings.model_copy(update={"redis_url": REDIS_URL})) as live:
            response = httpx.get(live.base_url + "/ready")
        assert response.status_code == 200
        assert response.json()["Checks"] == {"Database": "OK", "Redis": "OK"}

    def test_operations_do_not_count_against_the_rate_limit(self, api: Api, db: Database) -> None:
        with db.write() as conn:
            save_setting(conn, "rate_limit_calls", "1")
        wait_until(lambda: api.get("/LeadsMetaData.Get").headers.get("X-RateLimit-Limit") == "1", timeout=5)
        other = make_user(db, "Administrator")
        for path in ("/health", "/ready", "/metrics") * 3:  # even with keys given
            response = api.http.get(path, params={"accessKey": other.access_key, "secretKey": other.secret_key})
            assert response.status_code == 200
            assert "X-RateLimit-Limit" not in response.headers
        assert [api.get("/LeadsMetaData.Get", as_=other).status_code for _ in range(2)] == [200, 429]


class TestMetrics:
    def test_requests_by_route_template_and_status(self, api: Api, admin: Credentials) -> None:
        lead_id = api.create_lead(EmailAddress="metrics@example.com")
        for _ in range(2):
            assert api.get("/Leads.GetById", params={"id": lead_id}).status_code == 200
        unknown = f"{LM}/Secret.{uuid.uuid4().hex}"
        assert api.get(unknown).status_code == 404
        wrong = Credentials(admin.user_id, admin.email, admin.access_key, "wrong")
        assert api.get("/Leads.GetById", params={"id": lead_id}, as_=wrong).status_code == 401
        text_ = metrics_text(api)
        by_id = {"method": "GET", "route": f"{LM}/Leads.GetById"}
        assert sample(text_, "leadstore_http_requests_total", **by_id, status="200") == 2
        assert sample(text_, "leadstore_http_requests_total", **by_id, status="401") == 1
        assert sample(text_, "leadstore_http_requests_total", route="unmatched", status="404") == 1
        assert sample(text_, "leadstore_http_request_duration_seconds_count", **by_id) == 3
        assert sample(text_, "leadstore_http_request_duration_seconds_bucket", **by_id, le="+Inf") == 3
        # Templates, not raw paths; no keys, no lead data.
        for secret in (unknown.rsplit(".", 1)[1], lead_id, "metrics@example.com", admin.access_key, admin.secret_key):
            assert secret not in text_

    def test_leads_updated_by_outcome(self, api: Api) -> None:
        api.create_lead(EmailAddress="one@example.com")
        api.bulk([{"EmailAddress": "one@example.com", "JobTitle": "CTO"}, {"EmailAddress": "none@example.com"}])
        api.bulk([{"EmailAddress": "none@example.com"}], options={"PushNonExistentLeadsToUnProcessedList": True})
        api.bulk([{"EmailAddress": "one@example.com", "JobTitle": "CEO"}], options={"DryRun": True})
        retried = {"Idempotency-Key": uuid.uuid4().hex}
        for _ in range(2):  # the replayed answer is not counted again
            api.bulk([{"EmailAddress": "one@example.com", "JobTitle": "CFO"}], headers=retried)
        text_ = metrics_text(api)
        assert sample(text_, "leadstore_bulk_leads_total", outcome="Successful") == 2
        assert sample(text_, "leadstore_bulk_leads_total", outcome="Failed") == 1
        assert sample(text_, "leadstore_bulk_leads_total", outcome="UnProcessed") == 1

    def test_rate_limit_rejections_and_redis_failures(self, api: Api, db: Database) -> None:
        with db.write() as conn:
            save_setting(conn, "rate_limit_calls", "1")
        wait_until(lambda: api.get("/LeadsMetaData.Get").status_code == 429, timeout=5)
        before = sample(metrics_text(api), "leadstore_rate_limit_rejections_total")
        assert api.get("/LeadsMetaData.Get").status_code == 429
        text_ = metrics_text(api)
        assert sample(text_, "leadstore_rate_limit_rejections_total") == before + 1
        assert sample(text_, "leadstore_redis_errors_total") == 0
        assert "# TYPE leadstore_http_request_duration_seconds histogram" in text_


# --- the database goes away and comes back ---------------------------------------------------


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(make_url(driver_url(PG_URL)).set(database="postgres"), isolation_level="AUTOCOMMIT")


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own."""
    name = f"leadstore_ops_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(driver_url(PG_URL)).set(database=name).render_as_string(hide_password=False)
    try:
        db = Database(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
        migrate.upgrade(db)
        db.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _take_database_away(name: str, allow: bool) -> None:
    with _admin_engine().connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}'))
        if not allow:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})


def test_database_down_answers_503_and_recovers_without_restart(pg_database: str) -> None:
    settings = Settings(database_url=pg_database, catalog_refresh_seconds=0.1, _env_file=None)  # type: ignore[call-arg]
    db = Database(settings)
    admin, stranger = make_user(db, "Administrator"), make_user(db, "Administrator")
    db.dispose()
    name = make_url(pg_database).database or ""
    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        api.create_lead(EmailAddress="down@example.com")
        assert api.get(QUICK_SEARCH, params={"key": "down"}).status_code == 200
        _take_database_away(name, allow=False)
        try:
            for call in (
                lambda: api.get(QUICK_SEARCH, params={"key": "down"}),
                lambda: api.bulk([{"EmailAddress": "down@example.com", "JobTitle": "CTO"}]),
                lambda: api.get(QUICK_SEARCH, as_=stranger),  # keys that cannot be checked now
            ):
                response = call()
                assert response.status_code == 503, response.text
                body = response.json()
                assert set(body) == {"Status", "ExceptionType", "ExceptionMessage"}
                assert body["ExceptionType"] == "MXServiceUnavailableException"
                assert response.headers["X-Request-Id"] in body["ExceptionMessage"]
                assert "Traceback" not in response.text
                assert "psycopg" not in response.text
            ready = api.http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["Checks"] == {"Database": "Unavailable"}
            assert api.http.get("/health").status_code == 200
        finally:
            _take_database_away(name, allow=True)
        wait_until(lambda: api.get(QUICK_SEARCH, params={"key": "down"}).status_code == 200, timeout=10)
        assert api.http.get("/ready").status_code == 200
        assert api.bulk([{"EmailAddress": "down@example.com", "JobTitle": "CTO"}]).status_code == 200


def _refuse_writes(name: str, refuse: bool) -> None:
    """Make the database read-only for new sessions (or writable again), and end the current ones."""
    setting = "SET default_transaction_read_only = on" if refuse else "RESET default_transaction_read_only"
    with _admin_engine().connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" {setting}'))
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})


def test_ready_fails_while_the_database_refuses_writes(pg_database: str) -> None:
    """Reads still work, so SELECT 1 is no test of readiness: /ready tries a write."""
    settings = Settings(database_url=pg_database, catalog_refresh_seconds=0.1, _env_file=None)  # type: ignore[call-arg]
    name = make_url(pg_database).database or ""
    with LiveServer.start(settings) as live:
        ready = live.base_url + "/ready"
        assert httpx.get(ready).status_code == 200
        _refuse_writes(name, refuse=True)
        try:
            # The first check may meet a connection that was just ended; the next ones the refusal.
            wait_until(lambda: "ReadOnlySqlTransaction" in httpx.get(ready).text, timeout=5)
            response = httpx.get(ready)
            assert response.status_code == 503
            body = response.json()
            assert body["ExceptionType"] == "MXServiceUnavailableException"
            assert "does not take writes (ReadOnlySqlTransaction)" in body["ExceptionMessage"]
            assert body["Checks"] == {"Database": "Unavailable"}
        finally:
            _refuse_writes(name, refuse=False)
        wait_until(lambda: httpx.get(ready).status_code == 200, timeout=10)


def _backend_pid(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    with _admin_engine().connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_a_pooled_connection_idle_for_a_while_is_checked_and_replaced_when_gone(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool checks a connection before use only after it idled PING_AFTER_IDLE_SECONDS:
    one the server closed meanwhile is replaced without the call noticing. One used a moment
    ago is not checked (that check is a round trip per call): a call on it fails, after which
    the pool is replaced."""
    db = Database(Settings(database_url=pg_database, db_pool_size=1, _env_file=None))  # type: ignore[call-arg]
    try:
        monkeypatch.setattr("leadstore.postgres.engine.PING_AFTER_IDLE_SECONDS", 0.2)
        first = _backend_pid(db)
        assert _backend_pid(db) == first  # the pool keeps its connection
        _terminate(first)
        time.sleep(0.3)
        second = _backend_pid(db)  # checked, found gone, replaced: the call did not notice
        assert second != first

        monkeypatch.setattr("leadstore.postgres.engine.PING_AFTER_IDLE_SECONDS", 60)
        _terminate(second)
        with pytest.raises(OperationalError):
            _backend_pid(db)  # not checked: this call meets the closed connection
        assert _backend_pid(db) not in (first, second)
    finally:
        db.dispose()
