"""``leadstore bulk-update`` against a live server: outcomes, the report, the exit status, bad
files, the rate limit, lost answers and a server restarted in the middle of a run."""

import csv
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from leadstore import catalog as catalog_module
from leadstore import demo
from leadstore.catalog import Catalog
from leadstore.cli.bulk_update import run_file
from leadstore.cli.main import app
from leadstore.client import Client
from leadstore.db import Database
from leadstore.users.service import Credentials
from tests.helpers import LiveServer

NOT_FOUND = "Lead does not exist in the system or You do not have permission to update the lead"


def seed(db: Database, count: int) -> list[str]:
    """``count`` demo leads; their email addresses in creation order."""
    demo.seed(db, count)
    time.sleep(0.5)  # the running server picks up the demo's mx_City field (it polls every 0.1 s in tests)
    return [lead["EmailAddress"] for lead in stored(db)]


def stored(db: Database) -> list[dict[str, Any]]:
    catalog = Catalog(db)
    catalog.refresh()
    table = catalog.fields.table
    with db.read() as conn:
        rows = conn.execute(
            select(table.c.email_address, table.c.job_title, table.c.score).order_by(table.c.auto_id)
        ).all()
    return [{"EmailAddress": r[0], "JobTitle": r[1], "Score": r[2]} for r in rows]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def keys_env(server_url: str, user: Credentials) -> dict[str, str]:
    return {
        "LEADSTORE_BASE_URL": server_url,
        "LEADSTORE_ACCESS_KEY": user.access_key,
        "LEADSTORE_SECRET_KEY": user.secret_key,
    }


@pytest.fixture
def bulk(server: LiveServer, admin: Credentials) -> Any:
    """Run ``leadstore bulk-update`` in process against the live server."""

    def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
        merged = {**keys_env(server.base_url, admin), **(env or {})}
        return CliRunner().invoke(app, ["bulk-update", *map(str, args)], env=merged)

    return run


def test_mixed_file_reports_every_row_once(bulk: Any, db: Database, tmp_path: Path) -> None:
    emails = seed(db, 40)
    rows = [[email, f"Title {n}", ""] for n, email in enumerate(emails[:30])]  # rows 1-30: good
    rows += [["nobody@example.com", "CEO", ""], ["ghost@example.com", "", "5"]]  # 31-32: not found
    rows += [[emails[30], "Bad score", "abc"]]  # 33: invalid
    rows += [[emails[0].upper(), "Second time", ""]]  # 34: the lead of row 1 again
    rows += [[emails[31], "", ""]]  # 35: nothing to change
    path = write_csv(tmp_path / "leads.csv", ["EmailAddress", "JobTitle", "Score"], rows)
    before = stored(db)

    result = bulk(path, "--search-by", "EmailAddress", "--report", tmp_path / "report.csv")

    assert result.exit_code == 1, result.stderr
    assert result.stdout.strip() == "31 succeeded, 4 failed, 0 unprocessed"
    report = read_report(tmp_path / "report.csv")
    assert [r["row"] for r in report] == [str(n) for n in range(1, 36)]
    assert [r["identifier"] for r in report] == [r[0] for r in rows]
    outcomes = {int(r["row"]): (r["outcome"], r["reason"]) for r in report}
    assert all(outcomes[n] == ("Successful", "") for n in [*range(1, 31), 35])
    assert outcomes[31] == outcomes[32] == ("Failed", NOT_FOUND)
    assert outcomes[33][0] == "Failed"
    assert "Score" in outcomes[33][1]
    assert outcomes[34] == ("Failed", "The same lead is already at row 1")

    after = {lead["EmailAddress"]: lead for lead in stored(db)}
    for n, email in enumerate(emails[:30]):
        assert after[email]["JobTitle"] == f"Title {n}"
    untouched = {lead["EmailAddress"]: lead for lead in before}
    assert after[emails[30]] == untouched[emails[30]]
    assert after[emails[31]] == untouched[emails[31]]
    assert len(after) == 40


def test_json_lines_all_good_exits_0(bulk: Any, db: Database, tmp_path: Path) -> None:
    emails = seed(db, 3)
    lines = [
        json.dumps({"EmailAddress": emails[0], "Score": 42, "DoNotCall": True}),
        "",
        json.dumps({"emailaddress": emails[1], "JobTitle": "CFO", "Notes": None}),
        json.dumps({"EmailAddress": emails[2], "mx_City": "Pune"}),
    ]
    path = tmp_path / "leads.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = bulk(path, "--search-by", "emailAddress", "--report", tmp_path / "r.csv")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "3 succeeded, 0 failed, 0 unprocessed"
    assert [(r["row"], r["outcome"]) for r in read_report(tmp_path / "r.csv")] == [
        ("1", "Successful"),
        ("2", "Successful"),
        ("3", "Successful"),
    ]
    after = stored(db)
    assert (after[0]["Score"], after[1]["JobTitle"]) == (42, "CFO")


