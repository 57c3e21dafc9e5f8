"""SQLite's group commit: calls share a transaction, yet each stands alone. (PostgreSQL runs
each call in a transaction of its own, so these tests use a SQLite database of their own in
both halves of the suite.)"""

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from leadstore import migrate
from leadstore.config import Settings
from leadstore.db import Database
from tests.helpers import Api, LiveServer, make_user, wait_until


@pytest.fixture
def sqlite_db(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(Settings(database_url=f"sqlite:///{tmp_path / 'group.db'}", _env_file=None))  # type: ignore[call-arg]
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE items (key TEXT PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE children (parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    yield db
    db.dispose()


def _insert(key: str, fail: bool = False) -> Any:
    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO items (key) VALUES (:k)"), {"k": key})
        if fail:
            raise ValueError(f"{key} failed after writing")
        return key

    return work


def _keys(db: Database) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(text("SELECT key FROM items")).scalars())


def _together(db: Database, *jobs: tuple[Any, bool]) -> list[Any]:
    """Submit the jobs in one go, so that they land in one batch."""

    async def run() -> list[Any]:
        calls = (db.transact_async(work, dry_run=dry) for work, dry in jobs)
        return await asyncio.gather(*calls, return_exceptions=True)

    return asyncio.run(run())


def test_a_failing_call_leaves_nothing_and_the_others_commit(sqlite_db: Database) -> None:
    results = _together(sqlite_db, (_insert("a"), False), (_insert("b", fail=True), False), (_insert("c"), False))
    assert results[0] == "a"
    assert isinstance(results[1], ValueError)
    assert results[2] == "c"
    assert _keys(sqlite_db) == {"a", "c"}


def test_a_dry_run_in_a_batch_writes_nothing(sqlite_db: Database) -> None:
    results = _together(sqlite_db, (_insert("real"), False), (_insert("dry"), True), (_insert("also"), False))
    assert results == ["real", "dry", "also"]
    assert _keys(sqlite_db) == {"real", "also"}


def test_a_failed_commit_fails_every_call_of_the_batch_and_the_next_batch_works(sqlite_db: Database) -> None:
    def orphan(conn: Connection) -> str:
        # A deferred foreign key is checked at COMMIT, so the batch's COMMIT fails.
        conn.exec_driver_sql("INSERT INTO children (parent) VALUES (999)")
        return "orphan"

    results = _together(sqlite_db, (_insert("x"), False), (orphan, False))
    assert all(isinstance(r, Exception) for r in results), results
    assert _keys(sqlite_db) == set()
    assert _together(sqlite_db, (_insert("after"), False)) == ["after"]
    assert _keys(sqlite_db) == {"after"}


def test_only_the_writer_keeps_savepoint_pages_in_memory(sqlite_db: Database) -> None:
    def temp_store(conn: Connection) -> int:
        return int(conn.exec_driver_sql("PRAGMA temp_store").scalar_one())

    assert _together(sqlite_db, (temp_store, False)) == [2]  # MEMORY
    sqlite_db.dispose()  # the writer's connection is closed, not handed back to the pool
    with sqlite_db.read() as conn:
        assert temp_store(conn) == 0  # the default: a large sort spills to a file


def test_a_running_server_moves_writes_from_the_wal_into_the_database_file(tmp_path: Path) -> None:
    """The server checkpoints the WAL itself (its connections leave it to a background task):
    soon after a write, the database file alone, read without its WAL, holds it."""
    path = tmp_path / "served.db"
    settings = Settings(database_url=f"sqlite:///{path}", catalog_refresh_seconds=0.1, _env_file=None)  # type: ignore[call-arg]
    db = Database(settings)
    migrate.upgrade(db)
    admin = make_user(db, "Administrator", email="admin@example.com")
    db.dispose()

    def in_file(email: str) -> str | None:
        try:  # immutable: the file as it is, without the WAL or locks
            with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
                row = conn.execute("SELECT first_name FROM leads WHERE email_address = ?", (email,)).fetchone()
        except sqlite3.DatabaseError:  # caught mid-checkpoint: look again
            return None
        return None if row is None else str(row[0])

    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        api.create_lead(EmailAddress="wal@example.com", FirstName="Before")
        assert api.bulk([{"EmailAddress": "wal@example.com", "FirstName": "After"}]).status_code == 200
        wait_until(lambda: in_file("wal@example.com") == "After", timeout=3)


def test_a_batch_waits_off_the_loop_while_another_process_holds_the_write_lock(
    sqlite_db: Database, tmp_path: Path
) -> None:
    """The group commit begins on the event loop without waiting; when another connection (as
    another process would) holds SQLite's write lock, it waits in a worker thread, the loop
    goes on meanwhile, and the batch commits once the lock is free."""
    assert _together(sqlite_db, (_insert("first"), False)) == ["first"]  # the writer's connection exists
    other = sqlite3.connect(tmp_path / "group.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def run() -> tuple[Any, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, other.execute, "COMMIT")
        result = await sqlite_db.transact_async(_insert("waited"))
        ticker.cancel()
        return result, ticks

    try:
        result, ticks = asyncio.run(run())
    finally:
        other.close()
    assert result == "waited"
    assert ticks >= 20  # the loop ran while the batch waited ~0.5 s for the lock
    assert _keys(sqlite_db) == {"first", "waited"}
    assert _together(sqlite_db, (_insert("after"), False)) == ["after"]  # and the next batch begins at once


def test_a_committed_batch_answers_before_the_next_batch_runs(sqlite_db: Database) -> None:
    events: list[str] = []

    def first(conn: Connection) -> None:
        conn.execute(text("INSERT INTO items (key) VALUES ('first')"))
        events.append("first written")

    def second(conn: Connection) -> None:
        events.append("second runs")

    async def run() -> None:
        async def caller() -> None:
            await sqlite_db.transact_async(first)
            events.append("first answered")

        first_call = asyncio.create_task(caller())
        while not events:  # the first batch is on its way to COMMIT
            await asyncio.sleep(0)
        # Lands in the next batch, which starts once the first has committed.
        await asyncio.gather(first_call, sqlite_db.transact_async(second))

    asyncio.run(run())
    assert events == ["first written", "first answered", "second runs"]
