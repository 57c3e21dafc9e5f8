"""The single-lead writes of spec section 5: create, update, create-or-update.

Validation failures answer as LeadSquared does on these endpoints: HTTP 500 with an
``MX...Exception`` naming the field.
"""

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
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
from leadstore.leads import bulk, search
from leadstore.leads import repository as repo
from leadstore.leads.changes import FieldRejected, Pairs, check_complete, duplicate, parse_fields
from leadstore.leads.outcomes import ReasonCode
from leadstore.leads.plan import LeadWrite

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


def _check_references(conn: Connection, catalog: CatalogSnapshot, values: Mapping[Field, Any]) -> None:
    for field_, value in values.items():
        if field_.is_unique and value is not None and repo.holders(conn, catalog.fields, field_, [value]):
            raise DuplicateEntry(duplicate(field_))
    owner = catalog.fields.get("OwnerId")
    if owner is not None and values.get(owner) is not None and not repo.known_users(conn, [values[owner]]):
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
    _check_references(conn, catalog, values)
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


async def update(
    catalog: CatalogSnapshot, principal: Principal, prospect_id: str | None, pairs: Pairs, request_id: str
) -> int:
    """Update the lead ``prospect_id``; returns the number of leads affected (1)."""
    if not prospect_id:
        raise MandatoryAttributeMissing("leadId is missing: pass the lead's ProspectId as ?leadId=")
    values = _values(catalog, principal, pairs)
    key = search.lead_key(catalog, prospect_id)
    id_field = catalog.fields.get("ProspectId")
    assert id_field is not None  # a system field
    if key is None or not await _update(catalog, principal, id_field, key, values, request_id):
        raise LeadNotFound("Lead does not exist in the system")
    return 1


async def _update(
    catalog: CatalogSnapshot,
    principal: Principal,
    key: Field,
    key_value: Any,
    values: Mapping[Field, Any],
    request_id: str,
) -> bool:
    """Write ``values`` to the lead whose ``key`` holds ``key_value``, as a bulk call of one lead
    would; whether the caller may update such a lead."""
    fields = [f for f in values if f is not key]
    lead = LeadWrite(0, key_value, {i: values[f] for i, f in enumerate(fields)})
    write = bulk.write_of(catalog.fields, principal, key, fields, [lead], request_id)
    result = (await catalog.db.write_bulk(write)).get(0)
    if result is None or not result.found:
        return False
    if result.failure is not None:
        code, reason = result.failure
        raise (DuplicateEntry if code == ReasonCode.DUPLICATE_VALUE else InvalidFieldValue)(reason)
    return True


async def create_or_update(catalog: CatalogSnapshot, principal: Principal, pairs: Pairs, request_id: str) -> str:
    """Update the lead found by ``SearchBy`` (default: EmailAddress, then Phone), or create it."""
    search_by = [value for attribute, value in pairs if attribute.lower() == "searchby"]
    pairs = [(a, v) for a, v in pairs if a.lower() != "searchby"]
    values = _values(catalog, principal, pairs)
    key = _search_key(catalog, principal, search_by[0] if search_by else None, values)
    if (
        key is not None
        and values.get(key) is not None
        and await _update(catalog, principal, key, values[key], values, request_id)
    ):
        found = await anyio.to_thread.run_sync(search.find_one, catalog, principal, key, values[key])
        if found is not None:
            return found
    return await anyio.to_thread.run_sync(_create_found_by, catalog, principal, values, request_id)


def _create_found_by(catalog: CatalogSnapshot, principal: Principal, values: dict[Field, Any], request_id: str) -> str:
    with _races_as_duplicates(values), catalog.db.write() as conn:
        return _insert(conn, catalog, principal, values, request_id)


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
        message = duplicate(unique[0]) if unique else "A Lead with the same unique value already exists."
        raise DuplicateEntry(message) from exc
