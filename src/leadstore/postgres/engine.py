"""PostgreSQL behind ``leadstore.db.Database``: the SQLAlchemy engine and its pool, and the
bulk write (``leadstore.postgres.bulk_write``) in a worker thread, tried again when it lost a
race to a concurrent call."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

from leadstore.config import Settings
from leadstore.leads.outcomes import LeadResult
from leadstore.leads.plan import BulkWrite
from leadstore.postgres.bulk_write import write_bulk

# A pooled connection idle for this long is checked before use.
PING_AFTER_IDLE_SECONDS = 1.0
_RETRIES = 3
# A concurrent call took a unique value after our check, removed an owner, or the two deadlocked:
# the next attempt checks again (and then fails just the lead that lost, if one did).
_LOST_RACE = (
    pg_errors.UniqueViolation,
    pg_errors.ForeignKeyViolation,
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
)


class PostgresEngine:
    def __init__(self, settings: Settings) -> None:
        # No overflow: connections made beyond the pool for a burst are closed again after it,
        # and each new one costs PostgreSQL a backend process; calls wait for a pooled one.
        self.engine = create_engine(settings.database_url, pool_size=settings.db_pool_size, max_overflow=0)
        _ping_idle_connections(self.engine)
        self.path: str | None = None  # no database file

    @contextmanager
    def begin_write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    async def write_bulk(self, write: BulkWrite) -> dict[int, LeadResult]:
        return await anyio.to_thread.run_sync(self._write_bulk, write)

    def _write_bulk(self, write: BulkWrite) -> dict[int, LeadResult]:
        for attempt in range(_RETRIES + 1):
            try:
                with self.engine.connect() as conn:
                    return write_bulk(conn, write)
            except DBAPIError as exc:
                if attempt == _RETRIES or not isinstance(exc.orig, _LOST_RACE):
                    raise
            time.sleep(0.002 * (attempt + 1))
        raise AssertionError("unreachable")

    def prove_commit(self, conn: Connection) -> None:
        """Nothing more to do: PostgreSQL writes its commit record to the WAL whatever else."""

    async def start(self) -> None:
        """Nothing to start: connections are made as calls need them."""

    def checkpoint(self) -> int:
        return 0  # PostgreSQL checkpoints by itself

    def dispose(self) -> None:
        self.engine.dispose()


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use when it has been idle for a while (the server may
    have closed it since), rather than before every use as SQLAlchemy's ``pool_pre_ping`` does,
    a round trip per call. A connection used a moment ago and found dead all the same fails its
    call, and SQLAlchemy then replaces the whole pool."""

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool replaces the connection and tries again.
            raise DisconnectionError("the pooled connection is gone") from exc
