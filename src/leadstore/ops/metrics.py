"""Prometheus metrics: requests by route and status, latency, bulk outcomes, the rate limit and Redis.

Labels are bounded: a route is its template (``/v2/LeadManagement.svc/Lead.Create``), never the
raw path, and a path that matches no route counts as ``unmatched``, so unknown URLs cannot
blow up the number of series.

With several worker processes (``leadstore serve --workers N``) prometheus_client's
multiprocess mode is on: ``server.py`` points PROMETHEUS_MULTIPROC_DIR at a fresh directory
before the workers start, each worker writes its values there, and ``/metrics`` adds them up,
so any worker answers for all of them.
"""

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_OUTCOMES = (("SuccessfulLeads", "Successful"), ("FailedLeads", "Failed"), ("UnProcessedLeads", "UnProcessed"))
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The *_created series double the output and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    """One application's metrics, in a registry of its own (so two apps in one process, as in
    the tests, do not mix their figures)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "leadstore_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "leadstore_http_request_duration_seconds",
            "Time from receiving a request to the end of its answer",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.leads = Counter(
            "leadstore_bulk_leads", "Leads in Update Leads in Bulk v2 calls, by outcome", ["outcome"], registry=r
        )
        self.rate_limited = Counter(
            "leadstore_rate_limit_rejections", "Calls refused with 429 by the rate limit", registry=r
        )
        self.redis_errors = Counter(
            "leadstore_redis_errors", "Rate-limit checks that failed because Redis was unreachable", registry=r
        )
        self.unchecked = Counter(
            "leadstore_rate_limit_unchecked",
            "Calls that met an unreachable Redis: served unchecked (fail-open) or refused (fail-closed)",
            ["action"],
            registry=r,
        )

    # The rate limiter's events (leadstore.ratelimit_redis.LimiterEvents).
    def redis_error(self) -> None:
        self.redis_errors.inc()

    def unchecked_call(self, served: bool) -> None:
        self.unchecked.labels("served" if served else "refused").inc()

    def bulk_answer(self, answer: dict[str, Any]) -> None:
        """Count the leads of one bulk update by the list they ended in."""
        details = answer.get("Details", {})
        for name, outcome in _OUTCOMES:
            if details.get(name):
                self.leads.labels(outcome).inc(len(details[name]))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status == 429:
            self.rate_limited.inc()

    def exposition(self) -> bytes:
        """The text format, for this process or, in multiprocess mode, for all workers."""
        if MULTIPROC_ENV in os.environ:  # prometheus_client itself switches on this variable
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class MetricsMiddleware:
    """Outermost, so it sees the status of every answer, including the last-resort ones."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        observed = False

        def observe() -> None:
            nonlocal observed
            observed = True
            self.metrics.observe(scope["method"], route_template(scope), status, time.perf_counter() - started)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not observed:
                observe()  # before the last byte leaves: a client that then reads /metrics sees its call
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if not observed:
                observe()
