"""Whether the database takes writes: on SQLite, that the file at the configured path is still the
one the server opened (a deleted or replaced file keeps taking writes through the open handles,
and they are lost at the next start); on any engine, that the last write did not fail for want of
space or of a writable database."""

import os
import sqlite3

from sqlalchemy.exc import OperationalError

from leadstore.errors import ServiceUnavailable

# SQLite answers that say the storage refuses writes, not that one call was wrong.
_STORAGE_ERRORS = frozenset(
    {
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    }
)
_PG_READ_ONLY = "25006"


class WriteHealth:
    def __init__(self, path: str | None, *, is_sqlite: bool) -> None:
        """``path``: the SQLite database file, or None (PostgreSQL, an in-memory database)."""
        self.path = path
        self.is_sqlite = is_sqlite
        self.identity: tuple[int, int] | None = None
        # Set by ``check_file``, which the server runs every second; writes and reads refuse while set.
        self.gone = False
        # Why the last write failed, for a failure that says the database refuses writes; None
        # once a write commits again.
        self.failure: str | None = None

    def opened(self) -> None:
        """Remember the file the engine opened (its device and inode), on its first connection."""
        if self.path is not None and self.identity is None:
            stat = os.stat(self.path)
            self.identity = (stat.st_dev, stat.st_ino)

    def check_file(self) -> bool:
        """Whether the file at the path is still the one open; updates ``gone``."""
        if self.path is None or self.identity is None:
            return True
        try:
            stat = os.stat(self.path)
        except OSError:
            same = False
        else:
            same = (stat.st_dev, stat.st_ino) == self.identity
        self.gone = not same
        return same

    def refuse_if_gone(self) -> None:
        if self.gone:
            raise ServiceUnavailable(self.gone_message())

    def gone_message(self) -> str:
        return (
            f"The database file at {self.path} was removed or replaced while the server ran, so "
            "nothing written now would last; restore the file, then restart the server"
        )

    def failed(self, exc: BaseException) -> None:
        why = _refusal(exc, self.is_sqlite)
        if why is not None:
            self.failure = why

    def succeeded(self) -> None:
        self.failure = None


def _refusal(exc: BaseException, is_sqlite: bool) -> str | None:
    """What ``exc`` says about the database's taking writes: a short name (SQLITE_FULL,
    ReadOnlySqlTransaction ...), or None when it is about one call only."""
    orig = getattr(exc, "orig", None)
    if is_sqlite:
        code = getattr(orig, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in _STORAGE_ERRORS:
            return None
        return str(getattr(orig, "sqlite_errorname", code))
    if isinstance(exc, OperationalError) or getattr(orig, "sqlstate", None) == _PG_READ_ONLY:
        return type(orig).__name__
    return None
