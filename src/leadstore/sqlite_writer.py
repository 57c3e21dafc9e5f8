"""SQLite: the everyday bulk write in a process of its own, beside the server's.

In one Python process only one thread runs Python at a time (the GIL). The server parses and
checks calls on its event loop, and on SQLite it also ran their statements there: at peak that
one core was the limit, SQLite's own work ~40 % of it, while the second core idled. A writer
*thread* cannot take that work: it needs the GIL back after every SQLite step, and waits for
it behind the busy event loop (measured: slower, not faster). A child process can: it writes
while the server parses the next calls.

``WriterProcess`` starts the child (``leadstore.keyed_write``) with the server, sends it each
everyday call (leads that all write the same text fields, see ``BulkUpdate._everyday``) as a
``KeyedWrite``, and hands each caller its answer, which the child gives only once the call's
transaction has committed. If the child dies, the calls it had not answered fail with
``WriterGone``, which the bulk update retries the general way, and the next call starts a new
child.
"""

import asyncio
import itertools
import logging
import pickle
import socket
import sqlite3
import subprocess
import sys
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError, StatementError

from leadstore.keyed_write import HEADER, KeyedWrite, frame
from leadstore.write_health import WriteHealth

log = logging.getLogger("leadstore.sqlite_writer")


class WriterGone(OperationalError):
    """The writer process stopped before answering a call."""

    def __init__(self, detail: str) -> None:
        super().__init__("(writer process)", None, Exception(detail))


class WriterProcess:
    """The server's side: starts the child, sends it calls, hands out its answers."""

    def __init__(self, path: str, synchronous: str, health: WriteHealth | None = None) -> None:
        """``health``: the database's (``Database.health``); calls are refused while its file is gone."""
        self._health = health if health is not None else WriteHealth(None, is_sqlite=True)
        self._args = [sys.executable, "-m", "leadstore.keyed_write", path, synchronous]
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._stream: asyncio.StreamWriter | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count()
        self._starting = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id, once started."""
        return None if self._process is None else self._process.pid

    async def submit(self, write: KeyedWrite) -> dict[Any, int]:
        """The leads ``write`` found (their ids by key value), once its transaction committed."""
        self._health.refuse_if_gone()
        stream = self._stream if self._stream is not None else await self.start()
        job_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = future
        stream.write(frame((job_id, write)))
        try:
            result: dict[Any, int] = await future
        except DBAPIError as exc:
            self._health.failed(exc)
            raise
        self._health.succeeded()
        return result

    async def start(self) -> asyncio.StreamWriter:
        """Start the child, unless it runs; calls sent before it is ready wait in the socket."""
        async with self._starting:
            if self._stream is None:
                self._reap()
                ours, theirs = socket.socketpair()
                with theirs:
                    self._process = subprocess.Popen(self._args, stdin=theirs.fileno(), stdout=subprocess.DEVNULL)
                self._socket = ours
                log.info("SQLite writer process %d started", self._process.pid)
                reader, self._stream = await asyncio.open_connection(sock=ours)
                self._reader = asyncio.create_task(self._read_answers(reader, self._stream))
            return self._stream

    async def _read_answers(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                job_id, ok, value = pickle.loads(await reader.readexactly(size))
                future = self._pending.pop(job_id, None)
                if future is None or future.done():  # the caller went away
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(error_of(value))
        except asyncio.CancelledError:
            self._stopped(stream, "the server is stopping")
            raise
        except Exception as exc:  # the child died, or said something we cannot read
            self._stopped(stream, f"the SQLite writer process stopped ({type(exc).__name__})")

    def _stopped(self, stream: asyncio.StreamWriter, why: str) -> None:
        if self._stream is stream:
            self._stream = None
            self._socket = None
        stream.close()
        if self._pending:
            log.warning("%s with %d calls unanswered; they go the general way", why, len(self._pending))
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WriterGone(why))

    def close(self) -> None:
        """Close the socket; the child finishes its batch and exits."""
        if self._reader is not None:
            self._reader.cancel()
        if self._socket is not None:
            # Now, not when the event loop next runs (as closing the stream would): the child
            # must see the end of its input while we wait for it below.
            self._socket.shutdown(socket.SHUT_RDWR)
            self._socket = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._reap(wait=10)

    def _reap(self, wait: float = 0) -> None:
        """Collect the child that stopped (or was asked to), killing it if it does not."""
        if self._process is None:
            return
        try:
            self._process.wait(wait)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def error_of(exc: sqlite3.Error) -> StatementError:
    """A driver error as SQLAlchemy would raise it (``IntegrityError``, ``OperationalError``...),
    which the bulk update knows how to retry."""
    return DBAPIError.instance("(writer process)", None, exc, sqlite3.Error)
