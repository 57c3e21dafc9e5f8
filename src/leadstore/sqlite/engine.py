"""SQLite behind ``leadstore.db.Database``: the SQLAlchemy engine and its connection settings,
this process's turn at the one write lock, WAL checkpoints, and the bulk write (in the writer
process for a server, in the caller's thread otherwise).

SQLite has one writer. Write transactions take this process's turn (``WriteLock``) and then
``BEGIN IMMEDIATE``, so writers queue on a cheap lock rather than in SQLite's sleeping busy
handler, and a reader never upgrades to a writer half-way (which could deadlock). Reads use
plain ``BEGIN`` and run beside the writer thanks to WAL.
"""

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event, make_url

from leadstore.config import Settings
from leadstore.leads.outcomes import LeadResult
from leadstore.leads.plan import BulkWrite
from leadstore.sqlite.bulk_write import write_bulk
from leadstore.sqlite.connection import BUSY_TIMEOUT_MS, WriterTurns, existing_file_uri, pragmas
from leadstore.sqlite.writer import WriterGone, WriterProcess
from leadstore.write_health import WriteHealth

# A writer process that died is replaced, and its unanswered writes sent again, this often.
_WRITER_RESTARTS = 2
WAL_CHECKPOINT_SECONDS = 0.02  # while calls write
WAL_IDLE_SECONDS = 0.5  # while nothing was written since the last checkpoint

log = logging.getLogger("leadstore.sqlite")


class SQLiteEngine:
    def __init__(self, settings: Settings, health: WriteHealth, *, serving: bool) -> None:
        """``serving``: for a server, which makes the WAL checkpoints off the request path (see
        ``checkpoint``) and, for a database file, writes bulk calls in a writer process."""
        self.path = sqlite_file(settings)
        self.engine = _engine(settings, health, autocheckpoint=not serving)
        self.lock = WriteLock(WriterTurns(self.path) if self.path else None)
        self.writer = WriterProcess(self.path, settings.sqlite_synchronous) if serving and self.path else None
        self._health = health
        self._serving = serving
        self._checkpointer: asyncio.Task[None] | None = None

    @contextmanager
    def begin_write(self) -> Iterator[Connection]:
        """This process's turn at the write lock, and a transaction begun with BEGIN IMMEDIATE."""
        with self.lock, self.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    async def write_bulk(self, write: BulkWrite) -> dict[int, LeadResult]:
        if self.writer is None:
            return await anyio.to_thread.run_sync(self._write_bulk_here, write)
        for restart in range(_WRITER_RESTARTS + 1):
            try:
                return await self.writer.submit(write)
            except WriterGone:
                # Sent again: a write the child committed before dying sets the same values
                # again, and finds nothing left to change.
                if restart == _WRITER_RESTARTS:
                    raise
                await asyncio.sleep(0.01)
        raise AssertionError("unreachable")

    def _write_bulk_here(self, write: BulkWrite) -> dict[int, LeadResult]:
        with self.begin_write() as conn:
            raw: Any = conn.connection.driver_connection
            raw.execute("SAVEPOINT bulk")
            results = write_bulk(raw, write)
            if write.dry_run:
                raw.execute("ROLLBACK TO SAVEPOINT bulk")
            raw.execute("RELEASE SAVEPOINT bulk")
            return results

    def prove_commit(self, conn: Connection) -> None:
        """Make the commit write a page, which a full disk refuses."""
        version = conn.exec_driver_sql("PRAGMA user_version").scalar_one()
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")

    async def start(self) -> None:
        """A server's background parts: the writer process, and WAL checkpoints."""
        if self.writer is not None:
            await self.writer.start()
        if self._serving:
            self._checkpointer = asyncio.create_task(self._checkpoint_wal())

    async def _checkpoint_wal(self) -> None:
        """Checkpoint the WAL off the request path, in small steps while calls write. A
        checkpoint inside some call's COMMIT was the p99 of the bulk update; and one ends with an
        fsync of the database file, which holds up the COMMITs' fsyncs beside it, the less the
        smaller it is (bench/README.md)."""
        frames, failing = -1, False
        while True:
            try:
                now = 0 if self._health.gone else await anyio.to_thread.run_sync(self.checkpoint)
            except Exception as exc:  # the next round tries again; the WAL only grows meanwhile
                if not failing:  # once per outage, not every round
                    log.warning("WAL checkpoint failed (%s); retrying", type(exc).__name__)
                failing, now = True, -1
            else:
                failing = False
            written, frames = now != frames, now
            await asyncio.sleep(WAL_CHECKPOINT_SECONDS if written else WAL_IDLE_SECONDS)

    def checkpoint(self) -> int:
        """Copy committed pages from the WAL into the database without blocking writers
        (PASSIVE), so the WAL stays small. Returns the number of frames in the WAL, which tells
        the caller whether anything was written since the last checkpoint."""
        raw = self.engine.raw_connection()
        try:
            _busy, frames, _copied = raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            raw.close()
        return int(frames)

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
        if self.writer is not None:
            self.writer.close()
        self.lock.close()
        self.engine.dispose()


def sqlite_file(settings: Settings) -> str | None:
    """The database file of a SQLite URL; None for an in-memory database."""
    path = make_url(settings.database_url).database or ""
    return None if path in ("", ":memory:") or path.startswith("file:") else path


class WriteLock:
    """This process's turn at the write lock. Its threads take turns on a threading lock; with
    a database file, processes then take turns on ``WriterTurns`` (the server and its writer
    process, or the command line beside a server)."""

    def __init__(self, turns: WriterTurns | None) -> None:
        self._threads = threading.Lock()
        self._turns = turns

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._turns is not None:
            self._turns.acquire()

    def __exit__(self, *exc: object) -> None:
        if self._turns is not None:
            self._turns.release()
        self._threads.release()

    def close(self) -> None:
        if self._turns is not None:
            self._turns.close()


def _engine(settings: Settings, health: WriteHealth, autocheckpoint: bool) -> Engine:
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
        if health.identity is not None and health.path is not None:
            cargs[:] = [existing_file_uri(health.path)]
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
