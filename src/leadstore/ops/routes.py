"""``/health``, ``/ready`` and ``/metrics``: for load balancers and Prometheus. They need no keys,
do not count against the rate limit, and reveal no data."""

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from leadstore.errors import ServiceUnavailable
from leadstore.ops.metrics import CONTENT_TYPE, Metrics
from leadstore.ratelimit_redis import RedisRateLimiter
from leadstore.state import AppState, app_state

router = APIRouter(tags=["Operations"])

CHECK_TIMEOUT_SECONDS = 3.0


def json_response(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


def _database_reachable(state: AppState) -> bool:
    try:
        with state.db.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


async def _check(state: AppState) -> dict[str, str]:
    async def database() -> bool:
        return await run_in_threadpool(_database_reachable, state)

    checks = {"Database": database()}
    if isinstance(state.limiter, RedisRateLimiter):
        checks["Redis"] = state.limiter.ping()
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            ok = await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            ok = False
        results[name] = "OK" if ok else "Unavailable"
    return results


@router.get("/health")
async def health() -> Response:
    """The process is up (says nothing about the database or Redis; see /ready)."""
    return json_response({"Status": "OK"})


@router.get("/ready")
async def ready(request: Request) -> Response:
    """Ready to serve: the database and, when configured, Redis answer. 503 otherwise."""
    results = await _check(app_state(request))
    down = [name for name, result in results.items() if result != "OK"]
    if down:
        raise ServiceUnavailable(f"Not ready: {' and '.join(down)} unavailable", Checks=results)
    return json_response({"Status": "Ready", "Checks": results})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the text format."""
    registry: Metrics = request.app.state.metrics
    return Response(await run_in_threadpool(registry.exposition), media_type=CONTENT_TYPE)
