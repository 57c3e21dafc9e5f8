"""Process configuration, read once from the environment (``LEADSTORE_*``) or a ``.env`` file.

Account settings that an administrator changes at run time (``leadstore settings set``) live in
the database instead; see ``leadstore.catalog``.
"""

from functools import lru_cache

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def driver_url(url: str) -> str:
    """Turn a plain database URL into one naming the driver leadstore uses."""
    for plain, with_driver in (
        ("sqlite://", "sqlite+pysqlite://"),
        ("postgresql://", "postgresql+psycopg://"),
        ("postgres://", "postgresql+psycopg://"),
    ):
        if url.startswith(plain):
            return with_driver + url[len(plain) :]
    return url


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSTORE_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///leadstore.db"
    redis_url: str | None = None
    # With Redis unreachable, serve anyway (and say so in the log and metrics) unless this is set.
    rate_limit_fail_closed: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "info"
    # How often a worker looks for changed settings, fields, users and permissions.
    catalog_refresh_seconds: float = 0.5
    # SQLite: FULL fsyncs every commit, so an acknowledged update survives a power loss too.
    sqlite_synchronous: str = "FULL"
    db_pool_size: int = 4
    # A request body must arrive whole within this many seconds of the server starting to read it.
    body_timeout_seconds: float = 30.0

    @field_validator("database_url")
    @classmethod
    def _with_driver(cls, url: str) -> str:
        return driver_url(url)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
