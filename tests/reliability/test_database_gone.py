"""A SQLite database file deleted or replaced under a running server, and a full disk: calls are
refused with 503 rather than acknowledged into a file that is gone, and /ready says why (spec
section 1). These tests use SQLite databases of their own in both halves of the suite; the full
disk is a real one, a small tmpfs mounted for the test."""

import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from leadstore import migrate
from leadstore.catalog import save_setting
from leadstore.config import Settings
from leadstore.db import Database
from leadstore.sqlite.connection import connect
from leadstore.users.service import Credentials
from tests.helpers import Api, LiveServer, make_user, wait_until
from tests.reliability.support import assert_envelope

UNAVAILABLE = "MXServiceUnavailableException"


def new_database(path: Path) -> tuple[Settings, Credentials]:
    """A migrated SQLite database at ``path``, an Administrator's keys, and no rate limit to speak of."""
    settings = Settings(database_url=f"sqlite:///{path}", catalog_refresh_seconds=0.1, _env_file=None)  # type: ignore[call-arg]
    db = Database(settings)
    try:
        migrate.upgrade(db)
        with db.write() as conn:
            save_setting(conn, "rate_limit_calls", "1000000")
        admin = make_user(db, "Administrator")
    finally:
        db.dispose()
    return settings, admin


def everyday(api: Api, title: str) -> httpx.Response:
    """A call the SQLite writer process takes: every lead writes the same text field."""
    return api.bulk([{"EmailAddress": "kept@example.com", "JobTitle": title}])


def general(api: Api, score: str) -> httpx.Response:
    """A call the server's group commit takes (a number field is not an everyday write)."""
    return api.bulk([{"EmailAddress": "kept@example.com", "Score": score}])


def single(api: Api, email: str) -> httpx.Response:
    return api.post("/Lead.Create", json=[{"Attribute": "EmailAddress", "Value": email}])


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_database_file_removed_or_replaced_is_noticed_and_nothing_more_is_acknowledged(
    tmp_path: Path, how: str
) -> None:
    path = tmp_path / "leadstore.db"
    settings, admin = new_database(path)
    with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
        api.create_lead(EmailAddress="kept@example.com")
        for response in (everyday(api, "CTO"), general(api, "1"), single(api, "second@example.com")):
            assert response.status_code == 200, response.text
        assert api.http.get("/ready").status_code == 200

        if how == "deleted":
            path.unlink()
        else:  # an older copy put in its place, as a restore from a backup would
            backup = tmp_path / "backup.db"
            with closing(sqlite3.connect(path)) as conn, closing(sqlite3.connect(backup)) as copy:
                conn.backup(copy)
            os.replace(backup, path)
            replacement = path.read_bytes()
        noticed_by = time.monotonic() + 5
        # Without /ready asked: the server's own check stops the writes.
        wait_until(lambda: everyday(api, "CEO").status_code == 503, timeout=5)
        assert time.monotonic() < noticed_by

        for call in (
            lambda: everyday(api, "CFO"),  # the writer process
            lambda: general(api, "2"),  # the group commit
            lambda: single(api, "third@example.com"),  # a single-lead write
            lambda: api.get("/Leads.GetByQuickSearch", params={"key": "kept"}),  # a read
        ):
            message = assert_envelope(call(), 503, UNAVAILABLE)
            assert str(path) in message
            assert "removed or replaced" in message
            assert "restart the server" in message
        ready = api.http.get("/ready")
        message = assert_envelope(ready, 503, UNAVAILABLE)
        assert str(path) in message
        assert ready.json()["Checks"] == {"Database": "Unavailable"}
        assert api.http.get("/health").status_code == 200

        # The server made no new database in place of the old one, and left the replacement alone.
        if how == "deleted":
            assert not path.exists()
        else:
            assert path.read_bytes() == replacement


def test_the_writer_process_does_not_create_a_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(sqlite3.OperationalError):
        connect(str(missing), "FULL")
    assert not missing.exists()


@contextmanager
def small_disk(where: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` at ``where``, for a disk that really fills up."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs, which needs root (or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left; returns it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    return filler


def empty_wal(path: Path) -> None:
    """Checkpoint the WAL and cut it to nothing, so that the next commit needs new space."""
    wal = Path(f"{path}-wal")

    def truncated() -> bool:
        with closing(sqlite3.connect(path, timeout=1)) as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0 and wal.stat().st_size == 0

    wait_until(truncated, timeout=5)


def test_ready_fails_while_the_disk_is_full_and_recovers_when_space_is_freed(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        path = disk / "leadstore.db"
        settings, admin = new_database(path)
        with LiveServer.start(settings) as live, Api(live.base_url, admin) as api:
            api.create_lead(EmailAddress="kept@example.com")
            assert api.http.get("/ready").status_code == 200
            empty_wal(path)
            filler = fill(disk)

            assert_envelope(single(api, "lost@example.com"), 503, UNAVAILABLE)
            assert_envelope(everyday(api, "CTO"), 503, UNAVAILABLE)
            ready = api.http.get("/ready")
            message = assert_envelope(ready, 503, UNAVAILABLE)
            assert "SQLITE_FULL" in message
            assert "free space" in message
            assert ready.json()["Checks"] == {"Database": "Unavailable"}
            assert api.http.get("/ready").status_code == 503  # still: /ready's own write fails too

            filler.unlink()
            assert api.http.get("/ready").status_code == 200
            assert single(api, "after@example.com").status_code == 200
            assert everyday(api, "CEO").status_code == 200
            assert api.lead(api.create_lead(EmailAddress="more@example.com"))["EmailAddress"] == "more@example.com"
        # Nothing that was refused was written; what was acknowledged was.
        with closing(sqlite3.connect(path)) as conn:
            emails = {row[0] for row in conn.execute("SELECT email_address FROM leads")}
            title = conn.execute("SELECT job_title FROM leads WHERE email_address = 'kept@example.com'").fetchone()
        assert emails == {"kept@example.com", "after@example.com", "more@example.com"}
        assert title == ("CEO",)
