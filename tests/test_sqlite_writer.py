"""SQLite's writer process: a server hands it the everyday bulk calls (leads that all write the
same text fields). These tests use a SQLite database of their own in both halves of the suite."""

import asyncio
import contextlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from leadstore import migrate
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.keyed_write import KeyedWrite, WriterTurns, connect, run_batch, write
from leadstore.sqlite_writer import WriterProcess
from leadstore.state import AppState
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer, make_user, wait_until

STAMP = "2026-01-02 03:04:05.000000"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "writer.db"
    db = Database(Settings(database_url=f"sqlite:///{path}", _env_file=None))  # type: ignore[call-arg]
    migrate.upgrade(db)
    with db.write() as conn:
        for i in range(3):
            conn.exec_driver_sql(
                "INSERT INTO leads (prospect_id, email_address, first_name, created_on, modified_on) "
                "VALUES (?, ?, 'Old', ?, ?)",
                (f"p{i}", f"l{i}@example.com", STAMP, STAMP),
            )
    db.dispose()
    return path


def job(*leads: tuple[str, str], owners: list[str] | None = None, column: str = "first_name") -> KeyedWrite:
    return KeyedWrite(
        table="leads",
        key_column="email_address",
        columns=(column,),
        field_names=("FirstName",),
        leads=[(email, [name]) for email, name in leads],
        owners=owners,
        user_id="u1",
        request_id="r1",
        changed_at=STAMP,
        modified_on=STAMP,
    )


