"""The database layer (``leadstore.db`` and its PostgreSQL engine): connections, transactions."""

import asyncio
import os
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Connection, insert, text

from leadstore import migrate
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.fields.registry import FieldRegistry
from leadstore.leads.plan import BulkWrite, Column, LeadWrite
from tests.conftest import POSTGRES_URL

# PostgreSQL's engine, whichever database the suite runs on.
PG_URL = POSTGRES_URL or os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

# True when the statement is a transaction of its own; a transaction that began with an earlier
# BEGIN started before its statement did.
OWN_TRANSACTION = "SELECT xact_start = query_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"


def own_transaction(conn: Connection) -> bool:
    return bool(conn.execute(text(OWN_TRANSACTION)).scalar())


@pytest.fixture
def pg(tmp_path: object) -> Iterator[Database]:
    db = Database(Settings(database_url=PG_URL, db_pool_size=2, _env_file=None))  # type: ignore[call-arg]
    migrate.upgrade(db)
    with db.write() as conn:
        conn.execute(text("DELETE FROM lead_changes"))
        conn.execute(text("DELETE FROM leads WHERE email_address LIKE '%@db.example'"))
        now = datetime(2026, 1, 1)
        rows = [
            {"prospect_id": f"db-{i}", "email_address": f"l{i}@db.example", "created_on": now, "modified_on": now}
            for i in range(8)
        ]
        conn.execute(insert(FieldRegistry.build(()).table), rows)
    yield db
    db.dispose()


def write(i: int, value: str) -> BulkWrite:
    key = Column("email_address", "EmailAddress", "Email", unique=True)
    leads = [LeadWrite(0, f"l{i}@db.example", {0: value})]
    return BulkWrite(
        "leads", key, [Column("job_title", "JobTitle", "Job Title")], leads, None, "u", f"r{i}", datetime.now()
    )


def test_a_bulk_write_s_connection_goes_back_to_transactions(pg: Database) -> None:
    pg.storage.engine.pool.dispose()
    assert asyncio.run(pg.write_bulk(write(0, "CEO")))[0].changed == ["JobTitle"]
    for _ in range(2):  # both pooled connections
        with pg.write() as conn:
            assert own_transaction(conn) is False
            assert conn.execute(text("SELECT job_title FROM leads WHERE prospect_id = 'db-0'")).scalar() == "CEO"


def test_concurrent_writes_share_the_pool_and_open_no_connections_beyond_it(pg: Database) -> None:
    """Calls that find every pooled connection busy wait for one, rather than opening one that
    is closed after the burst (PostgreSQL starts a backend process for each)."""

    async def burst(round_: int) -> None:
        results = await asyncio.gather(*(pg.write_bulk(write(i, f"T{round_}")) for i in range(8)))
        assert all(r[0].changed == ["JobTitle"] for r in results)

    asyncio.run(burst(0))  # the pool fills
    with pg.read() as conn:
        before = conn.execute(text(SESSIONS)).scalar_one()
    for round_ in range(1, 4):
        asyncio.run(burst(round_))
    with pg.read() as conn:
        after = conn.execute(text(SESSIONS)).scalar_one()
    assert after == before
