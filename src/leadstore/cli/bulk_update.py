"""``leadstore bulk-update`` (spec section 8): a file of leads, sent in calls of at most 25.

The file is read twice and never held whole: first to check every row (nothing is sent when
any row is bad), then to send. Calls go one at a time, paced by the rate-limit headers; a 429
waits for Retry-After; a network error or 5xx resends the same call with the same
Idempotency-Key, so a call the service applied but could not answer is not applied twice.
The report is written as calls complete, one line per input row, in file order.
"""

import csv
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn, TextIO, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column
from rich.text import Text

from leadstore.cli.lead_file import LeadFile, lead_key
from leadstore.client import (
    BulkResult,
    Client,
    FieldMetadata,
    InvalidInput,
    LeadstoreAPIError,
    Outcome,
    RateLimited,
    ServerError,
    ServiceUnreachable,
)

T = TypeVar("T")
MAX_BATCH = 25
SHOW_PROBLEMS = 20
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
_EARLIER = re.compile(r"LeadPropertiesList\[(\d+)\]")


class GaveUp(Exception):
    """The service could not be reached, or kept failing, for longer than allowed."""


class Stop(Exception):
    """The service refused the run as a whole (keys, base URL); nothing more can be sent."""


@dataclass(slots=True)
class Entry:
    row: int
    identifier: str
    fields: dict[str, str | None] | None  # None: decided without a call
    outcome: Outcome | None = None
    reason: str = ""
    request_id: str = ""  # the call that carried the row, by which it can be reverted


def _rate(task: Task) -> float | None:
    """Rows a second since the start: under a rate limit, calls come in bursts and pauses, so
    an average over the whole run predicts the end better than a recent window does."""
    elapsed = task.finished_time or task.elapsed
    return task.completed / elapsed if elapsed and task.completed else None


class RateColumn(ProgressColumn):
    def __init__(self) -> None:
        super().__init__(table_column=Column(min_width=13, no_wrap=True))

    def render(self, task: Task) -> Text:
        rate = _rate(task)
        return Text(f"{rate:,.0f} rows/s" if rate else "- rows/s", style="progress.data.speed")


class TimeLeftColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        rate = _rate(task)
        if task.total is None or not rate:
            return Text("-:--:-- left", style="progress.remaining")
        left = int(max(0.0, task.total - task.completed) / rate)
        return Text(f"{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d} left", style="progress.remaining")


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


class Sender:
    """Calls the service for the run: pacing, waiting and retrying."""

    def __init__(self, client: Client, console: Console, retry_for: float) -> None:
        self.client = client
        self.console = console
        self.retry_for = retry_for
        self.progress: Progress | None = None
        self.task = TaskID(0)
        self.description = ""
        self._paced_for: object = None

    def show(self, progress: Progress, description: str, total: int) -> None:
        self.progress, self.description = progress, description
        self.task = progress.add_task(description, total=total)

    def advance(self, rows: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, rows)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def wait(self, seconds: float, why: str) -> None:
        if self.progress is None:
            self.console.print(f"waiting {_seconds(seconds)}: {why}", style="yellow")
            time.sleep(seconds)
            return
        self.progress.update(self.task, description=f"[yellow]wait {_seconds(seconds)}: {why}")
        time.sleep(seconds)
        self.progress.update(self.task, description=self.description)

    def call(self, work: Callable[[], T]) -> T:
        """``work`` until it is answered; it must be safe to repeat (same Idempotency-Key)."""
        failing_since: float | None = None
        attempt = 0
        while True:
            limit = self.client.rate_limit
            if limit is not None and limit is not self._paced_for and limit.remaining <= 0:
                self._paced_for = limit
                self.wait(limit.reset_seconds, "rate limit")
            try:
                return work()
            except RateLimited as exc:
                self.wait(max(exc.retry_after, 0.1), "429 Retry-After")
            except (ServiceUnreachable, ServerError, InvalidInput) as exc:
                if isinstance(exc, InvalidInput) and exc.status_code != 408:
                    raise  # the call itself is wrong; a 408 (body too slow to arrive) is worth resending
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since >= self.retry_for:
                    raise GaveUp(str(exc)) from None
                delay = min(0.25 * 2**attempt, 5.0, max(0.1, failing_since + self.retry_for - now))
                attempt += 1
                self.wait(delay, "unreachable" if isinstance(exc, ServiceUnreachable) else f"HTTP {exc.status_code}")
            except LeadstoreAPIError as exc:  # refused keys, no such API, ...
                raise Stop(str(exc)) from None