def first_names(path: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return dict(conn.execute("SELECT email_address, first_name FROM leads"))


def test_a_failing_call_leaves_nothing_and_the_others_of_its_batch_commit(path: Path) -> None:
    conn = connect(str(path), "FULL")
    answers = run_batch(
        conn,
        [
            (1, job(("l0@example.com", "A"))),
            (2, job(("l1@example.com", "B"), column="no_such_column")),
            (3, job(("l2@example.com", "C"), ("missing@example.com", "D"))),
        ],
    )
    conn.close()
    assert [(job_id, ok) for job_id, ok, _ in answers] == [(1, True), (2, False), (3, True)]
    assert answers[0][2] == {"l0@example.com": 1}
    assert "no such column" in str(answers[1][2])
    assert answers[2][2] == {"l2@example.com": 3}  # the missing lead is not among those found
    assert first_names(path) == {"l0@example.com": "A", "l1@example.com": "Old", "l2@example.com": "C"}


def test_leads_out_of_scope_and_missing_leads_cost_the_same_statements(path: Path) -> None:
    """A caller cannot tell a lead it may not touch from one that does not exist, not even by
    the work done: the scope is part of the lookup."""
    conn = connect(str(path), "FULL")
    seen: list[str] = []
    conn.set_trace_callback(seen.append)

    def statements(email: str) -> tuple[dict[Any, int], list[str]]:
        seen.clear()
        conn.execute("BEGIN IMMEDIATE")
        found = write(conn, job((email, "X"), owners=["someone-else"]))
        conn.execute("ROLLBACK")
        return found, [s.replace(email, "?") for s in seen if s not in ("BEGIN IMMEDIATE", "ROLLBACK")]

    out_of_scope, missing = statements("l2@example.com"), statements("nobody@example.com")
    conn.close()
    assert out_of_scope == missing
    assert out_of_scope[0] == {}
    assert sum("SELECT" in s for s in missing[1]) == 2  # the lookup, and the newest history id


def test_an_answer_comes_once_the_write_committed(path: Path) -> None:
    """With another connection holding the write lock (as another process may), the child
    waits, and answers only after its COMMIT: then the change is there for anyone to read."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def run() -> tuple[dict[Any, int], dict[str, str]]:
        writer = WriterProcess(str(path), "FULL")
        await writer.start()
        try:
            call = asyncio.create_task(writer.submit(job(("l0@example.com", "Later"))))
            await asyncio.sleep(0.5)
            assert not call.done()
            before = first_names(path)
            other.execute("COMMIT")
            return await asyncio.wait_for(call, 10), before
        finally:
            writer.close()

    try:
        found, before = asyncio.run(run())
    finally:
        other.close()
    assert found == {"l0@example.com": 1}
    assert before["l0@example.com"] == "Old"
    assert first_names(path)["l0@example.com"] == "Later"


def test_processes_writing_one_database_take_turns(path: Path) -> None:
    """While another process has its turn (the lock file beside the database), neither the
    writer process nor a server's own writes begin; both go on once it is given back."""
    other = WriterTurns(str(path))
    assert other.acquire(blocking=False)
    db = Database(Settings(database_url=f"sqlite:///{path}", _env_file=None))  # type: ignore[call-arg]
    own_write_done = threading.Event()

    def own_write() -> None:
        with db.write() as conn:
            conn.exec_driver_sql("UPDATE leads SET last_name = 'Own' WHERE auto_id = 2")
        own_write_done.set()

    async def run() -> dict[Any, int]:
        writer = WriterProcess(str(path), "FULL")
        try:
            call = asyncio.create_task(writer.submit(job(("l0@example.com", "Turn"))))
            await asyncio.sleep(0.5)
            assert not call.done()
            assert not own_write_done.is_set()
            assert first_names(path)["l0@example.com"] == "Old"
            other.release()
            return await asyncio.wait_for(call, 10)
        finally:
            writer.close()

    thread = threading.Thread(target=own_write)
    thread.start()
    try:
        found = asyncio.run(run())
        thread.join(10)
        assert other.acquire(blocking=False)  # and both gave their turn back
    finally:
        other.release()
        thread.join(10)
        db.dispose()
        other.close()
    assert found == {"l0@example.com": 1}
    assert own_write_done.is_set()
    assert first_names(path)["l0@example.com"] == "Turn"


def test_a_failed_write_is_raised_as_the_database_error(path: Path) -> None:
    async def run() -> None:
        writer = WriterProcess(str(path), "FULL")
        try:
            with pytest.raises(OperationalError, match="no such column"):
                await writer.submit(job(("l0@example.com", "X"), column="no_such_column"))
            assert await writer.submit(job(("l0@example.com", "Y"))) == {"l0@example.com": 1}
        finally:
            writer.close()

    asyncio.run(run())


# Through a server.


@pytest.fixture
def served(path: Path) -> Iterator[tuple[LiveServer, Api, AppState]]:
    settings = Settings(database_url=f"sqlite:///{path}", catalog_refresh_seconds=0.1, _env_file=None)  # type: ignore[call-arg]
    db = Database(settings)
    admin: Credentials = make_user(db, "Administrator", email="admin@example.com")
    db.dispose()
    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        yield live, api, live.server.config.app.state.leadstore


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not yet collected is a zombie: gone for our purposes.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[1].split()[0] != "Z"


def test_the_server_writes_everyday_calls_in_its_writer_process(served: tuple[LiveServer, Api, AppState]) -> None:
    live, api, state = served
    assert state.db.writer is not None
    pid = state.db.writer.pid
    assert pid is not None
    assert pid != os.getpid()
    assert alive(pid)
    here: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE")) and "catalog" not in statement:
            here.append(statement)

    api.get("/Leads.GetById", params={"id": "warm-up"})  # the caller's keys are checked once, then cached
    event.listen(state.db.engine, "before_cursor_execute", record)
    try:
        answer = api.bulk([{"EmailAddress": "l0@example.com", "FirstName": "New"}]).json()
        assert here == []  # nothing of it ran in the server's process
        checked = api.bulk([{"EmailAddress": "l1@example.com", "FirstName": "New", "Mobile": "+91-9800000001"}])
        assert len(here) >= 2, here  # a call writing a unique field is checked first, in the server
    finally:
        event.remove(state.db.engine, "before_cursor_execute", record)
    assert answer["Status"]["SuccessCount"] == 1
    assert checked.json()["Status"]["SuccessCount"] == 1
    assert first_names(live_path(state))["l0@example.com"] == "New"
    changes = api.get("/Lead.ChangeHistory", params={"leadId": "p0"}).json()
    assert [(c["Field"], c["OldValue"], c["NewValue"]) for c in changes][:1] == [("FirstName", "Old", "New")]
    live.server.should_exit = True
    live.thread.join(10)
    wait_until(lambda: not alive(pid), timeout=5)  # the server's stop ends its writer


def live_path(state: AppState) -> Path:
    return Path(state.db.url.removeprefix("sqlite+pysqlite:///"))


def test_calls_the_writer_left_unanswered_are_written_the_general_way(
    served: tuple[LiveServer, Api, AppState],
) -> None:
    """A writer process that dies fails the calls it had not answered over to the server's
    own write path, and the next call starts a new one."""
    _live, api, state = served
    assert state.db.writer is not None
    first = state.db.writer.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)  # the call below waits in its socket, unanswered
    answer: list[httpx.Response] = []
    lead = {"EmailAddress": "l0@example.com", "FirstName": "A"}
    call = threading.Thread(target=lambda: answer.append(api.bulk([lead])))
    call.start()
    time.sleep(0.5)
    assert call.is_alive()
    os.kill(first, signal.SIGKILL)
    call.join(10)
    assert answer[0].status_code == 200, answer[0].text
    assert answer[0].json()["Status"]["SuccessCount"] == 1
    assert first_names(live_path(state))["l0@example.com"] == "A"
    assert api.bulk([{"EmailAddress": "l1@example.com", "FirstName": "B"}]).json()["Status"]["SuccessCount"] == 1
    second = state.db.writer.pid
    assert second is not None
    assert second != first
    assert alive(second)
    assert not alive(first)  # collected, not left a zombie
    assert first_names(live_path(state))["l1@example.com"] == "B"
