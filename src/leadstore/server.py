"""Running the service under uvicorn, with one or many worker processes."""

import uvicorn

from leadstore.config import Settings


class ServeError(Exception):
    """The service cannot start as asked."""


def logging_config(level: str) -> dict[str, object]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }


def run(settings: Settings, host: str, port: int, workers: int) -> None:
    if workers > 1 and (settings.is_sqlite or not settings.redis_url):
        raise ServeError(
            "--workers above 1 needs PostgreSQL (LEADSTORE_DATABASE_URL=postgresql://...) and Redis "
            "(LEADSTORE_REDIS_URL=redis://...): SQLite has one writer, and the rate limit must be shared"
        )
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
