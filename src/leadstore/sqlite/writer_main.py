"""The SQLite writer process: ``python -m leadstore.sqlite.writer_main DATABASE SYNCHRONOUS``,
started by a server (``leadstore.sqlite.writer``, which says why), runs the bulk writes it is
sent (``leadstore.sqlite.bulk_write``).

It reads writes from the socket on its standard input: frames of a 4-byte length and a pickled
``(id, BulkWrite)``, which only the server that started it can write. The writes that have
arrived whole when it looks run in one transaction, each inside its own savepoint, with one
COMMIT for them all (a group commit: with ``synchronous=FULL`` every COMMIT costs an fsync,
which the batch shares); then it answers each, ``(id, True, results)`` or ``(id, False, the
error)``, so that an answer means a durable write. A write that fails, or a dry run, has its
savepoint rolled back; the others commit. It exits when the socket closes.

Standard library only (and the plan it runs), so that the process starts at once.
"""

import contextlib
import pickle
import signal
import socket
import sqlite3
import struct
import sys
from typing import Any

from leadstore.leads.plan import BulkWrite, KeyTaken
from leadstore.sqlite.bulk_write import write_bulk
from leadstore.sqlite.connection import WriterTurns, connect

HEADER = struct.Struct("!I")
MAX_BATCH = 32
Job = tuple[int, BulkWrite]
Answer = tuple[int, bool, Any]


def frame(message: Any) -> bytes:
    """``message`` as it goes over the socket, either way: its length, then its pickle."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(payload)) + payload


def run_batch(conn: sqlite3.Connection, jobs: list[Job], turns: WriterTurns | None = None) -> list[Answer]:
    """The jobs in one transaction, each in its own savepoint; each one's answer once committed."""
    with turns if turns is not None else contextlib.nullcontext():
        return _run_batch(conn, jobs)


def _run_batch(conn: sqlite3.Connection, jobs: list[Job]) -> list[Answer]:
    answers: list[Answer] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job_id, write in jobs:
            conn.execute("SAVEPOINT job")
            try:
                answers.append((job_id, True, write_bulk(conn, write)))
            except (sqlite3.Error, KeyTaken) as exc:
                _undo(conn)
                answers.append((job_id, False, exc))
            else:
                if write.dry_run:
                    _undo(conn)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:  # BEGIN or COMMIT failed: nothing of the batch was written
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [(job_id, False, exc) for job_id, _ in jobs]
    return answers


def _undo(conn: sqlite3.Connection) -> None:
    # ROLLBACK TO names the newest savepoint of that name: this job's.
    conn.execute("ROLLBACK TO SAVEPOINT job")
    conn.execute("RELEASE SAVEPOINT job")


def serve(sock: socket.socket, conn: sqlite3.Connection, turns: WriterTurns) -> None:
    """Answer batches until the socket closes: a batch is every write that has arrived whole."""
    buffer = bytearray()
    while True:
        jobs = _take(buffer)
        if not jobs:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return
            buffer += chunk
            continue
        sock.sendall(b"".join(frame(answer) for answer in run_batch(conn, jobs, turns)))


def _take(buffer: bytearray) -> list[Job]:
    """The whole frames at the start of ``buffer`` (at most MAX_BATCH), taken out of it."""
    jobs: list[Job] = []
    while len(jobs) < MAX_BATCH and len(buffer) >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer)
        if len(buffer) < HEADER.size + size:
            break
        jobs.append(pickle.loads(buffer[HEADER.size : HEADER.size + size]))
        del buffer[: HEADER.size + size]
    return jobs


def main() -> None:
    # Ctrl-C reaches the whole process group: the child leaves stopping to the server, which
    # closes the socket once its calls are answered.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path, synchronous = sys.argv[1], sys.argv[2]
    sock = socket.socket(fileno=sys.stdin.fileno())
    conn, turns = connect(path, synchronous), WriterTurns(path)
    with contextlib.closing(conn), contextlib.suppress(ConnectionError):
        serve(sock, conn, turns)


if __name__ == "__main__":
    main()
