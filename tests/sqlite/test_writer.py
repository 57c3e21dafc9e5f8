"""SQLite's writer process: a server hands it every bulk write. These tests use a SQLite database
of their own in both halves of the suite."""

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from leadstore import migrate
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.leads.outcomes import Answer, Item, LeadResult
from leadstore.leads.plan import BulkWrite, Column, IdempotencyRecord, KeyTaken, LeadWrite
from leadstore.sqlite.bulk_write import write_bulk
from leadstore.sqlite.connection import WriterTurns, connect
from leadstore.sqlite.writer import WriterProcess
from leadstore.sqlite.writer_main import run_batch
from leadstore.state import AppState
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer, make_user, wait_until

STAMP = "2026-01-02 03:04:05.000000"
NOW = datetime(2026, 1, 2, 3, 4, 5)


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


def job(*leads: tuple[str, str], owners: list[str] | None = None, column: str = "first_name") -> BulkWrite:
    return BulkWrite(
        table="leads",
        key=Column("email_address", "EmailAddress", "Email", unique=True),
        columns=[Column(column, "FirstName", "First Name")],
        leads=[LeadWrite(i, email, {0: name}) for i, (email, name) in enumerate(leads)],
        owners=owners,
        user_id="u1",
        request_id="r1",
        now=NOW,
    )


def found(results: dict[int, LeadResult]) -> dict[int, list[str]]:
    """The leads found, by index, with the fields changed."""
    return {index: result.changed for index, result in results.items() if result.found}


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
    assert found(answers[0][2]) == {0: ["FirstName"]}
    assert "no such column" in str(answers[1][2])
    assert found(answers[2][2]) == {0: ["FirstName"]}  # the missing lead is not among those found
    assert first_names(path) == {"l0@example.com": "A", "l1@example.com": "Old", "l2@example.com": "C"}


def test_leads_out_of_scope_and_missing_leads_cost_the_same_statements(path: Path) -> None:
    """A caller cannot tell a lead it may not touch from one that does not exist, not even by
    the work done: the scope is part of the lookup."""
    conn = connect(str(path), "FULL")
    seen: list[str] = []
    conn.set_trace_callback(seen.append)

    def statements(email: str) -> tuple[dict[int, LeadResult], list[str]]:
        seen.clear()
        conn.execute("BEGIN IMMEDIATE")
        results = write_bulk(conn, job((email, "X"), owners=["someone-else"]))
        conn.execute("ROLLBACK")
        return results, [s.replace(email, "?") for s in seen if s not in ("BEGIN IMMEDIATE", "ROLLBACK")]

    out_of_scope, missing = statements("l2@example.com"), statements("nobody@example.com")
    conn.close()
    assert out_of_scope == missing
    assert out_of_scope[0] == {}
    assert sum("SELECT" in s for s in missing[1]) == 1  # the lookup


