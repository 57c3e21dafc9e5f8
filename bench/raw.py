"""The database's own speed at the bulk update's work, with no HTTP and no leadstore code:
per call, look 25 leads up by email, update 4 fields of each, insert one history row per
changed field, in one transaction, through the bare driver (sqlite3 or psycopg). As the
service does, the history rows get their ids first and chain on from each lead's newest
change, which the lead row then points at."""

import random
import sqlite3
import time
import uuid
from datetime import UTC, datetime

import psycopg
from sqlalchemy import make_url

from bench.dataset import email

FIELDS = ("first_name", "last_name", "job_title", "mx_city")
SCHEMA = ("FirstName", "LastName", "JobTitle", "mx_City")


def run(url: str, leads: int, seconds: float, user_id: str) -> float:
    """Leads per second from one client over ``seconds``."""
    parsed = make_url(url)
    postgresql = not parsed.drivername.startswith("sqlite")
    if not postgresql:
        conn = sqlite3.connect(parsed.database or "", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        placeholder, begin, lock, ids_per_lead = "?", "BEGIN IMMEDIATE", "", ""
    else:
        conn = psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
        )  # type: ignore[assignment]
        placeholder, begin, lock = "%s", "BEGIN", " FOR UPDATE"
        # The service takes its ids from the sequence inside its one write statement; here they
        # come with the lookup (auto_id in the subquery makes it run once per row), from the
        # sequence named once.
        sequence = conn.execute("SELECT pg_get_serial_sequence('lead_changes', 'id')").fetchone()[0]  # type: ignore[index]
        ids_per_lead = f", ARRAY(SELECT nextval('{sequence}'::regclass) FROM generate_series(1, 4 + 0 * auto_id))"
    rng = random.Random(1)
    # Values new to this run: the run after the service's would otherwise write the first run's
    # values again where the service left those leads alone, and PostgreSQL skips the index
    # entries of an UPDATE that changes no indexed value (a HOT update).
    run_tag = uuid.uuid4().hex[:8]
    calls, counter = 0, 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        base = rng.randrange(leads // 25) * 25
        emails = [email(base + k) for k in range(25)]
        counter += 1
        tag = f"r{run_tag}_{counter}"
        now = datetime.now(UTC).replace(tzinfo=None)
        cursor = conn.cursor()
        cursor.execute(begin)
        marks = ", ".join([placeholder] * 25)
        cursor.execute(
            f"SELECT auto_id, last_change_id, {', '.join(FIELDS)}{ids_per_lead} FROM leads "
            f"WHERE email_address IN ({marks}) ORDER BY auto_id{lock}",
            emails,
        )
        rows = cursor.fetchall()
        if postgresql:  # ids from the sequence, 4 per lead, in the same round trip
            ids = iter([i for row in rows for i in row[-1]])
            rows = [row[:-1] for row in rows]
        else:
            largest = cursor.execute("SELECT max(id) FROM lead_changes").fetchone()[0] or 0
            ids = iter(range(largest + 1, largest + 1 + 4 * len(rows)))
        request_id = uuid.uuid4().hex
        updates, history = [], []
        for auto_id, previous, *old in rows:
            for i in range(4):
                change_id = next(ids)
                new = f"{tag}{'abcd'[i]}"
                history.append((change_id, previous, auto_id, SCHEMA[i], old[i], new, request_id, user_id, now))
                previous = change_id
            updates.append((f"{tag}a", f"{tag}b", f"{tag}c", f"{tag}d", now, user_id, previous, auto_id))
        sets = ", ".join(f"{f} = {placeholder}" for f in FIELDS)
        cursor.executemany(
            f"UPDATE leads SET {sets}, modified_on = {placeholder}, modified_by = {placeholder}, "
            f"last_change_id = {placeholder} WHERE auto_id = {placeholder}",
            updates,
        )
        cursor.executemany(
            "INSERT INTO lead_changes (id, previous_id, lead_id, field, old_value, new_value, request_id, changed_by, "
            f"changed_at) VALUES ({', '.join([placeholder] * 9)})",
            history,
        )
        cursor.execute("COMMIT")
        calls += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return calls * 25 / elapsed
