"""The rate limit of spec section 2: an exact sliding window (a log of call times) per access key.

One process keeps the log in memory; several share it through Redis (``RedisRateLimiter``),
so the limit holds across all of them together.
"""

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until the oldest call in the window leaves it (a slot frees up).
    reset_seconds: float

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_seconds))

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_seconds)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: float) -> Decision:
        """Count a call for ``key`` if the window has room; refused calls are not counted."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self, clock: "Clock" = time.monotonic) -> None:
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()

    async def hit(self, key: str, limit: int, window_seconds: float) -> Decision:
        now = self._clock()
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - window_seconds:
            calls.popleft()
        allowed = len(calls) < limit
        if allowed:
            calls.append(now)
        reset = calls[0] + window_seconds - now if calls else 0.0
        return Decision(allowed, limit, max(limit - len(calls), 0), reset)

    async def close(self) -> None:
        self._calls.clear()


class Clock(Protocol):
    def __call__(self) -> float: ...
