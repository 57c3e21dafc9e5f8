"""Group commit for SQLite: one writer thread runs the write work of every call waiting at
that moment in one transaction, each call inside its own savepoint, and commits once.

SQLite has one writer, and a commit with ``synchronous=FULL`` costs an fsync. Taking turns on
a lock, each call would pay its own fsync while holding everyone else up, and the threads
waiting for the lock would fight the writer for the GIL. Batching gives one fsync per batch
and one thread doing all the writing. Each call's work still stands alone: a call whose work
raises has its savepoint rolled back and gets the exception; the others commit. A caller is
answered only after the batch's COMMIT returns, so nothing is acknowledged before it is
durable; if the COMMIT fails, every call of the batch gets the error and nothing was written.
"""

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

MAX_BATCH = 32


@dataclass
class _Job:
    work: Callable[[Connection], Any]
    dry_run: bool
    future: Future[Any] = field(default_factory=Future)


class GroupCommitter:
    def __init__(self, begin: Callable[[], Any]) -> None:
        # ``begin`` opens the writer's transaction: a context manager yielding a connection.
        self._begin = begin
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, work: Callable[[Connection], Any], dry_run: bool = False) -> "Future[Any]":
        self._ensure_started()
        job = _Job(work, dry_run)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="leadstore-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            with self._begin() as conn:
                for job in batch:
                    savepoint = conn.begin_nested()
                    try:
                        value = job.work(conn)
                    except Exception as exc:
                        savepoint.rollback()
                        outcomes.append((job, None, exc))
                        continue
                    if job.dry_run:
                        savepoint.rollback()
                    else:
                        savepoint.commit()
                    outcomes.append((job, value, None))
        except Exception as exc:  # BEGIN or COMMIT failed: nothing of the batch was written
            for job in batch:
                job.future.set_exception(exc)
            return
        for job, value, error in outcomes:
            if error is None:
                job.future.set_result(value)
            else:
                job.future.set_exception(error)