def test_non_existent_leads_can_be_unprocessed(bulk: Any, db: Database, tmp_path: Path) -> None:
    emails = seed(db, 1)
    path = write_csv(tmp_path / "l.csv", ["EmailAddress", "JobTitle"], [[emails[0], "A"], ["no@example.com", "B"]])
    result = bulk(path, "--search-by", "EmailAddress", "--push-non-existent-to-unprocessed", "--report", tmp_path / "r")
    assert result.exit_code == 1
    assert result.stdout.strip() == "1 succeeded, 0 failed, 1 unprocessed"
    first, second = read_report(tmp_path / "r")
    assert second == {
        "row": "2",
        "identifier": "no@example.com",
        "outcome": "UnProcessed",
        "reason": NOT_FOUND,
        "request_id": first["request_id"],  # both rows went in one call
    }
    assert first["request_id"]


def test_dry_run_checks_everything_and_writes_nothing(bulk: Any, db: Database, tmp_path: Path) -> None:
    emails = seed(db, 30)
    rows = [[email, "Dry"] for email in emails] + [["nobody@example.com", "X"], [emails[1], "again"]]
    path = write_csv(tmp_path / "l.csv", ["EmailAddress", "JobTitle"], rows)
    before = stored(db)

    result = bulk(path, "--search-by", "EmailAddress", "--dry-run", "--report", tmp_path / "r.csv")

    assert result.exit_code == 1
    assert result.stdout.strip() == "30 succeeded, 2 failed, 0 unprocessed"
    assert "wrote nothing" in result.stderr
    assert len(read_report(tmp_path / "r.csv")) == 32
    assert stored(db) == before


BAD_FILES = [
    pytest.param(
        "l.csv",
        b"EmailAddress,JobTitel,Colour\na@example.com,CTO,red\n",
        [
            "header, column 2 (JobTitel): no lead field is named 'JobTitel'",
            "did you mean JobTitle?",
            "column 3 (Colour)",
        ],
        id="unknown-column",
    ),
    pytest.param(
        "l.csv",
        b"EmailAddress,JobTitle\na@example.com,CTO\n,CEO\n",
        ["row 2 (line 3), column EmailAddress: missing"],
        id="row-without-key",
    ),
    pytest.param("l.csv", b"JobTitle\nCTO\n", ["header: no EmailAddress column"], id="no-key-column"),
    pytest.param(
        "l.csv",
        b"EmailAddress,FirstName\na@example.com,Ren\xe9\n",
        ["row 1 (line 2): not valid UTF-8 (byte 0xe9 at byte ", "; save the file as UTF-8"],
        id="bad-encoding",
    ),
    pytest.param(
        "l.csv",
        b"EmailAddress,JobTitle\na@example.com,CTO,extra\n",
        ["row 1 (line 2), column 3: a value beyond the 2 columns"],
        id="extra-cell",
    ),
    pytest.param(
        "l.jsonl",
        b'{"EmailAddress": "a@example.com"}\n{"EmailAddress": "b@example.com",\n["x"]\n{"Nope": 1}\n',
        [
            "row 2 (line 2): not valid JSON",
            "row 3 (line 3): a line must be a JSON object",
            "row 4 (line 4), column Nope: no lead field is named 'Nope'",
            "row 4 (line 4), column EmailAddress: missing",
        ],
        id="malformed-json-lines",
    ),
    pytest.param(
        "l.jsonl",
        b'{"EmailAddress": "a@example.com", "Notes": {"x": 1}}\n',
        ["row 1 (line 1), column Notes: a value must be a string, number, true, false or null"],
        id="nested-json-value",
    ),
    pytest.param(
        "l.csv",
        b"EmailAddress,JobTitle\n" + b"\n".join(b",CTO" for _ in range(25)) + b"\n",
        ["25 problem(s)", "row 20 (line 21)", "... and 5 more"],
        id="many-problems",
    ),
]


@pytest.mark.parametrize(("name", "content", "messages"), BAD_FILES)
def test_bad_files_are_refused_whole(
    bulk: Any, db: Database, tmp_path: Path, name: str, content: bytes, messages: list[str]
) -> None:
    email = seed(db, 1)[0]
    before = stored(db)
    path = tmp_path / name
    path.write_bytes(content.replace(b"a@example.com", email.encode()))  # a row that would change a lead

    result = bulk(path, "--search-by", "EmailAddress", "--report", tmp_path / "r.csv")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "nothing was sent" in result.stderr
    for message in messages:
        assert message in result.stderr
    assert stored(db) == before
    assert not (tmp_path / "r.csv").exists()