def test_an_answer_comes_once_the_write_committed(path: Path) -> None:
    """With another connection holding the write lock (as another process may), the child
    waits, and answers only after its COMMIT: then the change is there for anyone to read."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")

    async def run() -> tuple[dict[int, LeadResult], dict[str, str]]:
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
        results, before = asyncio.run(run())
    finally:
        other.close()
    assert found(results) == {0: ["FirstName"]}
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

    async def run() -> dict[int, LeadResult]:
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
        results = asyncio.run(run())
        thread.join(10)
        assert other.acquire(blocking=False)  # and both gave their turn back
    finally:
        other.release()
        thread.join(10)
        db.dispose()
        other.close()
    assert found(results) == {0: ["FirstName"]}
    assert own_write_done.is_set()
    assert first_names(path)["l0@example.com"] == "Turn"


def test_a_failed_write_is_raised_as_the_database_error(path: Path) -> None:
    async def run() -> None:
        writer = WriterProcess(str(path), "FULL")
        try:
            with pytest.raises(OperationalError, match="no such column"):
                await writer.submit(job(("l0@example.com", "X"), column="no_such_column"))
            assert found(await writer.submit(job(("l0@example.com", "Y")))) == {0: ["FirstName"]}
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


def test_the_server_writes_bulk_calls_in_its_writer_process(served: tuple[LiveServer, Api, AppState]) -> None:
    live, api, state = served
    writer = state.db.storage.writer  # type: ignore[attr-defined]
    assert writer is not None
    pid = writer.pid
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
        checked = api.bulk([{"EmailAddress": "l1@example.com", "FirstName": "New", "Mobile": "+91-9800000001"}])
        assert here == []  # nothing of either ran in the server's process
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


def test_calls_the_writer_left_unanswered_go_to_a_new_writer(
    served: tuple[LiveServer, Api, AppState],
) -> None:
    """A writer process that dies is replaced, and the calls it had not answered are sent to
    the new one."""
    _live, api, state = served
    writer = state.db.storage.writer  # type: ignore[attr-defined]
    assert writer is not None
    first = writer.pid
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
    second = writer.pid
    assert second is not None
    assert second != first
    assert alive(second)
    assert not alive(first)  # collected, not left a zombie
    assert first_names(live_path(state))["l1@example.com"] == "B"


def test_a_dry_run_and_a_taken_key_write_nothing_and_the_others_of_their_batch_commit(path: Path) -> None:
    dry = job(("l0@example.com", "Dry"))
    dry.dry_run = True
    keyed = [job(("l1@example.com", f"Key{i}")) for i in range(2)]
    for write in keyed:
        write.idempotency = IdempotencyRecord("u1", "k", "hash", NOW, NOW - timedelta(days=1))
        write.answer = Answer("EmailAddress", [Item(0, "l1@example.com")])
    conn = connect(str(path), "FULL")
    conn.execute(
        "INSERT INTO users (id, email, role, access_key, secret_hash, is_active, created_at) "
        "VALUES ('u1', 'u1@example.com', 'Administrator', 'ak', 'h', 1, ?)",
        (STAMP,),
    )
    answers = run_batch(conn, [(1, dry), (2, keyed[0]), (3, keyed[1]), (4, job(("l2@example.com", "Last")))])
    stored = conn.execute("SELECT response FROM idempotent_responses").fetchall()
    conn.close()
    assert [(job_id, ok) for job_id, ok, _ in answers] == [(1, True), (2, True), (3, False), (4, True)]
    assert found(answers[0][2]) == {0: ["FirstName"]}  # reported as a real write would be
    assert isinstance(answers[2][2], KeyTaken)
    assert first_names(path) == {"l0@example.com": "Old", "l1@example.com": "Key0", "l2@example.com": "Last"}
    assert [json.loads(r) for (r,) in stored] == [keyed[0].answer.render(answers[1][2])]  # type: ignore[union-attr]


def test_statements_per_write_do_not_grow_with_leads(path: Path) -> None:
    """One lookup, one query per unique field written, one of the owners, one UPDATE per set of
    changed columns, the newest history id, one INSERT of history rows and one of the call's
    record, however many leads."""
    conn = connect(str(path), "FULL")
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    columns = [Column("first_name", "FirstName", "First Name"), Column("mobile", "Mobile", "Mobile", unique=True)]

    def statements(count: int) -> set[str]:
        leads = [LeadWrite(i, f"l{i}@example.com", {0: f"N{count}", 1: f"+91-98{count}{i:06d}"}) for i in range(count)]
        write = BulkWrite("leads", job().key, columns, leads, None, "u1", "r1", NOW)
        seen.clear()
        conn.execute("BEGIN IMMEDIATE")
        results = write_bulk(conn, write)
        conn.execute("COMMIT")
        assert found(results) == {i: ["FirstName", "Mobile"] for i in range(count)}
        # executemany traces each row it runs: tell statements apart by their text, values aside.
        texts = {re.sub(r"'[^']*'|\b\d+\b|NULL", "?", s) for s in seen[1:-1]}
        return {re.sub(r"\(\?(, \?)*\)", "(...)", s) for s in texts}

    one, three = statements(1), statements(3)
    conn.close()
    assert one == three, (one, three)
    assert len(one) == 6, one  # no owner is written here; the call's record (lead_calls) is
