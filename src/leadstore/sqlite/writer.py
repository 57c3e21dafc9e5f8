"""SQLite: the server's side of its writer process, which runs the bulk writes.

In one Python process only one thread runs Python at a time (the GIL). The server parses and
checks calls on its event loop; a writer *thread* would need the GIL back after every SQLite
step and wait for it behind the busy loop. A child process writes while the server parses the
next calls, on the second core (bench/README.md has the figures).

``WriterProcess`` starts the child (``leadstore.sqlite.writer_main``) with the server, sends it
each write, and hands each caller its results, which the child gives only once the write's
transaction has committed. If the child dies, the writes it had not answered fail with
``WriterGone`` (nothing of them was committed, or they were answered) and the next write starts
a new child.
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

from sqlalchemy.exc import DBAPIError, OperationalError

from leadstore.leads.outcomes import LeadResult
from leadstore.leads.plan import BulkWrite, KeyTaken
from leadstore.sqlite.writer_main import HEADER, frame

log = logging.getLogger("leadstore.sqlite.writer")


class WriterGone(OperationalError):
    """The writer process stopped before answering a write."""

    def __init__(self, detail: str) -> None:
        super().__init__("(writer process)", None, Exception(detail))


class WriterProcess:
    def __init__(self, path: str, synchronous: str) -> None:
        self._args = [sys.executable, "-m", "leadstore.sqlite.writer_main", path, synchronous]
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

    async def submit(self, write: BulkWrite) -> dict[int, LeadResult]:
        """``write``'s results, once its transaction committed."""
        stream = self._stream if self._stream is not None else await self.start()
        job_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = future
        stream.write(frame((job_id, write)))
        results: dict[int, LeadResult] = await future
        return results

    async def start(self) -> asyncio.StreamWriter:
        """Start the child, unless it runs; writes sent before it is ready wait in the socket."""
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
            log.warning("%s with %d writes unanswered; they are sent again", why, len(self._pending))
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


def error_of(exc: BaseException) -> BaseException:
    """The child's error as the server raises it: a driver error as SQLAlchemy would
    (``IntegrityError``, ``OperationalError``...), a key taken as it is."""
    if isinstance(exc, sqlite3.Error):
        return DBAPIError.instance("(writer process)", None, exc, sqlite3.Error)
    assert isinstance(exc, KeyTaken)
    return exc
