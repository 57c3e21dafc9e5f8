"""Demo data for ``make run``: users in two sales groups, a custom field, a few thousand leads."""

import random
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from leadstore.catalog import Catalog
from leadstore.db import Database
from leadstore.fields import service as field_service
from leadstore.users import repository as user_repo
from leadstore.users import service as user_service

FIRST = ["Asha", "Ravi", "John", "Maria", "Wei", "Fatima", "Luca", "Priya", "Sam", "Noor", "Ken", "Ines"]
LAST = ["Sharma", "Wick", "Rossi", "Chen", "Khan", "Okafor", "Silva", "Iyer", "Novak", "Berg", "Sato", "Diaz"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne"]
CITIES = ["Mumbai", "Bengaluru", "Delhi", "Pune", "London", "Berlin", "Austin"]
STAGES = ["Prospect", "Opportunity", "Customer", "Inactive"]


def seed(db: Database, leads: int) -> str:
    """Seed an empty lead table; does nothing when leads exist already."""
    catalog = Catalog(db)
    catalog.refresh()
    with db.write() as conn:
        if conn.execute(select(func.count()).select_from(catalog.fields.table)).scalar_one():
            return "demo data: the database already holds leads; nothing added"
        for name in ("North", "South"):
            if user_repo.get_group(conn, name) is None:
                user_service.add_group(conn, name)
        owners = []
        people: tuple[tuple[str, str, str | None], ...] = (
            ("manager.north@example.com", "SalesManager", "North"),
            ("sales.north@example.com", "SalesUser", "North"),
            ("sales.south@example.com", "SalesUser", "South"),
            ("marketing@example.com", "MarketingUser", None),
        )
        for email, role, group in people:
            existing = user_repo.get_by_email(conn, email)
            if existing is None:
                owners.append(user_service.add_user(conn, email, role, groups=[group] if group else []).user_id)
            else:
                owners.append(str(existing["id"]))
        if catalog.fields.get("mx_City") is None:
            field_service.add(conn, catalog.fields, "mx_City", "Text", "City")
    catalog.refresh()
    table = catalog.fields.table
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for n in range(leads):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        owner = rng.choice(owners[:3])
        rows.append(
            {
                "prospect_id": str(uuid.uuid4()),
                "first_name": first,
                "last_name": last,
                "email_address": f"{first}.{last}.{n}@example.com".lower(),
                "phone": f"+91-9{n:09d}",
                "company": rng.choice(COMPANIES),
                "prospect_stage": rng.choice(STAGES),
                "score": float(rng.randint(0, 100)),
                "source": "Demo",
                "mx_city": rng.choice(CITIES),
                "owner_id": owner,
                "created_by": owner,
                "modified_by": owner,
                "created_on": now,
                "modified_on": now,
            }
        )
    with db.write() as conn:
        conn.execute(insert(table), rows)
    return f"demo data: {leads} leads, 4 users in sales groups North and South, custom field mx_City"
