"""Many processes over one database and one Redis: the rate limit holds across all of them, and
``leadstore serve --workers N`` runs only where it can (PostgreSQL and Redis).

The ``--workers 2`` test runs on PostgreSQL in both halves of the suite; it fails, rather than
skips, when PostgreSQL or Redis cannot be reached."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from leadstore import migrate
from leadstore.catalog import save_setting
from leadstore.cli.main import app
from leadstore.config import Settings, driver_url, get_settings
from leadstore.db import Database
from leadstore.ratelimit_redis import KEY_PREFIX
from leadstore.users.service import Credentials
from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.helpers import LM, LiveServer, make_user

PG_URL = POSTGRES_URL or os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
METADATA = f"{LM}/LeadsMetaData.Get"
Call = Callable[[], int]


def keys(user: Credentials) -> dict[str, str]:
    return {"accessKey": user.access_key, "secretKey": user.secret_key}


def set_limit(db: Database, calls: int, window: int) -> None:
    with db.write() as conn:
        save_setting(conn, "rate_limit_calls", str(calls))
        save_setting(conn, "rate_limit_window_seconds", str(window))


@pytest.fixture
def two_users(db: Database) -> Iterator[list[Credentials]]:
    users = [make_user(db, "Administrator"), make_user(db, "SalesUser")]
    yield users
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*(KEY_PREFIX + hashlib.sha256(u.access_key.encode()).hexdigest() for u in users))
    client.close()


def burst(calls: dict[str, list[Call]]) -> tuple[dict[str, Counter[int]], float]:
    """Run every call at once from a pool of threads; the statuses per user, and how long it took."""
    jobs = [(who, call) for who, these in calls.items() for call in these]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda job: (job[0], job[1]()), jobs))
    counts: dict[str, Counter[int]] = {who: Counter() for who in calls}
    for who, status in statuses:
        counts[who][status] += 1
    return counts, time.monotonic() - started


def test_two_servers_sharing_redis_let_through_the_limit_in_total(
    settings: Settings, db: Database, two_users: list[Credentials]
) -> None:
    window = 3
    set_limit(db, 25, window)
    shared = settings.model_copy(update={"redis_url": REDIS_URL})
    with LiveServer.start(shared) as one, LiveServer.start(shared) as two:
        clients = [
            httpx.Client(base_url=live.base_url, timeout=30, limits=httpx.Limits(max_connections=12))
            for live in (one, two)
        ]
        try:

            def call(client: httpx.Client, user: Credentials) -> Call:
                return lambda: client.get(METADATA, params=keys(user)).status_code

            load = {u.email: [call(clients[i % 2], u) for i in range(60)] for u in two_users}
            for second in (False, True):  # two windows, one after the other
                if second:
                    time.sleep(window)
                counts, took = burst(load)
                assert took < window, f"the burst took {took:.1f}s, longer than the window"
                for who in load:
                    assert counts[who] == Counter({200: 25, 429: 35}), (who, counts[who])
        finally:
            for client in clients:
                client.close()


# --- leadstore serve --workers N -------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    for name in ("LEADSTORE_DATABASE_URL", "LEADSTORE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({}, ["--workers", "2"]),
        ({"LEADSTORE_REDIS_URL": REDIS_URL}, ["--workers", "2"]),
        ({"LEADSTORE_DATABASE_URL": PG_URL}, ["--workers", "4"]),
    ],
)
def test_serve_with_many_workers_needs_postgresql_and_redis(
    cli_env: None, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], args: list[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 1
    assert "--workers above 1 needs PostgreSQL" in result.output
    assert "and Redis" in result.output


def test_serve_refuses_zero_workers(cli_env: None) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 1
    assert "--workers must be 1 or more" in result.output


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this test's own."""
    name = f"leadstore_scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(make_url(driver_url(PG_URL)).set(database="postgres"), isolation_level="AUTOCOMMIT")
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
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_connection_get(url: str, **params: str) -> httpx.Response:
    """A call on a new connection, so the kernel may hand it to any worker."""
    return httpx.get(url, params=params, headers={"Connection": "close"}, timeout=30)


def test_serve_with_two_workers_shares_the_limit_and_the_metrics(pg_database: str, tmp_path: Path) -> None:
    db = Database(Settings(database_url=pg_database, _env_file=None))  # type: ignore[call-arg]
    users = [make_user(db, "Administrator"), make_user(db, "Administrator")]
    set_limit(db, 10, 60)  # a window no burst outlasts, however busy the machine
    db.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LEADSTORE_DATABASE_URL": pg_database,
        "LEADSTORE_REDIS_URL": REDIS_URL,
        "LEADSTORE_LOG_LEVEL": "info",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    leadstore = Path(sys.executable).parent / "leadstore"
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(leadstore), "serve", "--workers", "2", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)

        def call(user: Credentials) -> Call:
            return lambda: fresh_connection_get(base + METADATA, **keys(user)).status_code

        counts, _ = burst({u.email: [call(u) for _ in range(30)] for u in users})
        for who, statuses in counts.items():
            assert statuses == Counter({200: 10, 429: 20}), (who, statuses)

        # Whichever worker answers /metrics, it reports the calls of both.
        totals = set()
        for _ in range(6):
            text_ = fresh_connection_get(base + "/metrics").text
            totals.add(
                sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text_.splitlines()
                    if line.startswith("leadstore_http_requests_total{") and f'route="{METADATA}"' in line
                )
            )
            assert "leadstore_rate_limit_rejections_total 40.0" in text_
        assert totals == {60.0}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(*(KEY_PREFIX + hashlib.sha256(u.access_key.encode()).hexdigest() for u in users))
        client.close()
    output = log_path.read_text()
    for user in users:
        assert user.secret_key not in output
        assert user.access_key not in output
    lines = [json.loads(line) for line in output.splitlines()]
    pids = {line["message"] for line in lines if str(line["message"]).startswith("Started server process")}
    assert len(pids) == 2, pids
    access = [line for line in lines if line["logger"] == "leadstore.access" and line["path"] == METADATA]
    assert Counter(line["status"] for line in access) == Counter({200: 20, 429: 40})