class Run:
    def __init__(
        self, sender: Sender, search_key: str, push: bool, dry_run: bool, batch_size: int, report: TextIO | None
    ) -> None:
        self.sender = sender
        self.search_key = search_key
        self.push = push
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.report = csv.writer(report) if report is not None else None
        self.report_file = report
        if self.report is not None:
            self.report.writerow(["row", "identifier", "outcome", "reason", "request_id"])
        self.counts = dict.fromkeys(Outcome, 0)

    def send(self, entries: list[Entry]) -> None:
        """Decide every entry: one call for up to ``batch_size`` of them."""
        if len(entries) > self.batch_size:
            size = self.batch_size  # a part may shrink it further; the parts stay as cut here
            for start in range(0, len(entries), size):
                self.send(entries[start : start + size])
            return
        # One name for the call on every retry: its Idempotency-Key and its request id.
        key = uuid.uuid4().hex
        leads = [e.fields or {} for e in entries]
        try:
            result = self.sender.call(
                lambda: self.sender.client.bulk_update(
                    leads,
                    search_by=self.search_key,
                    push_non_existent_to_unprocessed=self.push or None,
                    dry_run=self.dry_run,
                    idempotency_key=key,
                    request_id=key,
                )
            )
        except InvalidInput as exc:
            # The call as a whole was refused: too many leads for this service, or too large a
            # body. Halve the calls from here on; one lead alone fails with the message.
            if len(entries) == 1:
                entries[0].outcome, entries[0].reason = Outcome.FAILED, exc.message
                return
            self.batch_size = max(1, len(entries) // 2)
            self.send(entries)
            return
        self._apply(entries, result)

    def _apply(self, entries: list[Entry], result: BulkResult) -> None:
        unclaimed = list(range(len(entries)))
        for outcome, item in result.outcomes():
            if item.index is not None and item.index in unclaimed:
                position = item.index
            else:  # a service without Index: the first row sent with this identifier
                position = next((i for i in unclaimed if entries[i].identifier == item.identifier_value), -1)
                if position < 0:
                    continue
            unclaimed.remove(position)
            reason = item.reason or ""
            if item.reason_code == "DUPLICATE_LEAD_IN_REQUEST" and (match := _EARLIER.search(reason)):
                earlier = int(match.group(1))
                if earlier < len(entries):
                    reason = f"The same lead is already at row {entries[earlier].row}"
            entries[position].outcome, entries[position].reason = outcome, reason
            entries[position].request_id = result.request_id or ""
        for i in unclaimed:
            entries[i].outcome = Outcome.FAILED
            entries[i].reason = "The service's answer did not mention this row"

    def record(self, entries: list[Entry]) -> None:
        for entry in entries:
            outcome = entry.outcome or Outcome.UNPROCESSED
            self.counts[outcome] += 1
            if self.report is not None:
                self.report.writerow([entry.row, entry.identifier, outcome.value, entry.reason, entry.request_id])
        if self.report_file is not None:
            self.report_file.flush()
        self.sender.advance(len(entries))

    def summary(self) -> str:
        c = self.counts
        return f"{c[Outcome.SUCCESSFUL]} succeeded, {c[Outcome.FAILED]} failed, {c[Outcome.UNPROCESSED]} unprocessed"


def _bad_usage(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _check(lead_file: LeadFile) -> tuple[int, dict[int, int]]:
    """Every row's problems (refusing the file if any), the number of rows, and the rows whose
    lead an earlier row already names (row -> earlier row)."""
    problems: list[str] = []
    count = 0
    first_row: dict[int, int] = {}
    repeats: dict[int, int] = {}
    for row in lead_file.rows():
        count += 1
        problems.extend(row.problems)
        if not row.problems:
            earlier = first_row.setdefault(lead_key(lead_file.search_key, row.identifier), row.number)
            if earlier != row.number:
                repeats[row.number] = earlier
    problems = lead_file.header_problems + problems
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:SHOW_PROBLEMS])
        more = f"\n  ... and {len(problems) - SHOW_PROBLEMS} more" if len(problems) > SHOW_PROBLEMS else ""
        _bad_usage(f"{lead_file.path}: {len(problems)} problem(s); nothing was sent:\n{shown}{more}")
    return count, repeats


