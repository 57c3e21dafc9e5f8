"""``leadstore history``: which calls changed leads, who made them and when (spec 9)."""

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from leadstore.cli.common import JsonOption, database, fail
from leadstore.fields.validation import format_datetime
from leadstore.leads import repository as lead_repo
from leadstore.users import repository as user_repo

history_app = typer.Typer(help="What changed leads: calls, by whom, when.", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
MAX_CALLS = 1000


def since_when(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h`` or ``2d`` as a span of time."""
    match = _DURATION.match(text.lower())
    if match is None:
        fail(f"--since {text!r}: give a number and a unit: s, m, h or d (e.g. 1h or 30m)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@history_app.command("calls")
def calls(
    since: Annotated[str, typer.Option(help="How far back: 90s, 15m, 1h, 2d.")] = "1h",
    user: Annotated[str | None, typer.Option(help="Only the calls of the user with this email address.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List recent calls that changed leads, newest first: request id (for bulk-revert and
    Lead/Bulk/Revert), user, time (UTC) and leads changed. At most 1,000."""
    start = datetime.now(UTC).replace(tzinfo=None) - since_when(since)
    with database() as db, db.read() as conn:
        user_id = None
        if user is not None:
            row = user_repo.get_by_email(conn, user.strip().lower())
            if row is None:
                fail(f"no user has the email address {user!r}")
            user_id = str(row["id"])
        emails = {str(u["id"]): str(u["email"]) for u in user_repo.list_users(conn)}
        rows = lead_repo.recent_calls(conn, start, user_id, MAX_CALLS)
    found = [
        {
            "RequestId": r["request_id"],
            "User": emails.get(r["user_id"], r["user_id"]),
            "At": format_datetime(r["at"]),
            "Leads": r["lead_count"],
        }
        for r in rows
    ]
    if as_json:
        typer.echo(json.dumps({"Calls": found}))
        return
    if not found:
        typer.echo(f"no call changed leads in the last {since}")
        return
    for call in found:
        typer.echo(f"{call['At']}  {call['RequestId']:<36}  {call['User']:<30}  {call['Leads']:>3} leads")
