"""The database's own speed at the bulk update's work, with no HTTP and no leadstore code:
per call, look 25 leads up by email, update 4 fields of each, insert one history row per
changed field, in one transaction, through the bare driver (sqlite3 or psycopg)."""

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
    if parsed.drivername.startswith("sqlite"):
        conn = sqlite3.connect(parsed.database or "", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        placeholder, begin, lock = "?", "BEGIN IMMEDIATE", ""
    else:
        conn = psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
        )  # type: ignore[assignment]
        placeholder, begin, lock = "%s", "BEGIN", " FOR UPDATE"
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
            f"SELECT auto_id, {', '.join(FIELDS)} FROM leads WHERE email_address IN ({marks}) ORDER BY auto_id{lock}",
            emails,
        )
        rows = cursor.fetchall()
        sets = ", ".join(f"{f} = {placeholder}" for f in FIELDS)
        cursor.executemany(
            f"UPDATE leads SET {sets}, modified_on = {placeholder}, modified_by = {placeholder} "
            f"WHERE auto_id = {placeholder}",
            [(f"{tag}a", f"{tag}b", f"{tag}c", f"{tag}d", now, user_id, row[0]) for row in rows],
        )
        request_id = uuid.uuid4().hex
        history = [
            (row[0], request_id, SCHEMA[i], row[i + 1], f"{tag}{'abcd'[i]}", user_id, now)
            for row in rows
            for i in range(4)
        ]
        cursor.executemany(
            "INSERT INTO lead_changes (lead_id, request_id, field, old_value, new_value, changed_by, changed_at) "
            f"VALUES ({', '.join([placeholder] * 7)})",
            history,
        )
        cursor.execute("COMMIT")
        calls += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return calls * 25 / elapsed
