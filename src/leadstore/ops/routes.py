"""``/health``, ``/ready`` and ``/metrics``: for load balancers and Prometheus. They need no keys,
do not count against the rate limit, and reveal no data."""

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from leadstore.errors import LeadstoreError, ServiceUnavailable
from leadstore.ops.metrics import CONTENT_TYPE, Metrics
from leadstore.ratelimit_redis import RedisRateLimiter
from leadstore.state import AppState, app_state

router = APIRouter(tags=["Operations"])

CHECK_TIMEOUT_SECONDS = 3.0


def json_response(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


def _database_takes_writes(state: AppState) -> str | None:
    """None when the database takes a write; else what is wrong and what to do."""
    db = state.db
    try:
        db.probe_write()
    except LeadstoreError as exc:
        return exc.message
    except Exception as exc:  # a failed write has set db.health.failure when it says why
        why = db.health.failure or type(exc).__name__
        return f"the database does not take writes ({why}); check that it runs, is writable and has free space"
    return None


async def _check(state: AppState) -> tuple[dict[str, str], list[str]]:
    """Each check's result ("OK" or "Unavailable"), and what is wrong with those that failed."""

    async def database() -> str | None:
        return await run_in_threadpool(_database_takes_writes, state)

    async def redis(limiter: RedisRateLimiter) -> str | None:
        return None if await limiter.ping() else "Redis does not answer; check that it runs and is reachable"

    checks = {"Database": database()}
    if isinstance(state.limiter, RedisRateLimiter):
        checks["Redis"] = redis(state.limiter)
    results: dict[str, str] = {}
    problems: list[str] = []
    for name, check in checks.items():
        try:
            problem = await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            problem = f"{name} did not answer within {CHECK_TIMEOUT_SECONDS:g} seconds"
        results[name] = "OK" if problem is None else "Unavailable"
        if problem is not None:
            problems.append(problem)
    return results, problems


@router.get("/health")
async def health() -> Response:
    """The process is up (says nothing about the database or Redis; see /ready)."""
    return json_response({"Status": "OK"})


@router.get("/ready")
async def ready(request: Request) -> Response:
    """Ready to serve: the database takes writes and, when configured, Redis answers. 503 otherwise."""
    results, problems = await _check(app_state(request))
    if problems:
        raise ServiceUnavailable(f"Not ready: {'; '.join(problems)}", Checks=results)
    return json_response({"Status": "Ready", "Checks": results})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text format."""
    registry: Metrics = request.app.state.metrics
    return Response(await run_in_threadpool(registry.exposition), media_type=CONTENT_TYPE)
