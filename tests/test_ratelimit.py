"""The rate limit of spec section 2: the Redis limiter against the real Redis (db 15), and the
answers over HTTP with both limiters. Redis outages use a port where nothing listens, or a
throwaway redis-server that the test stops and starts."""

import asyncio
import hashlib
import logging
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis

from leadstore.catalog import save_setting
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.errors import ServiceUnavailable
from leadstore.ratelimit import Decision
from leadstore.ratelimit_redis import KEY_PREFIX, RedisRateLimiter
from leadstore.users.service import Credentials
from tests.conftest import REDIS_URL
from tests.helpers import Api, LiveServer, make_user, wait_until

METADATA = "/LeadsMetaData.Get"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Events:
    def __init__(self) -> None:
        self.errors = 0
        self.served = 0
        self.refused = 0

    def redis_error(self) -> None:
        self.errors += 1

    def unchecked_call(self, served: bool) -> None:
        if served:
            self.served += 1
        else:
            self.refused += 1


def run_with_limiter(
    scenario: Callable[[RedisRateLimiter], Awaitable[None]], url: str = REDIS_URL, **options: Any
) -> None:
    """Run ``scenario`` in a fresh event loop with a limiter whose keys no other test shares,
    and delete those keys afterwards."""
    prefix = f"leadstore:test:{uuid.uuid4().hex[:12]}:rl:"

    async def main() -> None:
        limiter = RedisRateLimiter(url, key_prefix=prefix, **options)
        try:
            await scenario(limiter)
        finally:
            await limiter.close()

    try:
        asyncio.run(main())
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


@contextmanager
def throwaway_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own on ``port``, keeping nothing on disk."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the throwaway redis-server did not start") from None
                time.sleep(0.02)
        client.close()
        yield process
    finally:
        process.terminate()
        process.wait(10)


class TestRedisLimiter:
    def test_counts_calls_up_to_the_limit_then_refuses(self) -> None:
        async def scenario(limiter: RedisRateLimiter) -> None:
            decisions = [await limiter.hit("ak-1", 3, 5) for _ in range(4)]
            assert [d.allowed for d in decisions] == [True, True, True, False]
            assert [d.remaining for d in decisions] == [2, 1, 0, 0]
            assert all(isinstance(d, Decision) and d.limit == 3 for d in decisions)
            assert 4.8 < decisions[-1].reset_seconds <= 5
            assert decisions[-1].headers() == {
                "X-RateLimit-Limit": "3",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "5",
                "Retry-After": "5",
            }

        run_with_limiter(scenario)

    def test_access_keys_have_separate_windows(self) -> None:
        async def scenario(limiter: RedisRateLimiter) -> None:
            assert (await limiter.hit("ak-a", 1, 5)).allowed
            assert not (await limiter.hit("ak-a", 1, 5)).allowed
            assert (await limiter.hit("ak-b", 1, 5)).allowed

        run_with_limiter(scenario)

    def test_keys_in_redis_are_namespaced_hashes_that_expire(self) -> None:
        access_key = f"ak-{uuid.uuid4().hex}"

        async def scenario(limiter: RedisRateLimiter) -> None:
            await limiter.hit(access_key, 5, 2)
            keys = [key.decode() async for key in limiter.redis.scan_iter(match=limiter.key_prefix + "*")]
            assert keys == [limiter.key_prefix + hashlib.sha256(access_key.encode()).hexdigest()]
            assert not any(access_key in key for key in keys)
            assert 2000 < await limiter.redis.pttl(keys[0]) <= 3000

        run_with_limiter(scenario)
        assert RedisRateLimiter.__init__.__kwdefaults__["key_prefix"] == KEY_PREFIX == "leadstore:rl:"

    def test_window_edge_is_exact_on_the_redis_clock(self) -> None:
        """A call exactly one window old has left it; a newer one still counts, and the reset
        says to the microsecond when it leaves."""

        async def scenario(limiter: RedisRateLimiter) -> None:
            key = limiter.key("ak-edge")
            seconds, micros = await limiter.redis.time()
            now = seconds * 1_000_000 + micros
            await limiter.redis.zadd(key, {"at-the-edge": now - 5_000_000, "inside": now - 2_000_000})
            first = await limiter.hit("ak-edge", 2, 5)
            assert first.allowed
            assert first.remaining == 0
            assert 2.9 < first.reset_seconds <= 3.0
            assert not (await limiter.hit("ak-edge", 2, 5)).allowed
            members = {m.decode() for m in await limiter.redis.zrange(key, 0, -1)}
            assert "at-the-edge" not in members
            assert "inside" in members

        run_with_limiter(scenario)

    def test_window_slides_and_refused_calls_do_not_count(self) -> None:
        async def scenario(limiter: RedisRateLimiter) -> None:
            assert (await limiter.hit("ak-s", 2, 1)).allowed
            await asyncio.sleep(0.5)
            assert (await limiter.hit("ak-s", 2, 1)).allowed
            refused = [await limiter.hit("ak-s", 2, 1) for _ in range(5)]
            assert not any(d.allowed for d in refused)
            assert 0.3 < refused[-1].reset_seconds <= 0.5
            await asyncio.sleep(max(refused[-1].reset_seconds - 0.2, 0))
            assert not (await limiter.hit("ak-s", 2, 1)).allowed  # just before the edge
            await asyncio.sleep(0.3)
            # The first call left; the second (and none of the refused ones) is still in the window.
            after = await limiter.hit("ak-s", 2, 1)
            assert after.allowed
            assert after.remaining == 0
            assert not (await limiter.hit("ak-s", 2, 1)).allowed

        run_with_limiter(scenario)

    def test_concurrent_hits_from_many_tasks_let_exactly_the_limit_through(self) -> None:
        async def scenario(limiter: RedisRateLimiter) -> None:
            # Several clients (as several processes would have), 200 calls at once.
            others = [RedisRateLimiter(REDIS_URL, key_prefix=limiter.key_prefix) for _ in range(3)]
            try:
                limiters = [limiter, *others]
                decisions = await asyncio.gather(*(limiters[i % 4].hit("ak-c", 25, 5) for i in range(200)))
            finally:
                for other in others:
                    await other.close()
            assert sum(d.allowed for d in decisions) == 25
            assert await limiter.redis.zcard(limiter.key("ak-c")) == 25

        run_with_limiter(scenario)


