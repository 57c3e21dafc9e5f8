"""How every leadstore connection to a SQLite file is set up (the engine's and the writer
process's), and how the processes writing one file take turns. Standard library only."""

import fcntl
import os
import sqlite3
from pathlib import Path

# How long a SQLite connection waits for another process's write lock before giving up.
BUSY_TIMEOUT_MS = 30_000


def pragmas(synchronous: str, autocheckpoint: bool) -> list[str]:
    """WAL, the durability asked for, foreign keys, the wait for another process's write lock;
    no automatic checkpoints where a server makes them (off the request path)."""
    settings = ["journal_mode=WAL", f"synchronous={synchronous}", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}"]
    return settings if autocheckpoint else [*settings, "wal_autocheckpoint=0"]


def existing_file_uri(path: str) -> str:
    """``path`` as a URI that opens the file only if it exists: ``sqlite3.connect`` would
    otherwise create an empty database in place of one that was deleted."""
    return f"{Path(path).absolute().as_uri()}?mode=rw"


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    """As a server's engine connects (the server makes the checkpoints), with BEGIN issued by
    the caller and savepoints in memory rather than in a temporary file."""
    conn = sqlite3.connect(existing_file_uri(path), isolation_level=None, uri=True)
    for pragma in [*pragmas(synchronous, autocheckpoint=False), "temp_store=MEMORY"]:
        conn.execute(f"PRAGMA {pragma}")
    return conn


class WriterTurns:
    """Turns at SQLite's write lock among the processes writing one database file: an flock on
    the file ``<database>-write-lock``, taken before ``BEGIN IMMEDIATE`` and given back after
    the transaction. A waiting process is woken the moment it is free, where SQLite's busy
    handler would sleep and try again (1, 2, 5 ... 100 ms)."""

    def __init__(self, database: str) -> None:
        self._fd = os.open(f"{database}-write-lock", os.O_RDWR | os.O_CREAT, 0o644)

    def acquire(self, blocking: bool = True) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        os.close(self._fd)
