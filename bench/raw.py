"""The database's own speed at the bulk update's work, with no HTTP and no leadstore code:
per call, look 25 leads up by email, update 4 fields of each, insert one history row per
changed field, in one transaction, through the bare driver (sqlite3 or psycopg). As the
service does, the history rows chain on from each lead's newest change, which the lead row
then points at.

Each database does the call the way the service does: SQLite as a lookup, an UPDATE per lead
and an INSERT per history row in one transaction; PostgreSQL as one statement that is its own
transaction (the service's everyday call, ``update_in_one_statement``)."""

import random
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import make_url

from bench.dataset import email

FIELDS = ("first_name", "last_name", "job_title", "mx_city")
SCHEMA = ("FirstName", "LastName", "JobTitle", "mx_City")
HISTORY = "id, previous_id, lead_id, field, old_value, new_value, request_id, changed_by, changed_at"


def run(url: str, leads: int, seconds: float, user_id: str) -> float:
    """Leads per second from one client over ``seconds``."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        conn: Any = sqlite3.connect(parsed.database or "", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        call = _sqlite_call
    else:
        conn = psycopg.connect(
            host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
        )
        sequence = conn.execute("SELECT pg_get_serial_sequence('lead_changes', 'id')").fetchone()[0]
        statement = _PG_CALL.replace("<sequence>", sequence)

        def call(conn: Any, emails: list[str], news: list[str], request_id: str, user_id: str, now: datetime) -> None:
            columns = [[new] * len(emails) for new in news]
            params = [emails, *columns, emails, *SCHEMA, now.replace(microsecond=0), user_id, request_id, user_id, now]
            conn.execute(statement, params).fetchall()

    rng = random.Random(1)
    # Values new to this run: the run after the service's would otherwise write the first run's
    # values again where the service left those leads alone, and PostgreSQL skips the index
    # entries of an UPDATE that changes no indexed value (a HOT update).
    run_tag = uuid.uuid4().hex[:8]
    calls = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        base = rng.randrange(leads // 25) * 25
        tag = f"r{run_tag}_{calls}"
        news = [f"{tag}{letter}" for letter in "abcd"]
        now = datetime.now(UTC).replace(tzinfo=None)
        call(conn, [email(base + k) for k in range(25)], news, uuid.uuid4().hex, user_id, now)
        calls += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return calls * 25 / elapsed


def _sqlite_call(
    conn: sqlite3.Connection, emails: list[str], news: list[str], request_id: str, user_id: str, now: datetime
) -> None:
    cursor = conn.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    rows = cursor.execute(
        f"SELECT auto_id, last_change_id, {', '.join(FIELDS)} FROM leads "
        f"WHERE email_address IN ({', '.join('?' * len(emails))}) ORDER BY auto_id",
        emails,
    ).fetchall()
    # Ids past the largest: the write lock keeps anyone else from taking them.
    largest = cursor.execute("SELECT max(id) FROM lead_changes").fetchone()[0] or 0
    ids = iter(range(largest + 1, largest + 1 + len(FIELDS) * len(rows)))
    updates, history = [], []
    for auto_id, previous, *old in rows:
        for i, new in enumerate(news):
            change_id = next(ids)
            history.append((change_id, previous, auto_id, SCHEMA[i], old[i], new, request_id, user_id, now))
            previous = change_id
        updates.append((*news, now, user_id, previous, auto_id))
    sets = ", ".join(f"{f} = ?" for f in FIELDS)
    cursor.executemany(
        f"UPDATE leads SET {sets}, modified_on = ?, modified_by = ?, last_change_id = ? WHERE auto_id = ?", updates
    )
    cursor.executemany(f"INSERT INTO lead_changes ({HISTORY}) VALUES ({', '.join('?' * 9)})", history)
    cursor.execute("COMMIT")


# m locks and reads the leads in id order; h keeps the fields whose values differ, with ids from
# the sequence; c chains them on from each lead's newest change; u updates the leads and points
# them at their newest change; i inserts the history.
_PG_CALL = f"""
WITH v AS (SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[])
           WITH ORDINALITY AS v(k, n0, n1, n2, n3, ord)),
m AS (SELECT auto_id, email_address AS k, last_change_id AS head,
             first_name AS o0, last_name AS o1, job_title AS o2, mx_city AS o3
      FROM leads WHERE email_address = ANY(%b::text[]) ORDER BY auto_id FOR UPDATE),
h AS (SELECT nextval('<sequence>'::regclass) AS id, x.* FROM (
        SELECT m.auto_id AS l, m.head, f.name AS f, f.o, f.n, v.ord, f.pos
        FROM m JOIN v ON v.k = m.k
        CROSS JOIN LATERAL (VALUES (0, %s::text, m.o0, v.n0), (1, %s::text, m.o1, v.n1),
                                   (2, %s::text, m.o2, v.n2), (3, %s::text, m.o3, v.n3)) AS f(pos, name, o, n)
        WHERE f.o IS DISTINCT FROM f.n) x),
c AS (SELECT id, l, f, o, n, CASE WHEN lag(l) OVER w = l THEN lag(id) OVER w ELSE head END AS previous_id,
             lead(l) OVER w IS DISTINCT FROM l AS newest
      FROM h WINDOW w AS (ORDER BY ord, pos)),
u AS (UPDATE leads SET first_name = v.n0, last_name = v.n1, job_title = v.n2, mx_city = v.n3,
             modified_on = %s, modified_by = %s, last_change_id = c.id
      FROM c JOIN m ON m.auto_id = c.l JOIN v ON v.k = m.k WHERE c.newest AND leads.auto_id = c.l),
i AS (INSERT INTO lead_changes ({HISTORY}) SELECT id, previous_id, l, f, o, n, %s, %s, %s FROM c)
SELECT k FROM m"""