class TestRedisDown:
    def test_fail_open_serves_counts_and_warns_once(self, caplog: pytest.LogCaptureFixture) -> None:
        events = Events()

        async def scenario(limiter: RedisRateLimiter) -> None:
            decisions = [await limiter.hit("ak-down", 3, 5) for _ in range(5)]
            assert all(d.allowed for d in decisions)
            assert decisions[0] == Decision(True, 3, 3, 0.0)

        caplog.set_level(logging.WARNING, logger="leadstore.ratelimit")
        run_with_limiter(scenario, f"redis://127.0.0.1:{free_port()}/0", events=events, retry_seconds=0)
        assert (events.errors, events.served, events.refused) == (5, 5, 0)
        warnings = [r for r in caplog.records if r.name == "leadstore.ratelimit"]
        assert len(warnings) == 1
        assert "fail-open" in warnings[0].getMessage()

    def test_after_a_failure_redis_is_left_alone_for_a_while(self) -> None:
        events = Events()

        async def scenario(limiter: RedisRateLimiter) -> None:
            for _ in range(10):
                assert (await limiter.hit("ak-down", 3, 5)).allowed

        run_with_limiter(scenario, f"redis://127.0.0.1:{free_port()}/0", events=events, retry_seconds=30)
        assert (events.errors, events.served) == (1, 10)

    def test_fail_closed_refuses_with_503(self) -> None:
        events = Events()

        async def scenario(limiter: RedisRateLimiter) -> None:
            with pytest.raises(ServiceUnavailable) as raised:
                await limiter.hit("ak-down", 3, 5)
            assert raised.value.status_code == 503
            assert "retry" in raised.value.message

        run_with_limiter(scenario, f"redis://127.0.0.1:{free_port()}/0", events=events, fail_closed=True)
        assert (events.errors, events.refused) == (1, 1)

    def test_recovers_when_redis_comes_back(self, caplog: pytest.LogCaptureFixture) -> None:
        port = free_port()
        events = Events()
        caplog.set_level(logging.WARNING, logger="leadstore.ratelimit")

        async def scenario(limiter: RedisRateLimiter) -> None:
            with throwaway_redis(port):
                assert (await limiter.hit("ak-r", 2, 5)).remaining == 1
                assert await limiter.ping()
            assert (await limiter.hit("ak-r", 2, 5)) == Decision(True, 2, 2, 0.0)
            assert not await limiter.ping()
            with throwaway_redis(port):
                await asyncio.sleep(0.25)
                # The new server knows neither the script nor the old calls.
                assert [(await limiter.hit("ak-r", 2, 5)).allowed for _ in range(3)] == [True, True, False]

        run_with_limiter(scenario, f"redis://127.0.0.1:{port}/0", events=events, retry_seconds=0.2)
        assert events.errors == 1
        messages = [r.getMessage() for r in caplog.records if r.name == "leadstore.ratelimit"]
        assert len(messages) == 2
        assert "reachable again" in messages[1]


# --- over HTTP -----------------------------------------------------------------------------


def set_limit(db: Database, calls: int, window: int) -> None:
    with db.write() as conn:
        save_setting(conn, "rate_limit_calls", str(calls))
        save_setting(conn, "rate_limit_window_seconds", str(window))


def forget_windows(*users: Credentials) -> None:
    """Drop the Redis call logs of these keys (their names are the limiter's own)."""
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*(KEY_PREFIX + hashlib.sha256(u.access_key.encode()).hexdigest() for u in users))
    client.close()


@pytest.fixture(params=["memory", "redis"])
def limited(request: pytest.FixtureRequest, settings: Settings, db: Database, admin: Credentials) -> Iterator[Api]:
    """A live server at 3 calls per 5 seconds, with the in-memory or the Redis limiter."""
    if request.param == "redis":
        settings = settings.model_copy(update={"redis_url": REDIS_URL})
    set_limit(db, 3, 5)
    try:
        with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
            yield api
    finally:
        forget_windows(admin)


