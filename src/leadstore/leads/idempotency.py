"""``Idempotency-Key`` for the bulk update (spec 4.5): a retried call gets the first answer
and writes nothing; the same key with another body is refused. Bodies are compared as JSON
(key order and white space aside), and keys belong to the user whose keys signed the call.

The answer is stored in the transaction that makes the call's changes, so it exists exactly
when they do: a crash can lose neither one without the other. Of concurrent calls with one key,
the first to commit is applied; the others roll back and get its answer, or 409.
"""

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import Connection, Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from leadstore.db import Database
from leadstore.errors import IdempotencyConflict, InvalidRequest, shown
from leadstore.models import IdempotentResponse

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 200  # the stored column's size


class KeyTakenMeanwhile(Exception):
    """A concurrent call with the same key and body committed first; ``answer`` is its response."""

    def __init__(self, answer: bytes) -> None:
        super().__init__("the Idempotency-Key was taken by a concurrent call")
        self.answer = answer


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
        with self.db.read() as conn:
            return self._recall(conn, since=_now() - KEEP_FOR)

    def store(self, conn: Connection, answer: bytes) -> None:
        """Record ``answer`` in the call's transaction. If a concurrent call with the same key got
        there first, raise so that this call's changes roll back: ``KeyTakenMeanwhile`` with its
        answer, or 409 if it had another body."""
        table = IdempotentResponse.__table__
        now = _now()
        assert isinstance(table, Table)
        conn.execute(delete(table).where(table.c.created_at < now - KEEP_FOR))
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        # RETURNING, not rowcount: psycopg 3 reports -1 for an INSERT once SQLAlchemy has closed
        # its cursor. PostgreSQL's INSERT waits for a concurrent holder of the key to commit or
        # roll back; on SQLite the holder is committed or earlier in this group commit. Either
        # way, the row read next is the one that won.
        inserted = conn.execute(
            insert(table)
            .values(
                user_id=self.user_id,
                key=self.key,
                body_hash=self.body_hash,
                response=answer.decode(),
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(table.c.key)
        ).first()
        if inserted is None:
            taken = self._recall(conn)
            if taken is None:  # not expected: the row that won is gone again
                raise IdempotencyConflict(
                    f"Idempotency-Key {shown(self.key)} was in use by a concurrent call; send the call again"
                )
            raise KeyTakenMeanwhile(taken)

    def _recall(self, conn: Connection, since: datetime | None = None) -> bytes | None:
        table = IdempotentResponse.__table__
        query = select(table.c.body_hash, table.c.response).where(
            table.c.user_id == self.user_id, table.c.key == self.key
        )
        if since is not None:
            query = query.where(table.c.created_at >= since)
        row = conn.execute(query).first()
        if row is None:
            return None
        if row.body_hash != self.body_hash:
            raise IdempotencyConflict(
                f"Idempotency-Key {shown(self.key)} was used for a different request body in the last 24 hours; "
                "use a new key for a new request"
            )
        return str(row.response).encode()


def _canonical(body: bytes) -> bytes:
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
