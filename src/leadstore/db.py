"""The database as the domain sees it (``Database``), and the models' declarative base.

``Database`` hands what differs between engines to its engine, chosen once from the URL:
``leadstore.sqlite.engine`` for a SQLite file, ``leadstore.postgres.engine`` for PostgreSQL
(as an httpx client holds a transport). The domain calls ``read``, ``write`` and
``write_bulk`` and never asks which engine it holds.

Requests run in worker threads on plain (synchronous) SQLAlchemy Core connections: one thread
hop per call instead of one per statement.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase

from leadstore.config import Settings
from leadstore.leads.outcomes import LeadResult
from leadstore.leads.plan import BulkWrite
from leadstore.postgres.engine import PostgresEngine
from leadstore.sqlite.engine import SQLiteEngine, sqlite_file
from leadstore.write_health import WriteHealth

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class StorageEngine(Protocol):
    """What each engine does its own way."""

    engine: Engine
    path: str | None  # the database file, for an engine that has one

    def begin_write(self) -> AbstractContextManager[Connection]: ...

    async def write_bulk(self, write: BulkWrite) -> dict[int, LeadResult]: ...

    async def start(self) -> None: ...

    def checkpoint(self) -> int: ...

    def prove_commit(self, conn: Connection) -> None: ...

    def dispose(self) -> None: ...


class Database:
    def __init__(self, settings: Settings, *, serving: bool = False) -> None:
        """``serving``: for a server, whose engine may run background work (SQLite: WAL
        checkpoints off the request path and a writer process for bulk writes)."""
        self.url = settings.database_url
        self.is_sqlite = settings.is_sqlite
        self.storage: StorageEngine
        if settings.is_sqlite:
            self.health = WriteHealth(sqlite_file(settings), is_sqlite=True)
            self.storage = SQLiteEngine(settings, self.health, serving=serving)
        else:
            self.health = WriteHealth(None, is_sqlite=False)
            self.storage = PostgresEngine(settings)
        self.engine = self.storage.engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reading; rolled back at the end. Refused once the database file
        was removed or replaced: the open file is no longer the database of record."""
        self.health.refuse_if_gone()
        with self.engine.connect() as conn, conn.begin() as tx:
            yield conn
            tx.rollback()

    @contextmanager
    def write(self, *, dry_run: bool = False) -> Iterator[Connection]:
        """A transaction that commits when the block ends without an exception (a dry run
        rolls back instead)."""
        self.health.refuse_if_gone()
        try:
            with self.storage.begin_write() as conn:
                yield conn
                if dry_run:
                    conn.get_transaction().rollback()  # type: ignore[union-attr]
        except DBAPIError as exc:
            self.health.failed(exc)
            raise
        if not dry_run:
            self.health.succeeded()

    async def write_bulk(self, write: BulkWrite) -> dict[int, LeadResult]:
        """Run ``write`` in a transaction of its own (``leadstore.leads.plan``); each lead's
        result once committed."""
        self.health.refuse_if_gone()
        try:
            results = await self.storage.write_bulk(write)
        except DBAPIError as exc:
            self.health.failed(exc)
            raise
        if not write.dry_run:
            self.health.succeeded()
        return results

    def probe_write(self) -> None:
        """Raise unless the database takes a write now: the file is still the one open, and a
        write transaction takes the write lock and may change a row. It rolls back, unless the
        last write failed (say, on a full disk): then it commits, since only a commit shows that
        the disk takes writes again."""
        self.health.check_file()
        commit = self.health.failure is not None
        with self.write(dry_run=not commit) as conn:
            conn.execute(text("UPDATE account_settings SET value = value WHERE 1 = 0"))
            if commit:
                self.storage.prove_commit(conn)

    async def start(self) -> None:
        """Start the engine's background parts (a server calls it once)."""
        await self.storage.start()

    def checkpoint(self) -> int:
        """SQLite: move committed pages from the WAL into the database file, off the request
        path; the frames the WAL holds (0 elsewhere)."""
        if self.health.gone:  # not into a file that replaced ours
            return 0
        return self.storage.checkpoint()

    def dispose(self) -> None:
        self.storage.dispose()