def _search_key(fields: list[FieldMetadata], name: str) -> FieldMetadata:
    by_name = {f.schema_name.lower(): f for f in fields}
    unique = ", ".join(f.schema_name for f in fields if f.is_unique) or "EmailAddress"
    field_ = by_name.get(name.strip().lower())
    if field_ is None:
        _bad_usage(f"--search-by {name}: no lead field has this name; use a unique field: {unique}")
    if field_.is_unique is False:
        _bad_usage(f"--search-by {field_.schema_name} is not a unique field; use one of: {unique}")
    return field_


def _entries(lead_file: LeadFile, repeats: dict[int, int], batch_size: int) -> Iterator[list[Entry]]:
    """The rows in groups holding at most ``batch_size`` rows to send (plus repeated rows,
    which fail without a call, as the service fails a lead named twice in one call)."""
    group: list[Entry] = []
    to_send = 0
    for row in lead_file.rows():
        if row.problems:
            raise GaveUp(f"{lead_file.path} changed while it was being sent (row {row.number})")
        if row.number in repeats:
            reason = f"The same lead is already at row {repeats[row.number]}"
            group.append(Entry(row.number, row.identifier, None, Outcome.FAILED, reason))
            continue
        group.append(Entry(row.number, row.identifier, row.fields))
        to_send += 1
        if to_send == batch_size:
            yield group
            group, to_send = [], 0
    if group:
        yield group


def run_file(
    client: Client,
    path: Path,
    search_by: str,
    *,
    push: bool = False,
    dry_run: bool = False,
    report: Path | None = None,
    batch_size: int = MAX_BATCH,
    retry_for: float = 60.0,
    console: Console | None = None,
) -> int:
    """The whole command with a ready client; returns the exit status."""
    console = console or Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeLeftColumn(),
    )
    sender = Sender(client, console, retry_for)
    try:
        fields = sender.call(client.get_metadata)
    except (GaveUp, Stop) as exc:
        _bad_usage(f"{client.base_url}: {exc}")
    except LeadstoreAPIError as exc:
        _bad_usage(f"{client.base_url}: reading the lead fields failed: {exc}")
    lead_file = LeadFile(path, fields, _search_key(fields, search_by))
    total, repeats = _check(lead_file)
    out = _open_report(report)
    with Progress(*columns, console=console, speed_estimate_period=60) as progress:
        sender.show(progress, "Dry run" if dry_run else "Updating", total)
        run = Run(sender, lead_file.search_key.schema_name, push, dry_run, batch_size, out)
        status = _send_all(run, lead_file, repeats)
        if out is not None:
            out.close()
    typer.echo(run.summary())
    if dry_run:
        typer.echo("dry run: the service checked every row and wrote nothing", err=True)
    if report is not None:
        typer.echo(f"report: {report}", err=True)
    return status


def _send_all(run: Run, lead_file: LeadFile, repeats: dict[int, int]) -> int:
    groups = _entries(lead_file, repeats, run.batch_size)
    in_flight: list[Entry] = []
    try:
        for group in groups:
            in_flight = group
            run.send([e for e in group if e.outcome is None])
            run.record(group)
            in_flight = []
    except (GaveUp, Stop) as exc:
        uncertain = isinstance(exc, GaveUp)
        for e in in_flight:
            if e.outcome is None:
                e.outcome = Outcome.UNPROCESSED
                e.reason = (
                    "Not known: the service stopped answering while this row was sent; it may have been applied"
                    if uncertain
                    else f"Not sent: {exc}"
                )
        run.record(in_flight)
        for rest in _rest(groups, f"Not sent: {exc}"):
            run.record(rest)
        run.sender.stop()
        typer.echo(f"error: {exc}", err=True)
        return 2
    failed = run.counts[Outcome.FAILED] + run.counts[Outcome.UNPROCESSED]
    return 1 if failed else 0


