"""The rate limit shared by every process and host through Redis.

Each access key has a sorted set of its counted calls (score: the call's time in microseconds,
by the Redis server's clock, so hosts with skewed clocks agree). One Lua script drops the calls
that left the window, counts the rest, and records the new call only when there is room: one
atomic round trip per call, with no read-then-write race between processes.

With Redis unreachable, calls are served unchecked (fail-open) or refused with 503
(fail-closed). After a failure Redis is left alone for ``retry_seconds``, so an outage costs
the calls nothing but a flag check, and the first call after that tries again: recovery needs
no restart.
"""

import hashlib
import logging
import time
import uuid
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from leadstore.errors import ServiceUnavailable
from leadstore.ratelimit import Decision

log = logging.getLogger("leadstore.ratelimit")

# KEYS[1]: the key's call log. ARGV: limit, window (µs), a unique member for this call.
# Returns {allowed (0/1), calls in the window, µs until the oldest of them leaves it}.
SLIDING_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  allowed = 1
end
local reset = 0
if count > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  reset = tonumber(oldest[2]) + window - now
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return {allowed, count, reset}
"""

KEY_PREFIX = "leadstore:rl:"


class LimiterEvents(Protocol):
    """Where the limiter reports trouble (the service's metrics)."""

    def redis_error(self) -> None: ...

    def unchecked_call(self, served: bool) -> None: ...


class RedisRateLimiter:
    def __init__(
        self,
        url: str,
        *,
        fail_closed: bool = False,
        events: LimiterEvents | None = None,
        key_prefix: str = KEY_PREFIX,
        retry_seconds: float = 1.0,
        warn_every_seconds: float = 30.0,
        timeout_seconds: float = 1.0,
    ) -> None:
        self.fail_closed = fail_closed
        self.events = events
        self.key_prefix = key_prefix
        self.retry_seconds = retry_seconds
        self.warn_every_seconds = warn_every_seconds
        # One retry on a fresh connection covers a pooled connection that a Redis restart broke;
        # more (redis-py's default is 10, with backoff) would stall every call while Redis is down.
        self.redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 1),
        )
        self._script = self.redis.register_script(SLIDING_LOG)
        self._down_until = 0.0
        self._last_warning = -float("inf")
        self._down = False

    def key(self, access_key: str) -> str:
        """The Redis key of an access key's call log; the access key itself never reaches Redis."""
        return self.key_prefix + hashlib.sha256(access_key.encode()).hexdigest()

    async def hit(self, key: str, limit: int, window_seconds: float) -> Decision:
        if time.monotonic() < self._down_until:
            return self._unchecked(limit)
        try:
            allowed, count, reset_us = await self._script(
                keys=[self.key(key)], args=[limit, int(window_seconds * 1_000_000), uuid.uuid4().hex]
            )
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return self._unchecked(limit)
        if self._down:
            self._down = False
            log.warning("Redis is reachable again; the shared rate limit is back")
        return Decision(bool(allowed), limit, max(limit - int(count), 0), int(reset_us) / 1_000_000)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.redis.aclose()

    def _failed(self, exc: BaseException) -> None:
        self._down = True
        self._down_until = time.monotonic() + self.retry_seconds
        if self.events is not None:
            self.events.redis_error()
        now = time.monotonic()
        if now - self._last_warning >= self.warn_every_seconds:
            self._last_warning = now
            mode = (
                "refusing calls with 503 (fail-closed)" if self.fail_closed else "serving calls unchecked (fail-open)"
            )
            log.warning("Redis is unreachable for the rate limit (%s: %s); %s", type(exc).__name__, exc, mode)

    def _unchecked(self, limit: int) -> Decision:
        if self.events is not None:
            self.events.unchecked_call(served=not self.fail_closed)
        if self.fail_closed:
            raise ServiceUnavailable(
                "The rate limit service is unavailable, so the call was not run; retry shortly",
                headers={"Retry-After": str(max(1, round(self.retry_seconds)))},
            )
        # Nothing is known about the window: report it as empty.
        return Decision(True, limit, limit, 0.0)
