"""Engine, connections and transactions.

Requests run in worker threads on plain (synchronous) SQLAlchemy Core connections: one thread
hop per call instead of one per statement, which matters on the bulk-update hot path.

SQLite has one writer. Write transactions take an in-process lock and then ``BEGIN IMMEDIATE``,
so writers queue on a cheap lock rather than in SQLite's sleeping busy handler, and a reader
never upgrades to a writer half-way (which could deadlock). Reads use plain ``BEGIN`` and run
beside the writer thanks to WAL. The bulk update's writes go through ``transact``, which on
SQLite runs them on the event loop, many calls to a commit (``group_commit``).
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import DeclarativeBase

from leadstore.config import Settings
from leadstore.group_commit import GroupCommitter
from leadstore.keyed_write import BUSY_TIMEOUT_MS, WriterTurns, pragmas
from leadstore.sqlite_writer import WriterProcess
from leadstore.write_health import WriteHealth

T = TypeVar("T")

# A pooled PostgreSQL connection idle for this long is checked before use.
PING_AFTER_IDLE_SECONDS = 1.0

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    def __init__(self, settings: Settings, *, serving: bool = False) -> None:
        """``serving``: for a server. SQLite then leaves WAL checkpoints to ``checkpoint`` (which
        the server calls off the request path) instead of running them inside some call's
        COMMIT, where they were the p99 of the bulk update; and a database file gets a writer
        process for the everyday bulk write (``sqlite_writer``)."""
        self.url = settings.database_url
        self.is_sqlite = settings.is_sqlite
        self._write_lock: WriteLock | None = None
        self._committer: GroupCommitter | None = None
        self.writer: WriterProcess | None = None
        self.health = WriteHealth(None, is_sqlite=self.is_sqlite)
        if self.is_sqlite:
            path = make_url(self.url).database or ""
            on_disk = path not in ("", ":memory:") and not path.startswith("file:")
            self.health = WriteHealth(path if on_disk else None, is_sqlite=True)
            self.engine = _sqlite_engine(settings, self.health, autocheckpoint=not serving)
            self._write_lock = WriteLock(WriterTurns(path) if on_disk else None)
            self._committer = GroupCommitter(self._writer_connection, self._write_lock, BUSY_TIMEOUT_MS)
            if serving and on_disk:
                self.writer = WriterProcess(path, settings.sqlite_synchronous, self.health)
        else:
            self.engine = create_engine(
                self.url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_pool_size,
            )
            _ping_idle_connections(self.engine)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reading; rolled back at the end. Refused once the database file
        was removed or replaced: the open file is no longer the database of record, and
        connections opened since would read another file."""
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
            with self._writer_turn(), self._immediate() as conn, conn.begin() as tx:
                yield conn
                if dry_run:
                    tx.rollback()
        except DBAPIError as exc:
            self.health.failed(exc)
            raise
        if not dry_run:
            self.health.succeeded()

    def probe_write(self) -> None:
        """Raise unless the database takes a write now: the file is still the one open, and a
        write transaction takes the write lock and may change a row. It rolls back, unless the
        last write failed (say, on a full disk): then it commits a change of one page, since
        only a commit shows that the disk takes writes again."""
        self.health.check_file()
        commit = self.health.failure is not None
        with self.write(dry_run=not commit) as conn:
            conn.execute(text("UPDATE account_settings SET value = value WHERE 1 = 0"))
            if commit and self.is_sqlite:
                version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
                conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")

    def _immediate(self) -> Connection:
        """A connection whose transactions take SQLite's write lock at BEGIN."""
        conn = self.engine.connect()
        if self.is_sqlite:
            conn.execution_options(sqlite_immediate=True)
        return conn

    def _writer_connection(self) -> Connection:
        """The group commit's own connection. Its savepoints keep the pages they change in
        memory rather than in a temporary file (measured: the file cost a tenth of a call). Only
        this connection: elsewhere a large sort would then fill memory instead of a file. Its
        BEGIN does not wait (busy_timeout 0): the group commit begins on the event loop, and
        waits in a worker thread only when another process holds the write lock."""
        conn = self._immediate()
        driver = conn.connection.driver_connection
        driver.execute("PRAGMA temp_store=MEMORY")  # type: ignore[union-attr]
        driver.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
        return conn

    def _writer_turn(self) -> AbstractContextManager[object]:
        return self._write_lock if self._write_lock is not None else nullcontext()

    def transact(self, work: Callable[[Connection], T], *, dry_run: bool = False) -> T:
        """Run ``work`` in a write transaction of its own and return its result once committed.
        (A worker thread must not wait here for the event loop's group commit: the commit needs
        worker threads itself, and enough waiting ones would deadlock it.)"""
        with self.write(dry_run=dry_run) as conn:
            return work(conn)

    async def transact_async(self, work: Callable[[Connection], T], *, dry_run: bool = False) -> T:
        """``transact`` for the event loop (SQLite: a savepoint of a group commit)."""
        if self._committer is None:
            return await anyio.to_thread.run_sync(lambda: self.transact(work, dry_run=dry_run))
        self.health.refuse_if_gone()
        try:
            result: T = await self._committer.submit(work, dry_run)
        except DBAPIError as exc:
            self.health.failed(exc)
            raise
        if not dry_run:
            self.health.succeeded()
        return result

    async def autocommit_async(self, work: Callable[[Connection], T]) -> T:
        """PostgreSQL: run ``work``, which makes one statement, in autocommit mode: the statement
        is its own transaction, committed (durably) before it returns, with no BEGIN or COMMIT
        round trips."""
        return await anyio.to_thread.run_sync(self._autocommit, work)

    def _autocommit(self, work: Callable[[Connection], T]) -> T:
        self.health.refuse_if_gone()
        try:
            with self.engine.connect() as conn:
                result = work(conn.execution_options(isolation_level="AUTOCOMMIT"))
        except DBAPIError as exc:
            self.health.failed(exc)
            raise
        self.health.succeeded()
        return result

    def checkpoint(self) -> int:
        """SQLite: copy committed pages from the WAL into the database without blocking
        writers (PASSIVE), so the WAL stays small. Returns the number of frames in the WAL,
        which tells the caller whether anything was written since the last checkpoint."""
        if not self.is_sqlite or self.health.gone:  # not into a file that replaced ours
            return 0
        raw = self.engine.raw_connection()
        try:
            _busy, frames, _copied = raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            raw.close()
        return int(frames)

    def dispose(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._committer is not None:
            self._committer.close()
        if self._write_lock is not None:
            self._write_lock.close()
        self.engine.dispose()


class WriteLock:
    """SQLite: this process's turn at the write lock. Its threads take turns on a threading
    lock; with a database file, processes then take turns on ``WriterTurns`` (the server and
    its writer process, or the command line beside a server)."""

    def __init__(self, turns: WriterTurns | None) -> None:
        self._threads = threading.Lock()
        self._turns = turns

    def acquire(self, blocking: bool = True) -> bool:
        if not self._threads.acquire(blocking):
            return False
        if self._turns is not None and not self._turns.acquire(blocking):
            self._threads.release()
            return False
        return True

    def release(self) -> None:
        if self._turns is not None:
            self._turns.release()
        self._threads.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        if self._turns is not None:
            self._turns.close()


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use when it has been idle for a while (the server may
    have closed it since), rather than before every use as SQLAlchemy's ``pool_pre_ping`` does:
    that ping is a round trip per call (measured: 1-4 % of the bulk update's throughput on
    PostgreSQL). A connection used a moment ago and found dead all the same fails its call,
    and SQLAlchemy then replaces the whole pool."""

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


def _sqlite_engine(settings: Settings, health: WriteHealth, autocheckpoint: bool) -> Engine:
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )
    synchronous = settings.sqlite_synchronous

    @event.listens_for(engine, "do_connect")
    def _on_do_connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
        # Once the file is open, a connection that finds it gone must fail, not create a new one.
        if health.identity is not None:
            cargs[:] = [health.uri()]
            cparams["uri"] = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        health.opened()
        # Let SQLAlchemy, not the driver, issue BEGIN (SQLAlchemy's SQLite "savepoints" recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas(synchronous, autocheckpoint):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        # With the driver's transaction handling off (above), its rollback() does nothing; a
        # transaction left open (say, by a COMMIT that failed) must not reach the next user.
        if dbapi_connection.in_transaction:
            dbapi_connection.execute("ROLLBACK")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
