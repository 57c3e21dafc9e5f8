"""``leadstore bulk-revert`` undoes a ``bulk-update`` run from its report, and ``leadstore history
calls`` lists the calls that changed leads; against a live server."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from leadstore.cli.main import app
from leadstore.config import get_settings
from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.client.test_bulk_update_cli import keys_env, read_report, seed, stored, write_csv
from tests.helpers import LiveServer


@pytest.fixture
def cli(server: LiveServer, admin: Credentials, database_url: str) -> Iterator[Any]:
    def run(*args: str | Path) -> Result:
        env = {**keys_env(server.base_url, admin), "LEADSTORE_DATABASE_URL": database_url}
        return CliRunner().invoke(app, list(map(str, args)), env=env)

    get_settings.cache_clear()  # the administrative commands read the database URL once a process
    yield run
    get_settings.cache_clear()


def test_a_run_is_undone_from_its_report_and_listed_in_the_history(cli: Any, db: Database, tmp_path: Path) -> None:
    emails = seed(db, 30)
    before = stored(db)
    rows = [[email, f"Title {n}"] for n, email in enumerate(emails)] + [["nobody@example.com", "CEO"]]
    path = write_csv(tmp_path / "leads.csv", ["EmailAddress", "JobTitle"], rows)
    run = cli("bulk-update", path, "--search-by", "EmailAddress", "--batch-size", "10", "--report", tmp_path / "r.csv")
    assert run.exit_code == 1, run.output
    report = read_report(tmp_path / "r.csv")
    calls = list(dict.fromkeys(r["request_id"] for r in report if r["outcome"] == "Successful"))
    assert len(calls) == 3
    assert stored(db) != before

    history = cli("history", "calls", "--since", "1h", "--json")
    assert history.exit_code == 0, history.output
    listed = json.loads(history.stdout)["Calls"]
    assert [c["RequestId"] for c in listed] == calls[::-1]  # newest first
    assert [c["Leads"] for c in listed] == [10, 10, 10]
    assert {c["User"] for c in listed} == {"admin@example.com"}

    dry = cli("bulk-revert", tmp_path / "r.csv", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.strip() == "30 succeeded, 0 failed, 0 unprocessed"
    assert stored(db) != before

    undo = cli("bulk-revert", tmp_path / "r.csv", "--report", tmp_path / "undo.csv")
    assert undo.exit_code == 0, undo.output
    assert undo.stdout.strip() == "30 succeeded, 0 failed, 0 unprocessed"
    assert stored(db) == before
    undone = read_report(tmp_path / "undo.csv")
    assert [r["request_id"] for r in undone[:1]] == [calls[-1]]  # newest call first
    assert {r["reverted"] for r in undone} == {"JobTitle"}


def test_history_and_revert_refuse_bad_input_with_one_line(cli: Any, tmp_path: Path) -> None:
    result = cli("history", "calls", "--since", "yesterday")
    assert result.exit_code != 0
    assert "--since" in result.output
    result = cli("history", "calls", "--user", "nobody@example.com")
    assert result.exit_code != 0
    assert "nobody@example.com" in result.output
    old = write_csv(tmp_path / "old.csv", ["row", "identifier", "outcome", "reason"], [["1", "a", "Successful", ""]])
    result = cli("bulk-revert", old)
    assert result.exit_code == 2
    assert "request_id" in result.output
