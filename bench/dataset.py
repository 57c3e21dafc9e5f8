"""A benchmark database: the system fields plus 10 custom fields (two unique), an
Administrator, a rate limit out of the way, and N leads with predictable emails."""

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import make_url, text

from leadstore import migrate
from leadstore.catalog import Catalog, save_setting
from leadstore.config import Settings
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
CHUNK = 20_000


def email(i: int) -> str:
    return f"lead{i}@bench.example"


@dataclass(frozen=True)
class Prepared:
    url: str
    access_key: str
    secret_key: str
    admin_id: str
    seconds: float


def prepare(url: str, leads: int) -> Prepared:
    """Create a fresh database at ``url`` and fill it with ``leads`` leads."""
    started = time.perf_counter()
    _recreate(url)
    db = Database(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    migrate.upgrade(db)
    catalog = Catalog(db)
    catalog.refresh()
    for name, data_type, options in CUSTOM_FIELDS:
        with db.write() as conn:
            field_service.add(conn, catalog.fields, name, data_type, **options)
        catalog.refresh()
    with db.write() as conn:
        admin = user_service.add_user(conn, "bench@example.com", "Administrator", "Bench")
        save_setting(conn, "rate_limit_calls", "1000000")
        save_setting(conn, "rate_limit_window_seconds", "1")
    _fill(db, leads, admin.user_id)
    db.dispose()
    return Prepared(url, admin.access_key, admin.secret_key, admin.user_id, time.perf_counter() - started)


def _recreate(url: str) -> None:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        from pathlib import Path

        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine

    from leadstore.config import driver_url

    server = create_engine(make_url(driver_url(url)).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    server.dispose()


def _rows(start: int, stop: int, owner: str, now: datetime):  # type: ignore[no-untyped-def]
    for i in range(start, stop):
        yield (
            str(uuid.UUID(int=i + 1)),
            f"First{i}",
            f"Last{i}",
            email(i),
            f"+91-9{i:09d}",
            "Acme",
            "Prospect",
            float(i % 100),
            owner,
            owner,
            now,
            owner,
            now,
            f"City{i % 50}",
            f"CODE{i}",
            f"TAX{i}",
        )


_COLUMNS = (
    "prospect_id, first_name, last_name, email_address, phone, company, prospect_stage, score, "
    "owner_id, created_by, created_on, modified_by, modified_on, mx_city, mx_customercode, mx_taxid"
)


def _fill(db: Database, leads: int, owner: str) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.is_sqlite:
            placeholders = ", ".join("?" * 16)
            cursor.execute("BEGIN")
            for start in range(0, leads, CHUNK):
                cursor.executemany(
                    f"INSERT INTO leads ({_COLUMNS}) VALUES ({placeholders})",
                    list(_rows(start, min(leads, start + CHUNK), owner, now)),
                )
            cursor.execute("COMMIT")
        else:
            with cursor.copy(f"COPY leads ({_COLUMNS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in _rows(0, leads, owner, now):
                    copy.write_row(row)
            raw.commit()
            cursor.execute("ANALYZE leads")
            raw.commit()
    finally:
        raw.close()
