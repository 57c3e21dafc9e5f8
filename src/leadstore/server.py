"""Running the service under uvicorn, with one or many worker processes."""

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import uvicorn

from leadstore.config import Settings
from leadstore.ops.metrics import MULTIPROC_ENV


class ServeError(Exception):
    """The service cannot start as asked."""


def logging_config(level: str) -> dict[str, object]:
    """One JSON object per line on standard error, with secrets scrubbed (``leadstore.ops.logs``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "leadstore.ops.logs.JsonFormatter"}},
        "filters": {"redact": {"()": "leadstore.ops.logs.RedactSecrets"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


@contextlib.contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh directory where each writes its metrics, so that /metrics,
    whichever worker answers it, adds up all of them (prometheus_client's multiprocess mode).
    The variable must be set before the workers start; they inherit it."""
    if workers == 1 or MULTIPROC_ENV in os.environ:  # one process, or the operator chose a directory
        yield
        return
    directory = tempfile.mkdtemp(prefix="leadstore-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


def run(settings: Settings, host: str, port: int, workers: int) -> None:
    if workers < 1:
        raise ServeError("--workers must be 1 or more")
    if workers > 1 and (settings.is_sqlite or not settings.redis_url):
        raise ServeError(
            "--workers above 1 needs PostgreSQL (LEADSTORE_DATABASE_URL=postgresql://...) and Redis "
            "(LEADSTORE_REDIS_URL=redis://...): SQLite has one writer, and the rate limit must be shared"
        )
    with shared_metrics(workers):
        uvicorn.run(
            "leadstore.asgi:app",
            host=host,
            port=port,
            workers=workers,
            # uvicorn's own access log prints query strings, where clients put their secret key.
            access_log=False,
            log_config=logging_config(settings.log_level),
            proxy_headers=False,
        )