def test_usage_errors_exit_2(bulk: Any, admin: Credentials, tmp_path: Path, server: LiveServer) -> None:
    path = write_csv(tmp_path / "l.csv", ["EmailAddress"], [["a@example.com"]])
    no_keys = bulk(path, "--search-by", "EmailAddress", env={"LEADSTORE_ACCESS_KEY": ""})
    assert no_keys.exit_code == 2
    assert "keys" in no_keys.stderr
    assert bulk(path).exit_code == 2  # no --search-by
    assert bulk(tmp_path / "missing.csv", "--search-by", "EmailAddress").exit_code == 2
    not_unique = bulk(path, "--search-by", "FirstName")
    assert not_unique.exit_code == 2
    assert "FirstName is not a unique field" in not_unique.stderr
    unknown = bulk(path, "--search-by", "Nope")
    assert unknown.exit_code == 2
    assert "no lead field" in unknown.stderr
    bad_keys = bulk(path, "--search-by", "EmailAddress", env={"LEADSTORE_SECRET_KEY": "wrong-secret"})
    assert bad_keys.exit_code == 2
    assert "MXUnAuthorizedAccessException" in bad_keys.stderr
    assert "wrong-secret" not in bad_keys.stderr
    gone = bulk(path, "--search-by", "EmailAddress", "--retry-for", "0.5", env={"LEADSTORE_BASE_URL": _dead_url()})
    assert gone.exit_code == 2
    assert "could not be reached" in gone.stderr


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_rate_limit_is_honoured(bulk: Any, db: Database, tmp_path: Path) -> None:
    emails = seed(db, 60)
    with db.write() as conn:
        catalog_module.save_setting(conn, "rate_limit_calls", "3")
    time.sleep(0.5)  # running servers pick settings up within a second (0.1 s in tests)
    path = write_csv(tmp_path / "l.csv", ["EmailAddress", "JobTitle"], [[e, "Paced"] for e in emails])

    started = time.monotonic()
    result = bulk(path, "--search-by", "EmailAddress", "--batch-size", "12", "--report", tmp_path / "r.csv")

    # 1 metadata call + 5 bulk calls at 3 calls per 5 seconds: at least one wait for the window.
    assert time.monotonic() - started >= 4
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "60 succeeded, 0 failed, 0 unprocessed"
    assert [r["outcome"] for r in read_report(tmp_path / "r.csv")] == ["Successful"] * 60
    assert all(lead["JobTitle"] == "Paced" for lead in stored(db))


def test_calls_shrink_when_the_service_takes_fewer_leads(bulk: Any, db: Database, tmp_path: Path) -> None:
    emails = seed(db, 40)
    with db.write() as conn:
        catalog_module.save_setting(conn, "bulk_max_leads", "10")
    time.sleep(0.5)
    path = write_csv(tmp_path / "l.csv", ["EmailAddress", "JobTitle"], [[e, "Small"] for e in emails])

    result = bulk(path, "--search-by", "EmailAddress", "--report", tmp_path / "r.csv")

    assert result.exit_code == 0, (tmp_path / "r.csv").read_text()
    assert result.stdout.strip() == "40 succeeded, 0 failed, 0 unprocessed"
    assert [int(r["row"]) for r in read_report(tmp_path / "r.csv")] == list(range(1, 41))
    assert all(lead["JobTitle"] == "Small" for lead in stored(db))


