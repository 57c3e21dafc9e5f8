"""``Idempotency-Key`` for the bulk update (spec 4.5): a retried call gets the first answer
and writes nothing; the same key with another body is refused. Bodies are compared as JSON
(key order and white space aside), and keys belong to the user whose keys signed the call.

The answer is stored by the database's bulk write in the transaction that makes the call's
changes (``plan.BulkWrite.idempotency``), so it exists exactly when they do. Of concurrent
calls with one key, the first to commit is applied; the others find the key taken, write
nothing, and get its answer, or 409.
"""

import hashlib
from datetime import UTC, datetime, timedelta

import orjson

from leadstore.db import Database
from leadstore.errors import IdempotencyConflict, InvalidRequest, shown
from leadstore.leads import repository as repo
from leadstore.leads.plan import IdempotencyRecord

KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 200  # the stored column's size


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
        """The first answer to this key within the last 24 hours, if there is one; 409 if it
        was for another body."""
        with self.db.read() as conn:
            row = repo.idempotent_answer(conn, self.user_id, self.key, since=_now() - KEEP_FOR)
        if row is None:
            return None
        body_hash, answer = row
        if body_hash != self.body_hash:
            raise IdempotencyConflict(
                f"Idempotency-Key {shown(self.key)} was used for a different request body in the last 24 hours; "
                "use a new key for a new request"
            )
        return answer.encode()

    def answer_of_winner(self) -> bytes:
        """The answer of the call that took the key first (or 409)."""
        answer = self.stored_answer()
        if answer is None:  # not expected: the record that won is gone again
            raise IdempotencyConflict(
                f"Idempotency-Key {shown(self.key)} was in use by a concurrent call; send the call again"
            )
        return answer

    def record(self) -> IdempotencyRecord:
        """What the call's write stores with its answer."""
        now = _now()
        return IdempotencyRecord(self.user_id, self.key, self.body_hash, now, now - KEEP_FOR)


def forget_expired(db: Database) -> int:
    """Drop the answers older than 24 hours; how many."""
    with db.write() as conn:
        return repo.delete_idempotent_answers(conn, before=_now() - KEEP_FOR)


def _canonical(body: bytes) -> bytes:
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return body


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
