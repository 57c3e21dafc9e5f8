"""The database layer's transactions (``leadstore.db``)."""

import asyncio
import os

from sqlalchemy import Connection, text

from leadstore.config import Settings
from leadstore.db import Database
from tests.conftest import POSTGRES_URL

# The one-statement bulk write is PostgreSQL's, whichever database the suite runs on.
PG_URL = POSTGRES_URL or os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# True when the statement is a transaction of its own; a transaction that began with an earlier
# BEGIN started before its statement did.
OWN_TRANSACTION = "SELECT xact_start = query_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"


def own_transaction(conn: Connection) -> bool:
    return bool(conn.execute(text(OWN_TRANSACTION)).scalar())


def test_an_autocommitted_statement_is_its_own_transaction_and_its_connection_goes_back_to_transactions() -> None:
    db = Database(Settings(database_url=PG_URL, db_pool_size=1, _env_file=None))  # type: ignore[call-arg]
    try:
        assert asyncio.run(db.autocommit_async(own_transaction)) is True
        with db.write() as conn:  # the pool's one connection again
            assert own_transaction(conn) is False
    finally:
        db.dispose()
