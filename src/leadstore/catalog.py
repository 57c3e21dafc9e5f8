"""What every worker process must agree on and may change while it runs: the field schema and
the account settings. An administrative change bumps one revision counter in the database;
each worker polls it (``refresh``) about twice a second and reloads when it moved, so a change
reaches every process within a second without a restart."""

import json
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import Connection, insert, select, update

from leadstore.db import Database
from leadstore.fields.model import SYSTEM_FIELDS, DataType, Field
from leadstore.fields.registry import FieldRegistry
from leadstore.fields.validation import PhoneRules
from leadstore.models import AccountSetting, CatalogRevision, CustomField


@dataclass(frozen=True)
class AccountSettings:
    phone_country_code_mandatory: bool = False
    default_country_code: str = "91"
    rate_limit_calls: int = 25
    rate_limit_window_seconds: int = 5
    bulk_max_leads: int = 25

    @property
    def phone_rules(self) -> PhoneRules:
        return PhoneRules(self.phone_country_code_mandatory, self.default_country_code)


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _country_code(value: str) -> str:
    code = value.strip().lstrip("+")
    if not (code.isdigit() and 1 <= len(code) <= 3):
        raise ValueError("must be a country calling code of 1 to 3 digits, e.g. 91")
    return code


def _positive(limit: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if not 1 <= number <= limit:
            raise ValueError(f"must be between 1 and {limit}")
        return number

    return parse


SETTING_PARSERS: dict[str, Callable[[str], Any]] = {
    "phone_country_code_mandatory": _boolean,
    "default_country_code": _country_code,
    "rate_limit_calls": _positive(1_000_000),
    "rate_limit_window_seconds": _positive(86_400),
    # Bounded so that one call stays one short transaction.
    "bulk_max_leads": _positive(1000),
}
assert set(SETTING_PARSERS) == {f.name for f in fields(AccountSettings)}


def parse_setting(key: str, value: str) -> Any:
    """The typed value of a setting; ``ValueError`` names the rule it breaks."""
    if key not in SETTING_PARSERS:
        raise ValueError(f"unknown setting {key!r}; settings are: {', '.join(SETTING_PARSERS)}")
    try:
        return SETTING_PARSERS[key](value)
    except ValueError as exc:
        raise ValueError(f"{key} {exc}") from None


def load_account_settings(conn: Connection) -> AccountSettings:
    stored = {key: value for key, value in conn.execute(select(AccountSetting.key, AccountSetting.value))}
    values = {key: SETTING_PARSERS[key](value) for key, value in stored.items() if key in SETTING_PARSERS}
    return replace(AccountSettings(), **values)


def load_custom_fields(conn: Connection) -> list[Field]:
    rows = conn.execute(select(CustomField).order_by(CustomField.position)).mappings().all()
    return [
        Field(
            schema_name=row["schema_name"],
            column=row["column_name"],
            data_type=DataType(row["data_type"]),
            display_name=row["display_name"],
            is_unique=row["is_unique"],
            is_mandatory=row["is_mandatory"],
            max_length=row["max_length"],
            options=tuple(json.loads(row["options"])),
        )
        for row in rows
    ]


def current_revision(conn: Connection) -> int:
    return conn.execute(select(CatalogRevision.revision).where(CatalogRevision.id == 1)).scalar_one()


def bump_revision(conn: Connection) -> None:
    """Tell every worker to reload; call in the transaction that makes the change."""
    conn.execute(update(CatalogRevision).where(CatalogRevision.id == 1).values(revision=CatalogRevision.revision + 1))


@dataclass(frozen=True)
class CatalogSnapshot:
    """The catalog as one call sees it from start to end. A call reads fields and settings
    through its snapshot only, so a field added meanwhile cannot mix two versions of the lead
    table in one query."""

    db: Database
    fields: FieldRegistry
    account: AccountSettings


class Catalog:
    """This process's copy of the fields and settings, replaced whole when the revision moves."""

    def snapshot(self) -> CatalogSnapshot:
        return CatalogSnapshot(self.db, self.fields, self.account)

    def __init__(self, db: Database) -> None:
        self.db = db
        self.revision = -1
        self.fields = FieldRegistry.build(())
        self.account = AccountSettings()

    def refresh(self) -> bool:
        """Reload if anything changed since the last look; True when it did."""
        with self.db.read() as conn:
            revision = current_revision(conn)
            if revision == self.revision:
                return False
            custom = tuple(load_custom_fields(conn))
            known = self.fields.fields[len(SYSTEM_FIELDS) :]
            if [f.definition() for f in custom] != [f.definition() for f in known]:  # else keep the table
                self.fields = FieldRegistry.build(custom)
            self.account = load_account_settings(conn)
            self.revision = revision
            return True


def save_setting(conn: Connection, key: str, value: str) -> None:
    parse_setting(key, value)
    exists = conn.execute(select(AccountSetting.key).where(AccountSetting.key == key)).first()
    if exists:
        conn.execute(update(AccountSetting).where(AccountSetting.key == key).values(value=value))
    else:
        conn.execute(insert(AccountSetting).values(key=key, value=value))
    bump_revision(conn)
