"""``create_app(settings)``: the ASGI application. Nothing connects at import time."""

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool

from leadstore import __version__
from leadstore.auth import routes as auth_routes
from leadstore.auth.service import Authenticator
from leadstore.catalog import Catalog
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.errors import install_handlers
from leadstore.leads import idempotency
from leadstore.leads import routes as lead_routes
from leadstore.middleware import RequestContext
from leadstore.ops import routes as ops_routes
from leadstore.ops.metrics import Metrics, MetricsMiddleware
from leadstore.ratelimit import MemoryRateLimiter, RateLimiter
from leadstore.state import AppState
from leadstore.users import routes as user_routes

log = logging.getLogger("leadstore")
GIL_SWITCH_SECONDS = 0.0002
EXPIRED_ANSWERS_SECONDS = 60.0
DATABASE_FILE_CHECK_SECONDS = 1.0


def _limiter(settings: Settings, metrics: Metrics) -> RateLimiter:
    if settings.redis_url:
        from leadstore.ratelimit_redis import RedisRateLimiter

        return RedisRateLimiter(settings.redis_url, fail_closed=settings.rate_limit_fail_closed, events=metrics)
    return MemoryRateLimiter()


async def _keep_catalog_fresh(state: AppState) -> None:
    """Reload fields, settings and principals soon after an administrator changes them."""
    failing = False
    while True:
        await asyncio.sleep(state.settings.catalog_refresh_seconds)
        try:
            await run_in_threadpool(state.catalog.refresh)
        except Exception as exc:
            if not failing:  # once per outage, not every poll
                log.warning("cannot check the catalog for changes (%s); retrying", type(exc).__name__)
            failing = True
        else:
            if failing:
                log.info("catalog checks work again")
            failing = False


async def _forget_expired_answers(db: Database) -> None:
    """Drop answers stored with Idempotency-Keys once they are older than a key lasts."""
    while True:
        await asyncio.sleep(EXPIRED_ANSWERS_SECONDS)
        try:
            await run_in_threadpool(idempotency.forget_expired, db)
        except Exception as exc:  # the next round tries again
            log.warning("cannot drop expired Idempotency-Key answers (%s); retrying", type(exc).__name__)


async def _watch_database_file(db: Database) -> None:
    """SQLite: notice a database file that was deleted or replaced under the server, so that
    calls are refused (``WriteHealth.gone``) rather than written where they would be lost."""
    if db.health.path is None:
        return
    gone = False
    while True:
        await asyncio.sleep(DATABASE_FILE_CHECK_SECONDS)
        now_gone = not await run_in_threadpool(db.health.check_file)
        if now_gone and not gone:
            log.error("%s; refusing calls until then", db.health.gone_message())
        elif gone and not now_gone:
            log.warning("the database file at %s is the one open again; serving calls", db.health.path)
        gone = now_gone


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the request bodies that routes read by hand (and the models
    they use) under components.schemas, where the operations refer to them."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in lead_routes.DOCUMENTED_BODIES:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        app.openapi_schema = document
    return app.openapi_schema


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The event loop parses and checks calls while a writer thread runs their SQL; each
        # statement hands the GIL back and forth. With the default 5 ms switch interval the
        # writer waits most of a call for the GIL (measured: 4-6 ms a call instead of ~1).
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        db = Database(settings, serving=True)
        await db.start()
        catalog = Catalog(db)
        await run_in_threadpool(catalog.refresh)
        state = AppState(settings, db, catalog, Authenticator(catalog), _limiter(settings, metrics))
        app.state.leadstore = state
        # What start-up built lives as long as the process: keep it out of every later garbage
        # collection, whose full passes over it showed up in the bulk update's p99.
        gc.freeze()
        refresher = asyncio.create_task(_keep_catalog_fresh(state))
        file_watcher = asyncio.create_task(_watch_database_file(db))
        forgetter = asyncio.create_task(_forget_expired_answers(db))
        try:
            yield
        finally:
            refresher.cancel()
            file_watcher.cancel()
            forgetter.cancel()
            await state.limiter.close()
            db.dispose()

    app = FastAPI(
        title="leadstore",
        version=__version__,
        summary="A self-hosted lead store that speaks LeadSquared's Lead Management REST API",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    install_handlers(app)
    app.add_middleware(RequestContext, body_timeout=settings.body_timeout_seconds)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: sees every final status
    app.include_router(lead_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(user_routes.router)
    app.include_router(ops_routes.router)
    return app
