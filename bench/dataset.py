"""A benchmark database: the system fields plus 10 custom fields (two unique), an
Administrator and a second user (owners for the mixed workload), the rate limit out of the
way, N leads with predictable emails, and a history of a few million changes already stored.

Leads and history go in with the database's bulk load, not through the API: on PostgreSQL
COPY, on SQLite one ``INSERT ... SELECT`` each (rows made by SQLite itself). The history is
consistent with the chain the service reads and writes (``LeadChange``): history round ``r``
changes field ``r % 4`` of every lead, each change points at the lead's change of the round
before (``previous_id``), ids grow in write order (round by round), the lead row points at its
newest change (``last_change_id``), and each field's newest change holds the value the lead row
has. Change ``r`` of lead ``a`` (``auto_id``, from 1) has id ``r * N + a``.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from leadstore import migrate
from leadstore.catalog import Catalog, save_setting
from leadstore.config import Settings, driver_url
from leadstore.db import Database
from leadstore.fields import service as field_service
from leadstore.users import service as user_service

CUSTOM_FIELDS = [
    ("mx_City", "Text", {}),
    ("mx_Region", "Text", {}),
    ("mx_Industry", "Text", {}),
    ("mx_Budget", "Number", {}),
    ("mx_NextCall", "Date", {}),
    ("mx_Segment", "Select", {"options": ["SMB", "Mid", "Enterprise"]}),
    ("mx_Newsletter", "Boolean", {}),
    ("mx_Referrer", "Text", {}),
    ("mx_CustomerCode", "Text", {"unique": True}),
    ("mx_TaxId", "Text", {"unique": True}),
]
# The fields the stored history changes, in turn: (schema name, column, value of lead i).
HISTORY_FIELDS = (
    ("FirstName", "first_name", "First{i}"),
    ("LastName", "last_name", "Last{i}"),
    ("JobTitle", "job_title", "Title{i}"),
    ("mx_City", "mx_city", "City{c}"),  # c = i % 50
)
HISTORY_ROWS = 3_000_000
COPY_CHUNK = 50_000


def email(i: int) -> str:
    return f"lead{i}@bench.example"


@dataclass(frozen=True)
class Prepared:
    url: str
    access_key: str
    secret_key: str
    admin_id: str
    other_user_id: str
    history_rows: int
    seconds: float
    leads_seconds: float
    history_seconds: float


def prepare(url: str, leads: int, history_rows: int = HISTORY_ROWS) -> Prepared:
    """Create a fresh database at ``url`` with ``leads`` leads and about ``history_rows``
    changes in their history (whole rounds: at least one change per lead)."""
    started = time.perf_counter()
    _recreate(url)
    db = Database(Settings(database_url=url, _env_file=None))
    migrate.upgrade(db)
    catalog = Catalog(db)
    catalog.refresh()
    for name, data_type, options in CUSTOM_FIELDS:
        with db.write() as conn:
            field_service.add(conn, catalog.fields, name, data_type, **options)  # type: ignore[arg-type]
        catalog.refresh()
    with db.write() as conn:
        admin = user_service.add_user(conn, "bench@example.com", "Administrator", "Bench")
        user_service.add_user(conn, "bench-owner@example.com", "SalesUser", "Owner")
        save_setting(conn, "rate_limit_calls", "1000000")
        save_setting(conn, "rate_limit_window_seconds", "1")
    other_id = _user_id(db, "bench-owner@example.com")
    db.dispose()
    rounds = max(1, history_rows // leads)
    load = _load_sqlite if make_url(url).drivername.startswith("sqlite") else _load_postgresql
    leads_s, history_s = load(url, leads, rounds, admin.user_id)
    return Prepared(
        url,
        admin.access_key,
        admin.secret_key,
        admin.user_id,
        other_id,
        rounds * leads,
        time.perf_counter() - started,
        leads_s,
        history_s,
    )


def _user_id(db: Database, user_email: str) -> str:
    with db.read() as conn:
        return str(conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": user_email}).scalar_one())


def _recreate(url: str) -> None:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm", "-write-lock"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    server = create_engine(make_url(driver_url(url)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    server.dispose()


def _stamp() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


# --- SQLite: rows made by SQLite from a counter, in one transaction without a journal -------

_SQLITE_LEADS = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :leads - 1)
INSERT INTO leads (auto_id, prospect_id, first_name, last_name, job_title, email_address, phone, company,
                   prospect_stage, score, owner_id, created_by, created_on, modified_by, modified_on,
                   mx_city, mx_customercode, mx_taxid, last_change_id)
SELECT i + 1, '00000000-0000-0000-0000-' || printf('%012x', i + 1), 'First' || i, 'Last' || i, 'Title' || i,
       'lead' || i || '@bench.example', printf('+91-9%09d', i), 'Acme', 'Prospect', i % 100,
       :owner, :owner, :now, :owner, :now, 'City' || (i % 50), 'CODE' || i, 'TAX' || i,
       (:rounds - 1) * :leads + i + 1
FROM n"""

