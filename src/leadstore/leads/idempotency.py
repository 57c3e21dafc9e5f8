"""``Idempotency-Key`` for the bulk update (spec 4.5): a retried call gets the first answer
and writes nothing; the same key with another body is refused. Bodies are compared as JSON
(key order and white space aside), and keys belong to the user whose keys signed the call.

The answer is stored in the transaction that makes the call's changes, so it exists exactly
when they do: a crash can lose neither one without the other.
"""

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import Connection, Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from leadstore.db import Database
from leadstore.errors import IdempotencyConflict, InvalidRequest
from leadstore.models import IdempotentResponse

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 200  # the stored column's size


class KeyTakenMeanwhile(Exception):
    """A concurrent call with the same key committed first; answer with its response."""


class IdempotencyGuard:
    def __init__(self, db: Database, user_id: str, key: str, body: bytes) -> None:
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidRequest(
                f"The Idempotency-Key header is {len(key)} characters long; use at most {MAX_KEY_LENGTH}, e.g. a UUID"
            )
        self.db = db
        self.user_id = user_id
        self.key = key
        self.body_hash = hashlib.sha256(_canonical(body)).hexdigest()

    def stored_answer(self) -> bytes | None:
        """The first answer to this key, if there is one; 409 if it was for another body."""
        table = IdempotentResponse.__table__
        with self.db.read() as conn:
            row = conn.execute(
                select(table.c.body_hash, table.c.response).where(
                    table.c.user_id == self.user_id,
                    table.c.key == self.key,
                    table.c.created_at >= _now() - KEEP_FOR,
                )
            ).first()
        if row is None:
            return None
        if row.body_hash != self.body_hash:
            raise IdempotencyConflict(
                f"Idempotency-Key {self.key!r} was used for a different request body in the last 24 hours; "
                "use a new key for a new request"
            )
        return str(row.response).encode()

    def store(self, conn: Connection, answer: bytes) -> None:
        """Record ``answer`` in the call's transaction (``KeyTakenMeanwhile`` if a concurrent
        call with the same key got there first)."""
        table = IdempotentResponse.__table__
        now = _now()
        assert isinstance(table, Table)
        conn.execute(delete(table).where(table.c.created_at < now - KEEP_FOR))
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        result = conn.execute(
            insert(table)
            .values(
                user_id=self.user_id,
                key=self.key,
                body_hash=self.body_hash,
                response=answer.decode(),
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        if result.rowcount == 0:
            raise KeyTakenMeanwhile


def _canonical(body: bytes) -> bytes:
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
