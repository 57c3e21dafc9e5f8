"""``leadstore bulk-revert REPORT``: undo a ``bulk-update`` run from its report (spec 9).

Each call of the run is named in the report's ``request_id`` column; they are reverted newest
first (the tool sends a run's calls one after another, so the report's order is the order they
were committed), each retried with the same Idempotency-Key as bulk-update retries its calls.
"""

import csv
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leadstore.cli.bulk_update import (
    DEFAULT_BASE_URL,
    AccessKeyOption,
    BaseUrlOption,
    GaveUp,
    RetryForOption,
    SecretKeyOption,
    Sender,
    Stop,
    _bad_usage,
    _open_report,
    client_of,
)
from leadstore.client import BulkResult, Client, InvalidInput, Outcome


def calls_of(report: Path) -> list[str]:
    """The request ids of the calls that changed rows, in the order of the report."""
    try:
        with report.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        _bad_usage(f"{report}: cannot read it as a bulk-update report ({exc})")
    if rows and "request_id" not in rows[0]:
        _bad_usage(f"{report}: has no request_id column; write it with leadstore bulk-update --report")
    ids = [r["request_id"] for r in rows if r.get("outcome") == Outcome.SUCCESSFUL.value and r.get("request_id")]
    return list(dict.fromkeys(ids))


def revert_run(
    client: Client, report: Path, *, dry_run: bool = False, out: Path | None = None, retry_for: float = 60.0
) -> int:
    """The whole command with a ready client; returns the exit status."""
    console = Console(stderr=True)
    calls = list(reversed(calls_of(report)))
    counts = dict.fromkeys(Outcome, 0)
    sender = Sender(client, console, retry_for)
    sink = _open_report(out)
    writer = csv.writer(sink) if sink is not None else None
    if writer is not None:
        writer.writerow(["request_id", "index", "prospect_id", "outcome", "reason", "reverted", "kept"])
    status = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        sender.show(progress, "Dry run" if dry_run else "Reverting", len(calls))
        for request_id in calls:
            try:
                result = _revert(sender, request_id, dry_run)
            except (GaveUp, Stop) as exc:
                sender.stop()
                typer.echo(f"error: {exc}", err=True)
                status = 2
                break
            if result is not None:
                for outcome, item in result.outcomes():
                    counts[outcome] += 1
                    if writer is not None:
                        kept = ";".join(f"{k.attribute}={k.changed_by}" for k in item.kept or [])
                        reverted = ";".join(item.reverted or [])
                        writer.writerow(
                            [
                                request_id,
                                item.index,
                                item.identifier_value,
                                outcome.value,
                                item.reason or "",
                                reverted,
                                kept,
                            ]
                        )
            sender.advance(1)
    if sink is not None:
        sink.close()
    succeeded, failed, unprocessed = (counts[o] for o in (Outcome.SUCCESSFUL, Outcome.FAILED, Outcome.UNPROCESSED))
    typer.echo(f"{succeeded} succeeded, {failed} failed, {unprocessed} unprocessed")
    if dry_run:
        typer.echo("dry run: the service checked every lead and wrote nothing", err=True)
    if status:
        return status
    return 1 if failed or unprocessed else 0


def _revert(sender: Sender, request_id: str, dry_run: bool) -> BulkResult | None:
    """One call reverted; None when it changed nothing that can be undone (every lead it touched
    already held its values, say)."""
    key = uuid.uuid4().hex
    try:
        return sender.call(
            lambda: sender.client.revert(request_id, dry_run=dry_run, idempotency_key=key, own_request_id=key)
        )
    except InvalidInput:
        return None


def bulk_revert(
    report: Annotated[
        Path,
        typer.Argument(help="The report bulk-update wrote with --report.", exists=True, dir_okay=False, readable=True),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Let the service check every lead and report; write nothing.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write a CSV: request_id, index, prospect_id, outcome, reason, reverted, kept; one line per lead.",
        ),
    ] = None,
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
    access_key: AccessKeyOption = None,
    secret_key: SecretKeyOption = None,
    retry_for: RetryForOption = 60.0,
) -> None:
    """Undo a bulk-update run: revert every call its REPORT names, newest first.

    Each field still holding the value the run wrote goes back to the value before it; a field
    changed since is kept. It prints "N succeeded, N failed, N unprocessed", counting leads.
    Exit status: 0 every lead reverted, 1 some failed, 2 bad usage or the service could not be
    reached."""
    with client_of(base_url, access_key, secret_key) as client:
        status = revert_run(client, report, dry_run=dry_run, out=out, retry_for=retry_for)
    raise typer.Exit(status)


bulk_revert.__doc__ = "\n\n".join(" ".join(p.split()) for p in (bulk_revert.__doc__ or "").split("\n\n"))