# Round r, lead a: field r % 4 at version r / 4; the newest version is the lead's value, the
# ones before it that value with '.<version>' after it; the first change of a field has no old
# value (as a lead's creation records it).
_SQLITE_HISTORY = """
WITH RECURSIVE r(r) AS (SELECT 0 UNION ALL SELECT r + 1 FROM r WHERE r < :rounds - 1),
x AS (SELECT r.r, l.auto_id AS a,
             CASE r.r % 4 WHEN 0 THEN l.first_name WHEN 1 THEN l.last_name
                          WHEN 2 THEN l.job_title ELSE l.mx_city END AS value
      FROM r CROSS JOIN leads l)
INSERT INTO lead_changes (id, previous_id, lead_id, field, old_value, new_value, request_id, changed_by, changed_at)
SELECT r * :leads + a, CASE WHEN r = 0 THEN NULL ELSE (r - 1) * :leads + a END, a,
       CASE r % 4 WHEN 0 THEN 'FirstName' WHEN 1 THEN 'LastName' WHEN 2 THEN 'JobTitle' ELSE 'mx_City' END,
       CASE WHEN r < 4 THEN NULL ELSE value || '.' || (r / 4 - 1) END,
       CASE WHEN r >= :rounds - 4 THEN value ELSE value || '.' || (r / 4) END,
       'bench-history-' || r, :owner, :now
FROM x ORDER BY r, a"""


def _load_sqlite(url: str, leads: int, rounds: int, owner: str) -> tuple[float, float]:
    import sqlite3

    conn = sqlite3.connect(make_url(url).database or "", isolation_level=None)
    try:
        # A bulk load: no journal (a failed load is thrown away), a large page cache for the
        # indexes; WAL again afterwards, as every leadstore connection expects.
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
            conn.execute(f"PRAGMA {pragma}")
        params: dict[str, Any] = {"leads": leads, "rounds": rounds, "owner": owner, "now": str(_stamp())}
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(_SQLITE_LEADS, params)
        conn.execute("COMMIT")
        leads_s = time.perf_counter() - started
        conn.execute("BEGIN")
        conn.execute(_SQLITE_HISTORY, params)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode=WAL")
        return leads_s, time.perf_counter() - started - leads_s
    finally:
        conn.close()


# --- PostgreSQL: COPY ------------------------------------------------------------------------

_PG_LEAD_COLUMNS = (
    "auto_id, prospect_id, first_name, last_name, job_title, email_address, phone, company, prospect_stage, "
    "score, owner_id, created_by, created_on, modified_by, modified_on, mx_city, mx_customercode, mx_taxid, "
    "last_change_id"
)
_PG_HISTORY_COLUMNS = "id, previous_id, lead_id, field, old_value, new_value, request_id, changed_by, changed_at"


def _lead_lines(start: int, stop: int, leads: int, rounds: int, owner: str, now: str) -> str:
    newest = (rounds - 1) * leads + 1
    return "".join(
        f"{i + 1}\t{uuid.UUID(int=i + 1)}\tFirst{i}\tLast{i}\tTitle{i}\tlead{i}@bench.example\t+91-9{i:09d}\t"
        f"Acme\tProspect\t{i % 100}\t{owner}\t{owner}\t{now}\t{owner}\t{now}\tCity{i % 50}\tCODE{i}\tTAX{i}\t"
        f"{newest + i}\n"
        for i in range(start, stop)
    )


def _history_lines(r: int, start: int, stop: int, leads: int, rounds: int, owner: str, now: str) -> str:
    name, _column, pattern = HISTORY_FIELDS[r % 4]
    version, newest = r // 4, r >= rounds - 4
    lines = []
    for i in range(start, stop):
        value = pattern.format(i=i, c=i % 50)
        old = "\\N" if r < 4 else f"{value}.{version - 1}"
        new = value if newest else f"{value}.{version}"
        previous = "\\N" if r == 0 else str((r - 1) * leads + i + 1)
        lines.append(
            f"{r * leads + i + 1}\t{previous}\t{i + 1}\t{name}\t{old}\t{new}\tbench-history-{r}\t{owner}\t{now}\n"
        )
    return "".join(lines)


def _load_postgresql(url: str, leads: int, rounds: int, owner: str) -> tuple[float, float]:
    import psycopg

    parsed = make_url(url)
    now = str(_stamp())
    with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY leads ({_PG_LEAD_COLUMNS}) FROM STDIN") as copy:
                for start in range(0, leads, COPY_CHUNK):
                    copy.write(_lead_lines(start, min(leads, start + COPY_CHUNK), leads, rounds, owner, now))
            cursor.execute("SELECT setval(pg_get_serial_sequence('leads', 'auto_id'), %s)", (leads,))
        conn.commit()
        leads_s = time.perf_counter() - started
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY lead_changes ({_PG_HISTORY_COLUMNS}) FROM STDIN") as copy:
                for r in range(rounds):
                    for start in range(0, leads, COPY_CHUNK):
                        stop = min(leads, start + COPY_CHUNK)
                        copy.write(_history_lines(r, start, stop, leads, rounds, owner, now))
            cursor.execute("SELECT setval(pg_get_serial_sequence('lead_changes', 'id'), %s)", (rounds * leads,))
        conn.commit()
        history_s = time.perf_counter() - started - leads_s
    # Outside a transaction: statistics and hint bits as a database in use has them, and the
    # load's WAL checkpointed now rather than during the first phase.
    with psycopg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database, autocommit=True
    ) as conn:
        conn.execute("VACUUM (ANALYZE) leads")
        conn.execute("VACUUM (ANALYZE) lead_changes")
        conn.execute("CHECKPOINT")
    return leads_s, history_s
