"""Races: many clients update overlapping leads and contested unique values at once, through the
live server, for a few seconds of random traffic. Afterwards:

- no call failed as a server error (the only 500s are the single-lead endpoints' documented
  ``MXDuplicateEntryException`` for a taken unique value);
- unique values are unique in the table;
- no update was lost: for each lead and text field, the history is one unbroken chain
  (each row's old value is the previous row's new value) from the value at creation to the value
  stored now, holding every acknowledged change exactly once;
- the history rows are exactly the acknowledged changes: a row for every field an answered call
  changed on a lead it reported successful, and none for anything else.
"""

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from leadstore.db import Database
from leadstore.models import LeadChange
from tests.helpers import LM, Api, LiveServer, add_field

pytestmark = pytest.mark.slow

CLIENTS = 8
SECONDS = 3.0
LEADS = 30
CODES = 12  # fewer codes than leads: the unique field is contested all the time
NEW_EMAILS = 5
TEXT_FIELDS = ("FirstName", "Company", "JobTitle")


@dataclass
class Ledger:
    """What the clients were told: per (lead email, request id) the fields written."""

    writes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    failed: set[tuple[str, str]] = field(default_factory=set)
    created: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(base_url: str, api: Api, ids: dict[str, str], ledger: Ledger, number: int, until: float) -> None:
    rng = random.Random(number)
    params = {"accessKey": api.user.access_key, "secretKey": api.user.secret_key}
    emails = list(ids)
    with httpx.Client(base_url=base_url + LM, params=params, timeout=30) as http:
        n = 0
        while time.monotonic() < until and n < 500:
            n += 1
            request_id = f"race-{number}-{n}"
            headers = {"X-Request-Id": request_id}
            kind = rng.random()
            if kind < 0.6:
                chosen = rng.sample(emails, rng.randint(1, 6))
                if rng.random() < 0.5:  # every lead the same text fields: PostgreSQL's one-statement write
                    names = rng.sample(TEXT_FIELDS, rng.randint(1, len(TEXT_FIELDS)))
                    leads = {email: {name: f"{request_id}:{name}" for name in names} for email in chosen}
                else:
                    leads = {email: _values(rng, request_id) for email in chosen}
                body = {
                    "SearchByKey": "EmailAddress",
                    "LeadPropertiesList": [
                        {"Fields": [{"Attribute": "EmailAddress", "Value": e}, *_pairs(v)]} for e, v in leads.items()
                    ],
                }
                response = http.post("/Lead/Bulk/UpdateV2", json=body, headers=headers)
                _record_bulk(ledger, response, request_id, list(leads.items()))
            elif kind < 0.9:
                email = rng.choice(emails)
                values = _values(rng, request_id)
                response = http.post(
                    "/Lead.Update", params={"leadId": ids[email]}, json=_pairs(values), headers=headers
                )
                _record_single(ledger, response, (email, request_id), values)
            else:
                email = f"new{rng.randrange(NEW_EMAILS)}@example.com"
                body = [{"Attribute": "EmailAddress", "Value": email}, {"Attribute": "FirstName", "Value": request_id}]
                response = http.post("/Lead.Create", json=body, headers=headers)
                created = {"EmailAddress": email, "FirstName": request_id, "OwnerId": api.user.user_id}
                _record_single(ledger, response, (email, request_id), created)
                if response.status_code == 200:
                    with ledger.lock:
                        ledger.created[email] += 1


def _values(rng: random.Random, request_id: str) -> dict[str, str]:
    names = rng.sample(TEXT_FIELDS, rng.randint(1, len(TEXT_FIELDS)))
    values = {name: f"{request_id}:{name}" for name in names}
    if rng.random() < 0.5:
        values["mx_Code"] = f"K{rng.randrange(CODES)}"
    return values