def _rest(groups: Iterator[list[Entry]], reason: str) -> Iterator[list[Entry]]:
    try:
        for group in groups:
            for e in group:
                if e.outcome is None:
                    e.outcome, e.reason = Outcome.UNPROCESSED, reason
            yield group
    except GaveUp:
        return


def _open_report(report: Path | None) -> TextIO | None:
    if report is None:
        return None
    try:
        return report.open("w", newline="", encoding="utf-8")
    except OSError as exc:
        _bad_usage(f"--report {report}: cannot write it ({exc.strerror})")


# The options bulk-update and bulk-revert share: where the service is, the keys, and patience.
BaseUrlOption = Annotated[
    str, typer.Option("--base-url", envvar="LEADSTORE_BASE_URL", help="The API host (leadstore or LeadSquared).")
]
AccessKeyOption = Annotated[
    str | None, typer.Option("--access-key", envvar="LEADSTORE_ACCESS_KEY", help="Your access key.")
]
SecretKeyOption = Annotated[
    str | None,
    typer.Option("--secret-key", envvar="LEADSTORE_SECRET_KEY", help="Your secret key (prefer the variable)."),
]
RetryForOption = Annotated[
    float, typer.Option("--retry-for", min=0, help="Seconds to keep retrying an unreachable or failing service.")
]


def client_of(base_url: str, access_key: str | None, secret_key: str | None) -> Client:
    """The client for the given keys, or a usage error saying where keys come from."""
    if not access_key or not secret_key:
        _bad_usage("give the keys with --access-key/--secret-key or LEADSTORE_ACCESS_KEY/LEADSTORE_SECRET_KEY")
    return Client(base_url, access_key, secret_key)


def bulk_update(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or JSON Lines (.jsonl) file of leads.", exists=True, dir_okay=False, readable=True),
    ],
    search_by: Annotated[
        str, typer.Option("--search-by", help="The unique field that finds each lead, e.g. EmailAddress.")
    ],
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
    access_key: AccessKeyOption = None,
    secret_key: SecretKeyOption = None,
    push_non_existent_to_unprocessed: Annotated[
        bool,
        typer.Option(
            "--push-non-existent-to-unprocessed",
            help="Report leads that do not exist (or that you may not update) as UnProcessed, not Failed.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Let the service check every row and report; write nothing.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write a CSV: row, identifier, outcome, reason, request_id; one line per input row "
            "(leadstore bulk-revert takes it to undo the run).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=MAX_BATCH, help="Leads per call.")] = MAX_BATCH,
    retry_for: RetryForOption = 60.0,
) -> None:
    """Update the leads in FILE, found by the --search-by field, in calls of at most 25.

    FILE is CSV (a header row of schema names such as EmailAddress,JobTitle,mx_City, then one
    lead a row; empty cells are left out) or JSON Lines (one object of schema name to value a
    line). The whole file is checked first: unknown columns, bad encoding, malformed lines and
    rows without the search key are listed by row and column, and nothing is sent.

    Then it sends the rows, pacing itself under the rate limit, waiting when told to (429), and
    resending a call that failed in transit with the same Idempotency-Key, so nothing is applied
    twice. It prints "N succeeded, N failed, N unprocessed"; --report writes what happened to
    every row. Exit status: 0 all rows succeeded, 1 some failed or were unprocessed, 2 bad usage
    or a bad file (nothing sent), or the service could not be reached.

    Keep keys out of your shell history: set LEADSTORE_ACCESS_KEY and LEADSTORE_SECRET_KEY."""
    with client_of(base_url, access_key, secret_key) as client:
        status = run_file(
            client,
            file,
            search_by,
            push=push_non_existent_to_unprocessed,
            dry_run=dry_run,
            report=report,
            batch_size=batch_size,
            retry_for=retry_for,
        )
    raise typer.Exit(status)


# Typer keeps a docstring's line breaks; join each paragraph so the help reflows to the terminal.
bulk_update.__doc__ = "\n\n".join(" ".join(p.split()) for p in (bulk_update.__doc__ or "").split("\n\n"))