def assert_rate_limited(response: httpx.Response, calls: int, window: int) -> None:
    assert response.status_code == 429
    body = response.json()
    retry_after = body.pop("RetryAfterSeconds")
    assert body == {
        "Status": "Error",
        "ExceptionType": "MXAPIRateLimitExceededException",
        "ExceptionMessage": f"API calls exceeded the limit of {calls} in {window} second(s)",
    }
    assert response.headers["Retry-After"] == str(retry_after)
    assert 1 <= retry_after <= window
    assert response.headers["X-RateLimit-Limit"] == str(calls)
    assert response.headers["X-RateLimit-Remaining"] == "0"


class TestOverHttp:
    def test_the_429_answer_is_leadsquareds(self, limited: Api) -> None:
        answers = [limited.get(METADATA) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
        for response in answers[:3]:
            assert response.headers["X-RateLimit-Limit"] == "3"
            assert response.headers["X-RateLimit-Reset"] == "5"
            assert "Retry-After" not in response.headers
        assert_rate_limited(answers[3], 3, 5)
        assert answers[3].headers["Retry-After"] == "5"

    def test_rate_limit_headers_on_every_authenticated_answer(self, limited: Api) -> None:
        for response in (
            limited.get("/Leads.GetById", params={"id": str(uuid.uuid4())}),
            limited.post("/Lead/Bulk/UpdateV2", json={"LeadPropertiesList": []}),  # a 400
            limited.post("/Lead.Create", json=[{"Attribute": "Nope", "Value": "x"}]),  # a 500
        ):
            assert response.status_code in (200, 400, 500), response.text
            assert response.headers["X-RateLimit-Limit"] == "3"
            assert "X-RateLimit-Remaining" in response.headers
            assert "X-RateLimit-Reset" in response.headers

    def test_401_and_404_calls_do_not_count(self, limited: Api) -> None:
        user = limited.user
        wrong = Credentials(user.user_id, user.email, user.access_key, "not-the-secret")
        for _ in range(5):
            assert limited.get(METADATA, as_=wrong).status_code == 401
            assert limited.get("/No.Such.Api").status_code == 404
        assert [limited.get(METADATA).status_code for _ in range(4)] == [200, 200, 200, 429]

    def test_each_access_key_has_its_own_window(self, limited: Api, db: Database) -> None:
        other = make_user(db, "Administrator")
        try:
            assert [limited.get(METADATA).status_code for _ in range(4)] == [200, 200, 200, 429]
            assert limited.get(METADATA, as_=other).status_code == 200
        finally:
            forget_windows(other)

    def test_settings_change_the_limit_on_a_running_server(self, limited: Api, db: Database) -> None:
        set_limit(db, 1, 2)
        wait_until(lambda: limited.get(METADATA).headers.get("X-RateLimit-Limit") == "1", timeout=5)
        assert_rate_limited(limited.get(METADATA), 1, 2)


def metric(api: Api, name: str) -> float:
    text = api.http.get("/metrics").text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


class TestRedisDownOverHttp:
    def test_fail_open_serves_and_counts(self, settings: Settings, db: Database, admin: Credentials) -> None:
        settings = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
        set_limit(db, 2, 5)
        with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
            answers = [api.get(METADATA) for _ in range(4)]
            assert [r.status_code for r in answers] == [200] * 4
            assert answers[0].headers["X-RateLimit-Limit"] == "2"
            assert metric(api, "leadstore_redis_errors_total") >= 1
            assert metric(api, 'leadstore_rate_limit_unchecked_total{action="served"}') == 4
            ready = api.http.get("/ready")
            assert ready.status_code == 503
            assert ready.json()["Checks"] == {"Database": "OK", "Redis": "Unavailable"}

    def test_fail_closed_answers_503_in_the_envelope(self, settings: Settings, admin: Credentials) -> None:
        settings = settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "rate_limit_fail_closed": True}
        )
        with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
            response = api.get(METADATA)
            assert response.status_code == 503
            assert response.json() == {
                "Status": "Error",
                "ExceptionType": "MXServiceUnavailableException",
                "ExceptionMessage": "The rate limit service is unavailable, so the call was not run; retry shortly",
            }
            assert response.headers["Retry-After"] == "1"
            assert metric(api, 'leadstore_rate_limit_unchecked_total{action="refused"}') == 1

    def test_a_server_recovers_when_redis_returns(self, settings: Settings, db: Database, admin: Credentials) -> None:
        port = free_port()
        settings = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0"})
        set_limit(db, 2, 5)
        with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
            with throwaway_redis(port):
                assert [api.get(METADATA).status_code for _ in range(3)] == [200, 200, 429]
            assert [api.get(METADATA).status_code for _ in range(3)] == [200, 200, 200]  # fail-open
            with throwaway_redis(port):
                wait_until(lambda: api.get(METADATA).headers["X-RateLimit-Remaining"] == "1", timeout=5)
                assert [api.get(METADATA).status_code for _ in range(2)] == [200, 429]
                assert api.http.get("/ready").status_code == 200
