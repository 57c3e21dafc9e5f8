"""Crash safety: a server killed with SIGKILL while bulk updates stream in keeps every update it
acknowledged, and no lead holds part of a call's fields.

Each writer thread owns 25 leads and sends one call at a time; call ``k`` sets all of
``TAGGED`` on all 25 leads to its own tag. So after a crash every lead must hold one tag in
every tagged field (never a mix), and that tag must be the thread's last acknowledged call or
the call that was in flight when the server died (never an older one, never a lost one).
"""

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from leadstore.catalog import save_setting
from leadstore.db import Database
from leadstore.models import LeadChange
from leadstore.users.service import Credentials
from tests.helpers import LM, make_user
from tests.reliability.support import serving

pytestmark = pytest.mark.slow

TAGGED = ("FirstName", "LastName", "Company", "JobTitle", "Source", "SourceMedium", "SourceCampaign")
COLUMNS = ("first_name", "last_name", "company", "job_title", "source", "source_medium", "source_campaign")
WRITERS = 4
LEADS_PER_WRITER = 25
ROUNDS = 3


@dataclass
class Writer:
    """One client thread: its leads, its acknowledged calls and the call left in flight."""

    number: int
    emails: list[str]
    acknowledged: list[str] = field(default_factory=list)
    in_flight: str | None = None
    refused: list[tuple[str, int, str]] = field(default_factory=list)
    calls: int = 0

    def run(self, base_url: str, user: Credentials, stop: threading.Event, round_: int) -> None:
        params = {"accessKey": user.access_key, "secretKey": user.secret_key}
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while not stop.is_set():
                self.calls += 1
                tag = f"r{round_}w{self.number}c{self.calls}"
                body = {
                    "SearchByKey": "EmailAddress",
                    "LeadPropertiesList": [
                        {
                            "Fields": [
                                {"Attribute": "EmailAddress", "Value": email},
                                *({"Attribute": name, "Value": tag} for name in TAGGED),
                            ]
                        }
                        for email in self.emails
                    ],
                }
                self.in_flight = tag
                try:
                    response = http.post(f"{LM}/Lead/Bulk/UpdateV2", params=params, json=body)
                except httpx.TransportError:
                    return  # the server died with this call in flight
                self.in_flight = None
                if response.status_code != 200 or response.json()["Status"]["SuccessCount"] != len(self.emails):
                    self.refused.append((tag, response.status_code, response.text[:300]))
                    return
                self.acknowledged.append(tag)


def _stored(db: Database) -> dict[str, tuple[str | None, ...]]:
    with db.read() as conn:
        rows = conn.execute(text(f"SELECT email_address, {', '.join(COLUMNS)} FROM leads")).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def _history_ends(db: Database) -> dict[tuple[str, str], set[str | None]]:
    """Per (email, field): the new values of the history rows no later row replaced."""
    with db.read() as conn:
        emails = dict(conn.execute(text("SELECT auto_id, email_address FROM leads")).all())
        rows = conn.execute(select(LeadChange.lead_id, LeadChange.field, LeadChange.old_value, LeadChange.new_value))
        chains: dict[tuple[str, str], list[tuple[str | None, str | None]]] = {}
        for lead_id, name, old, new in rows:
            chains.setdefault((emails[lead_id], name), []).append((old, new))
    # Tags are unique, so a chain's end is the one new value that no row replaced.
    ends = {key: {new for _, new in chain} - {old for old, _ in chain} for key, chain in chains.items()}
    return ends


def _reconcile(db: Database, writers: list[Writer], previous: dict[str, str]) -> dict[str, str]:
    stored = _stored(db)
    history = _history_ends(db)
    now: dict[str, str] = {}
    for writer in writers:
        assert not writer.refused, writer.refused
        last = writer.acknowledged[-1] if writer.acknowledged else None
        allowed = {tag for tag in (last, writer.in_flight) if tag is not None}
        if last is None:
            allowed |= {previous[email] for email in writer.emails}
        for email in writer.emails:
            values = set(stored[email])
            assert len(values) == 1, f"{email} holds parts of several calls: {stored[email]}"
            (tag,) = values
            assert tag in allowed, f"{email} holds {tag}; acknowledged {last}, in flight {writer.in_flight}"
            now[email] = tag
            for name in TAGGED:
                assert history[(email, name)] == {tag}, (email, name, history[(email, name)], tag)
    return now


def test_sigkill_under_bulk_load_loses_no_acknowledged_update(database_url: str, db: Database, tmp_path: Path) -> None:
    admin = make_user(db, "Administrator", email="admin@example.com")
    with db.write() as conn:
        save_setting(conn, "rate_limit_calls", "1000000")
    emails = [[f"w{w}l{i}@example.com" for i in range(LEADS_PER_WRITER)] for w in range(WRITERS)]
    log = tmp_path / "server.log"
    params = {"accessKey": admin.access_key, "secretKey": admin.secret_key}
    with serving(database_url, log) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        for email in (e for group in emails for e in group):
            body = [{"Attribute": "EmailAddress", "Value": email}, *({"Attribute": n, "Value": "r0"} for n in TAGGED)]
            assert http.post(f"{LM}/Lead.Create", params=params, json=body).status_code == 200
    tags = {email: "r0" for group in emails for email in group}

    acknowledged = 0
    for round_ in range(1, ROUNDS + 1):
        writers = [Writer(w, emails[w]) for w in range(WRITERS)]
        stop = threading.Event()
        with serving(database_url, log) as server:
            threads = [
                threading.Thread(target=w.run, args=(server.base_url, admin, stop, round_), daemon=True)
                for w in writers
            ]
            for thread in threads:
                thread.start()
            # Kill at a moment that varies from round to round, once calls are flowing.
            deadline = time.monotonic() + 20
            while min(len(w.acknowledged) for w in writers) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05 * round_)
            server.kill()
        stop.set()
        for thread in threads:
            thread.join(30)
        assert any(w.acknowledged for w in writers), "no call was acknowledged before the kill"
        assert any(w.in_flight for w in writers), "the kill came after the stream, not in it"
        acknowledged += sum(len(w.acknowledged) for w in writers)
        tags = _reconcile(db, writers, tags)
        print(
            f"round {round_}: acknowledged {[len(w.acknowledged) for w in writers]}, "
            f"in flight {[w.in_flight for w in writers]}"
        )

    # The restarted server serves the survivors, and what it reads back is what was stored.
    with serving(database_url, log) as server, httpx.Client(base_url=server.base_url, timeout=30) as http:
        for group in emails:
            response = http.get(f"{LM}/Leads.GetByEmailaddress", params={**params, "emailaddress": group[0]})
            assert response.status_code == 200, response.text
            (lead,) = response.json()
            assert {lead[name] for name in TAGGED} == {tags[group[0]]}
    assert acknowledged >= ROUNDS * WRITERS
