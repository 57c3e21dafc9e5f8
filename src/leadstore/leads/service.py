"""The single-lead writes of spec section 5: create, update, create-or-update.

Validation failures answer as LeadSquared does on these endpoints: HTTP 500 with an
``MX...Exception`` naming the field.
"""

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from leadstore.auth.principal import Principal
from leadstore.catalog import CatalogSnapshot
from leadstore.errors import (
    DuplicateEntry,
    InvalidFieldValue,
    LeadNotFound,
    LeadstoreError,
    MandatoryAttributeMissing,
    NotPermitted,
    UnknownAttribute,
    shown,
)
from leadstore.fields.model import Field
from leadstore.leads import repository as repo
from leadstore.leads import search
from leadstore.leads.changes import (
    FieldRejected,
    Pairs,
    ReasonCode,
    UniqueClaims,
    changed,
    check_complete,
    duplicate_message,
    parse_fields,
    unknown_owners,
)

_ERROR_FOR_CODE: dict[ReasonCode, type[LeadstoreError]] = {
    ReasonCode.UNKNOWN_ATTRIBUTE: UnknownAttribute,
    ReasonCode.DUPLICATE_VALUE: DuplicateEntry,
    ReasonCode.MANDATORY_MISSING: MandatoryAttributeMissing,
    ReasonCode.FIELD_READ_ONLY: NotPermitted,
    ReasonCode.OWNER_NOT_PERMITTED: NotPermitted,
}


def _values(catalog: CatalogSnapshot, principal: Principal, pairs: Pairs) -> dict[Field, Any]:
    try:
        return parse_fields(catalog.fields, principal, pairs, catalog.account.phone_rules)
    except FieldRejected as exc:
        raise _ERROR_FOR_CODE.get(exc.code, InvalidFieldValue)(exc.message) from None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _check_references(
    conn: Connection, catalog: CatalogSnapshot, lead_id: int | None, values: Mapping[Field, Any]
) -> None:
    taken = UniqueClaims(conn, catalog.fields, [values]).conflict(lead_id, values)
    if taken is not None:
        raise DuplicateEntry(duplicate_message(taken))
    if unknown_owners(conn, catalog.fields, [values]):
        raise InvalidFieldValue("OwnerId must be the id of a user")


def create(catalog: CatalogSnapshot, principal: Principal, pairs: Pairs, request_id: str) -> str:
    """Create a lead; returns its ProspectId."""
    values = _values(catalog, principal, pairs)
    with _races_as_duplicates(values), catalog.db.write() as conn:
        return _insert(conn, catalog, principal, values, request_id)


def _insert(
    conn: Connection, catalog: CatalogSnapshot, principal: Principal, values: dict[Field, Any], request_id: str
) -> str:
    try:
        check_complete(catalog.fields, principal, values)
    except FieldRejected as exc:
        raise MandatoryAttributeMissing(exc.message) from None
    owner = catalog.fields.get("OwnerId")
    if owner is not None and values.get(owner) is None:
        values[owner] = principal.user_id
    if owner is not None and not principal.may_own(values[owner]):
        # Lead access "none": the caller could neither see nor change the lead it made.
        raise NotPermitted("You do not have permission to create leads (your lead access: none)")
    _check_references(conn, catalog, None, values)
    now, prospect_id = _now(), str(uuid.uuid4())
    stamp = now.replace(microsecond=0)  # CreatedOn/ModifiedOn read back to the second
    row = {f.column: v for f, v in values.items()}
    row.update(
        prospect_id=prospect_id,
        created_on=stamp,
        modified_on=stamp,
        created_by=principal.user_id,
        modified_by=principal.user_id,
    )
    lead_id = repo.insert_lead(conn, catalog.fields.table, row)
    repo.record_creation(conn, lead_id, values, principal.user_id, request_id, now)
    return prospect_id


def update(
    catalog: CatalogSnapshot, principal: Principal, prospect_id: str | None, pairs: Pairs, request_id: str
) -> int:
    """Update the lead ``prospect_id``; returns the number of leads affected (1)."""
    if not prospect_id:
        raise MandatoryAttributeMissing("leadId is missing: pass the lead's ProspectId as ?leadId=")
    values = _values(catalog, principal, pairs)
    key = search.lead_key(catalog, prospect_id)
    if key is None:
        raise LeadNotFound("Lead does not exist in the system")
    with _races_as_duplicates(values), catalog.db.write() as conn:
        rows = repo.find(conn, catalog.fields.table, "prospect_id", [key], principal, lock=True)
        if not rows:
            raise LeadNotFound("Lead does not exist in the system")
        _update(conn, catalog, principal, rows[0], values, request_id)
    return 1


def _update(
    conn: Connection,
    catalog: CatalogSnapshot,
    principal: Principal,
    row: Mapping[str, Any],
    values: Mapping[Field, Any],
    request_id: str,
) -> None:
    new = changed(row, values)
    if not new:
        return
    _check_references(conn, catalog, row["auto_id"], new)
    update = repo.LeadUpdate(row["auto_id"], row, new)
    repo.apply_updates(conn, catalog.fields.table, [update], principal.user_id, request_id, _now())


def create_or_update(catalog: CatalogSnapshot, principal: Principal, pairs: Pairs, request_id: str) -> str:
    """Update the lead found by ``SearchBy`` (default: EmailAddress, then Phone), or create it."""
    search_by = [value for attribute, value in pairs if attribute.lower() == "searchby"]
    pairs = [(a, v) for a, v in pairs if a.lower() != "searchby"]
    values = _values(catalog, principal, pairs)
    key = _search_key(catalog, principal, search_by[0] if search_by else None, values)
    with _races_as_duplicates(values), catalog.db.write() as conn:
        rows = []
        if key is not None and values.get(key) is not None:
            rows = repo.find(conn, catalog.fields.table, key.column, [values[key]], principal, lock=True)
        if not rows:
            return _insert(conn, catalog, principal, values, request_id)
        _update(conn, catalog, principal, rows[0], values, request_id)
        return str(rows[0]["prospect_id"])


def _search_key(
    catalog: CatalogSnapshot, principal: Principal, name: str | None, values: Mapping[Field, Any]
) -> Field | None:
    if name:
        field_ = catalog.fields.get(name)
        if field_ is None or not field_.is_unique or not principal.can_read(field_):
            raise InvalidFieldValue(f"SearchBy {shown(name)} must name a unique lead field, e.g. EmailAddress")
        return field_
    for default in ("EmailAddress", "Phone"):
        field_ = catalog.fields.get(default)
        if field_ is not None and values.get(field_) is not None:
            return field_
    return None


@contextmanager
def _races_as_duplicates(values: Mapping[Field, Any]) -> Iterator[None]:
    """A unique value taken by a concurrent call between our check and our write becomes the
    same ``DuplicateEntry`` the check would have raised."""
    try:
        yield
    except IntegrityError as exc:
        unique = [f for f, v in values.items() if f.is_unique and v is not None]
        message = duplicate_message(unique[0]) if unique else "A Lead with the same unique value already exists."
        raise DuplicateEntry(message) from exc
