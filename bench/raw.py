"""The database's own best at the everyday call's work, with no HTTP and no leadstore code: per
call, look 25 leads up by email, update 4 fields of each, insert one history row per changed
field, through the bare driver (sqlite3 or psycopg). As the service does, the history rows
chain on from each lead's newest change, which the lead row then points at.

- PostgreSQL: the call as one statement that is its own transaction (what the service's
  everyday call sends, ``update_in_one_statement``), from 1, 2 and 4 client processes: the
  best of them is the database's best (more clients share the disk's flushes; too many fight
  over two cores).
- SQLite: one writer, group-committed: ``BATCH`` calls in one transaction, each a lookup, an
  UPDATE per lead and an INSERT per history row, one COMMIT (and fsync) for them all, as the
  server's writer process commits the calls that wait together (up to 16 at 16 connections).
"""

import multiprocessing
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
PG_CLIENTS = (1, 2, 4)
BATCH = 16


def run(url: str, leads: int, seconds: float, user_id: str) -> dict[str, Any]:
    """The best leads/s, and each tried setting's figure."""
    if make_url(url).drivername.startswith("sqlite"):
        lps = _sqlite_loop(url, leads, seconds, user_id)
        return {"leads_per_s": lps, "setting": f"1 writer, {BATCH} calls a commit", "by_setting": {}}
    by_clients = {clients: run_postgresql(url, leads, seconds, user_id, clients) for clients in PG_CLIENTS}
    best = max(by_clients, key=lambda clients: by_clients[clients])
    return {"leads_per_s": by_clients[best], "setting": f"{best} clients", "clients": best, "by_setting": by_clients}


def run_postgresql(url: str, leads: int, seconds: float, user_id: str, clients: int) -> float:
    """Leads per second from ``clients`` processes, each its own connection, together."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    processes = [
        ctx.Process(target=_pg_client, args=(url, leads, seconds, user_id, n, ready, results)) for n in range(clients)
    ]
    for process in processes:
        process.start()
    ready.wait()
    calls = sum(int(results.get(timeout=seconds + 60)) for _ in processes)
    for process in processes:
        process.join()
    return calls * 25 / seconds


def _pg_client(
    url: str, leads: int, seconds: float, user_id: str, n: int, ready: Any, results: Any
) -> None:  # pragma: no cover - runs in a child process
    parsed = make_url(url)
    conn = psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
    )
    sequence = conn.execute("SELECT pg_get_serial_sequence('lead_changes', 'id')").fetchone()[0]  # type: ignore[index]
    statement = _PG_CALL.replace("<sequence>", sequence)
    rng = random.Random(n)
    # Values new to this run: PostgreSQL skips the index entries of an UPDATE that changes no
    # indexed value (a HOT update), and the service must not be compared with that.
    tag = uuid.uuid4().hex[:8]
    ready.wait()
    calls = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        base = rng.randrange(leads // 25) * 25
        emails = [email(base + k) for k in range(25)]
        news = [f"r{tag}_{calls}{letter}" for letter in "abcd"]
        now = datetime.now(UTC).replace(tzinfo=None)
        columns = [[new] * 25 for new in news]
        params = [emails, *columns, emails, *SCHEMA, now.replace(microsecond=0), user_id]
        conn.execute(statement, [*params, uuid.uuid4().hex, user_id, now]).fetchall()
        calls += 1
    conn.close()
    results.put(calls)


def _sqlite_loop(url: str, leads: int, seconds: float, user_id: str) -> float:
    conn = sqlite3.connect(make_url(url).database or "", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    rng = random.Random(1)
    tag = uuid.uuid4().hex[:8]
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        batch: list[tuple[list[str], list[str]]] = []
        for _ in range(BATCH):
            base = rng.randrange(leads // 25) * 25
            batch.append(([email(base + k) for k in range(25)], [f"r{tag}_{calls + len(batch)}{x}" for x in "abcd"]))
        _sqlite_batch(conn, batch, user_id)
        calls += BATCH
    elapsed = time.perf_counter() - started
    conn.close()
    return calls * 25 / elapsed


def _sqlite_batch(conn: sqlite3.Connection, batch: list[tuple[list[str], list[str]]], user_id: str) -> None:
    cursor = conn.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    # Ids past the largest: the write lock keeps anyone else from taking them.
    next_id = (cursor.execute("SELECT max(id) FROM lead_changes").fetchone()[0] or 0) + 1
    sets = ", ".join(f"{f} = ?" for f in FIELDS)
    for emails, news in batch:
        now = str(datetime.now(UTC).replace(tzinfo=None))
        request_id = uuid.uuid4().hex
        rows = cursor.execute(
            f"SELECT auto_id, last_change_id, {', '.join(FIELDS)} FROM leads "
            f"WHERE email_address IN ({', '.join('?' * len(emails))}) ORDER BY auto_id",
            emails,
        ).fetchall()
        updates, history = [], []
        for auto_id, previous, *old in rows:
            for i, new in enumerate(news):
                history.append((next_id, previous, auto_id, SCHEMA[i], old[i], new, request_id, user_id, now))
                previous, next_id = next_id, next_id + 1
            updates.append((*news, now[:19], user_id, previous, auto_id))
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