def _pairs(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Attribute": k, "Value": v} for k, v in values.items()]


def _record_bulk(ledger: Ledger, response: httpx.Response, request_id: str, sent: list[Any]) -> None:
    with ledger.lock:
        ledger.calls += 1
        if response.status_code != 200:
            ledger.unexpected.append(f"bulk {response.status_code} {response.text[:200]}")
            return
        details = response.json()["Details"]
        for item in details.get("SuccessfulLeads", []):
            email, values = sent[item["Index"]]
            ledger.writes[(email, request_id)] = values
        for item in details.get("FailedLeads", []):
            if item["ReasonCode"] != "DUPLICATE_VALUE":
                ledger.unexpected.append(f"bulk lead failed: {item}")
            ledger.failed.add((sent[item["Index"]][0], request_id))


def _record_single(ledger: Ledger, response: httpx.Response, key: tuple[str, str], values: dict[str, str]) -> None:
    with ledger.lock:
        ledger.calls += 1
        if response.status_code == 200:
            ledger.writes[key] = values
            return
        ledger.failed.add(key)
        body = response.json()
        if response.status_code != 500 or body.get("ExceptionType") != "MXDuplicateEntryException":
            ledger.unexpected.append(f"{response.status_code} {response.text[:200]}")


def test_concurrent_clients_lose_nothing_and_break_no_rule(api: Api, db: Database, server: LiveServer) -> None:
    add_field(db, "mx_Code", "Text", unique=True)
    ids = {}
    for i in range(LEADS):
        email = f"lead{i}@example.com"
        ids[email] = api.create_lead(EmailAddress=email, FirstName=f"first{i}", Company=f"co{i}")
    # The running server picks the new field up within a second.
    deadline = time.monotonic() + 5
    while api.get("/LeadsMetaData.Get", params={"schemaName": "mx_Code"}).json() == []:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    ledger = Ledger()
    until = time.monotonic() + SECONDS
    threads = [
        threading.Thread(target=_client, args=(server.base_url, api, ids, ledger, n, until)) for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not ledger.unexpected, ledger.unexpected[:5]
    assert ledger.calls > 50, ledger.calls
    assert ledger.failed, "the unique field was never contested"

    _check_unique(db)
    for email, count in ledger.created.items():
        assert count == 1, f"{email} was created {count} times"
    _check_history(db, ledger)


def _check_unique(db: Database) -> None:
    with db.read() as conn:
        for column in ("email_address", "phone", "mobile", "mx_code", "prospect_id"):
            duplicates = conn.execute(
                text(
                    f"SELECT {column}, COUNT(*) FROM leads WHERE {column} IS NOT NULL "
                    f"GROUP BY {column} HAVING COUNT(*) > 1"
                )
            ).all()
            assert not duplicates, (column, duplicates)


def _check_history(db: Database, ledger: Ledger) -> None:
    columns = {"FirstName": "first_name", "Company": "company", "JobTitle": "job_title", "mx_Code": "mx_code"}
    with db.read() as conn:
        leads = [dict(row) for row in conn.execute(text("SELECT * FROM leads")).mappings()]
        by_id = {row["auto_id"]: row["email_address"] for row in leads}
        stored = {row["email_address"]: row for row in leads}
        history = conn.execute(select(LeadChange.__table__)).mappings().all()

    race_rows: dict[tuple[str, str], dict[str, tuple[str | None, str | None]]] = {}
    chains: dict[tuple[str, str], list[tuple[str | None, str | None]]] = {}
    for row in history:
        email = by_id[row["lead_id"]]
        chains.setdefault((email, row["field"]), []).append((row["old_value"], row["new_value"]))
        if row["request_id"].startswith("race-"):
            race_rows.setdefault((email, row["request_id"]), {})[row["field"]] = (row["old_value"], row["new_value"])

    # Exactly the acknowledged changes, no more: every race history row belongs to a success...
    assert set(race_rows) <= set(ledger.writes), set(race_rows) - set(ledger.writes)
    assert not set(race_rows) & ledger.failed
    for key, values in ledger.writes.items():
        rows = race_rows.get(key, {})
        assert set(rows) <= set(values), (key, rows, values)
        for name, value in values.items():
            if name in TEXT_FIELDS:  # unique tokens: always a change, so always a row
                assert rows.get(name, (None, None))[1] == value, (key, name, rows)
            elif name in rows:
                assert rows[name][1] == value, (key, name, rows)

    # ...and no lost update: each text field's rows form one chain ending at the stored value.
    for (email, name), chain in chains.items():
        if name not in TEXT_FIELDS:
            continue
        following = {}
        for old, new in chain:
            assert old not in following, f"{email}.{name}: two changes both started from {old!r} (a lost update)"
            following[old] = new
        value, steps = None, 0
        while value in following:
            value, steps = following[value], steps + 1
        assert steps == len(chain), f"{email}.{name}: the history is not one chain"
        assert value == stored[email][columns[name]], (email, name, value, stored[email][columns[name]])
    # The chain each lead keeps, from its newest change back, holds every change of the lead
    # once, each field's new value the old value of its next change.
    by_change = {row["id"]: row for row in history}
    for lead in leads:
        walked, change_id = [], lead["last_change_id"]
        while change_id is not None and len(walked) <= len(history):
            walked.append(by_change[change_id])
            change_id = walked[-1]["previous_id"]
        assert sorted(c["id"] for c in walked) == sorted(r["id"] for r in history if r["lead_id"] == lead["auto_id"])
        newest_value: dict[str, str | None] = {}
        for change in walked:
            if change["field"] in newest_value:
                assert change["new_value"] == newest_value[change["field"]], (lead["email_address"], change)
            newest_value[change["field"]] = change["old_value"]
    for email, row in stored.items():
        codes = [new for old, new in chains.get((email, "mx_Code"), [])]
        assert row["mx_code"] is None or row["mx_code"] in codes, (email, row["mx_code"])