class Flaky(httpx.BaseTransport):
    """Passes calls to the server, but loses the first answer to each bulk call (after the
    server applied it), answers 503 or 429 to some, and records every Idempotency-Key."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.sent: list[tuple[str, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = request.headers.get("idempotency-key")
        if key is None:
            return self.real.handle_request(request)
        body = request.read()
        attempt = sum(1 for k, _ in self.sent if k == key)
        self.sent.append((key, body))
        batch = len({k for k, _ in self.sent})
        if attempt == 0 and batch % 3 == 2:
            return httpx.Response(503, json={"Status": "Error", "ExceptionType": "MXServiceUnavailableException"})
        if attempt == 0 and batch % 3 == 0:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"Status": "Error"})
        response = self.real.handle_request(request)
        response.read()
        if attempt == 0:
            raise httpx.ReadError("connection reset while reading the answer", request=request)
        return response


def test_lost_answers_are_retried_with_the_same_key(
    server: LiveServer, admin: Credentials, db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emails = seed(db, 100)
    path = write_csv(tmp_path / "l.csv", ["EmailAddress", "Score"], [[e, str(n)] for n, e in enumerate(emails)])
    transport = Flaky()
    with Client(server.base_url, admin.access_key, admin.secret_key, transport=transport) as client:
        status = run_file(client, path, "EmailAddress", report=tmp_path / "r.csv", batch_size=20)

    assert status == 0
    assert capsys.readouterr().out.strip() == "100 succeeded, 0 failed, 0 unprocessed"
    keys: dict[str, set[bytes]] = {}
    for key, body in transport.sent:
        keys.setdefault(key, set()).add(body)
    assert len(keys) == 5  # one key per batch of 20
    assert all(len(bodies) == 1 for bodies in keys.values())  # a retry resends the same call
    assert all(sum(1 for k, _ in transport.sent if k == key) >= 2 for key in keys)
    assert [int(r["row"]) for r in read_report(tmp_path / "r.csv")] == list(range(1, 101))
    assert [lead["Score"] for lead in stored(db)] == list(range(100))


# A server in its own process, killed (SIGKILL) and started again on the same port.


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "leadstore.cli.main", *args]


def _serve(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEADSTORE_DATABASE_URL": database_url}
    process = subprocess.Popen(
        _command("serve", "--port", str(port)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("leadstore serve did not start")
        time.sleep(0.05)


@pytest.fixture
def subprocesses() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _report_rows(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def test_server_restarted_mid_run(
    database_url: str,
    admin: Credentials,
    db: Database,
    tmp_path: Path,
    subprocesses: list[subprocess.Popen[bytes]],
) -> None:
    emails = seed(db, 300)
    rows = [[email, f"Restart {n}"] for n, email in enumerate(emails)]
    rows.insert(150, ["nobody@example.com", "X"])
    path = write_csv(tmp_path / "l.csv", ["EmailAddress", "JobTitle"], rows)
    port = _free_port()
    subprocesses.append(_serve(database_url, port))
    report = tmp_path / "r.csv"
    env = {**os.environ, **keys_env(f"http://127.0.0.1:{port}", admin)}
    args = ("bulk-update", str(path), "--search-by", "EmailAddress", "--report", str(report), "--batch-size", "10")
    cli = subprocess.Popen(_command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    subprocesses.append(cli)

    deadline = time.monotonic() + 30
    while _report_rows(report) < 40:
        assert cli.poll() is None, "the run ended before the server was stopped"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    subprocesses[0].kill()
    subprocesses[0].wait(10)
    time.sleep(1.5)
    subprocesses.append(_serve(database_url, port))
    out, err = cli.communicate(timeout=90)

    assert cli.returncode == 1, err.decode()
    assert out.decode().strip() == "300 succeeded, 1 failed, 0 unprocessed"
    lines = read_report(report)
    assert [int(r["row"]) for r in lines] == list(range(1, 302))
    by_row = {int(r["row"]): r for r in lines}
    assert by_row[151]["outcome"] == "Failed"
    assert by_row[151]["identifier"] == "nobody@example.com"
    after = {lead["EmailAddress"]: lead["JobTitle"] for lead in stored(db)}
    for row, (email, title) in enumerate(rows, 1):
        if row != 151:
            assert by_row[row]["outcome"] == "Successful", by_row[row]
            assert after[email] == title


@pytest.mark.slow
@pytest.mark.timeout(600)  # 100,000 rows through a live server: ~1-3 minutes, with the machine's speed
def test_a_large_file_streams_within_flat_memory(database_url: str, admin: Credentials, db: Database, tmp_path: Path,
                                                subprocesses: list[subprocess.Popen[bytes]]) -> None:  # fmt: skip
    count = 100_000
    emails = seed(db, count)
    with db.write() as conn:
        catalog_module.save_setting(conn, "rate_limit_calls", "100000")
    path = write_csv(tmp_path / "l.csv", ["EmailAddress", "Score"], [[e, str(n % 97)] for n, e in enumerate(emails)])
    del emails
    port = _free_port()
    subprocesses.append(_serve(database_url, port))
    env = {**os.environ, **keys_env(f"http://127.0.0.1:{port}", admin)}
    code = (
        "import re, sys\n"
        "from leadstore.cli.main import app\n"
        "try:\n    app(sys.argv[1:])\n"
        "finally:\n    print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1], file=sys.stderr)\n"
    )
    args = ["bulk-update", str(path), "--search-by", "EmailAddress", "--report", str(tmp_path / "r.csv")]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, timeout=540)
    elapsed = time.monotonic() - started

    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == f"{count} succeeded, 0 failed, 0 unprocessed"
    assert _report_rows(tmp_path / "r.csv") == count
    peak_mib = int(done.stderr.decode().strip().splitlines()[-1]) / 1024  # VmHWM: this process's peak RSS
    print(f"\n{count} rows in {elapsed:.1f}s ({count / elapsed:,.0f} rows/s), peak memory {peak_mib:.0f} MiB")
    assert peak_mib < 160  # about 80 MiB of it is imports
