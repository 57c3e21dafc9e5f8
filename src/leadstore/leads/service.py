"""The single-lead writes of spec section 5: create, update, create-or-update.

Validation failures answer as LeadSquared does on these endpoints: HTTP 500 with an
``MX...Exception`` naming the field.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
from leadstore.leads.changes import FieldRejected, Pairs, check_complete, parse_fields, split_pseudo
from leadstore.leads.outcomes import LeadResult, ReasonCode
from leadstore.leads.plan import LeadWrite, NewLead

_ERROR_FOR_CODE: dict[ReasonCode, type[LeadstoreError]] = {
    ReasonCode.UNKNOWN_ATTRIBUTE: UnknownAttribute,
    ReasonCode.DUPLICATE_VALUE: DuplicateEntry,
    ReasonCode.MANDATORY_MISSING: MandatoryAttributeMissing,
    ReasonCode.FIELD_READ_ONLY: NotPermitted,
    ReasonCode.OWNER_NOT_PERMITTED: NotPermitted,
}


def values_of(catalog: CatalogSnapshot, principal: Principal, pairs: Pairs) -> dict[Field, Any]:
    """The stored values of ``pairs``; a broken rule as the single-lead endpoints answer it."""
    try:
        return parse_fields(catalog.fields, principal, pairs, catalog.account.phone_rules)
    except FieldRejected as exc:
        raise _ERROR_FOR_CODE.get(exc.code, InvalidFieldValue)(exc.message) from None


async def create(catalog: CatalogSnapshot, principal: Principal, pairs: Pairs, request_id: str) -> str:
    """Create a lead; returns its ProspectId."""
    values = values_of(catalog, principal, pairs)
    prospect_id, _created = await create_or_update_one(catalog, principal, None, None, values, request_id)
    return prospect_id


async def update(
    catalog: CatalogSnapshot, principal: Principal, prospect_id: str | None, pairs: Pairs, request_id: str
) -> int:
    """Update the lead ``prospect_id``; returns the number of leads affected (1)."""
    if not prospect_id:
        raise MandatoryAttributeMissing("leadId is missing: pass the lead's ProspectId as ?leadId=")
    values = values_of(catalog, principal, pairs)
    key = search.lead_key(catalog, prospect_id)
    id_field = catalog.fields.system("ProspectId")
    if key is None or await _write(catalog, principal, id_field, key, values, request_id) is None:
        raise LeadNotFound("Lead does not exist in the system")
    return 1


async def create_or_update(catalog: CatalogSnapshot, principal: Principal, pairs: Pairs, request_id: str) -> str:
    """Update the lead found by ``SearchBy`` (default: EmailAddress, then Phone), or create it."""
    rest, pseudo = split_pseudo(pairs, "SearchBy")
    values = values_of(catalog, principal, rest)
    key = search_key(catalog, principal, pseudo.get("SearchBy"), values)
    key_value = None if key is None else values.get(key)
    prospect_id, _created = await create_or_update_one(catalog, principal, key, key_value, values, request_id)
    return prospect_id


@dataclass(frozen=True)
class Creation:
    """What creating a lead with some values would write, or why the caller may not create it."""

    prospect_id: str
    server_set: dict[str, Any]  # the columns the server sets: ProspectId, CreatedOn ...
    values: dict[Field, Any]  # the values given, OwnerId defaulting to the caller
    refusal: LeadstoreError | None


def creation(catalog: CatalogSnapshot, principal: Principal, values: Mapping[Field, Any]) -> Creation:
    """The one check every way of creating a lead shares (spec 5: every field rule applies)."""
    new_values = dict(values)
    refusal: LeadstoreError | None = None
    owner = catalog.fields.get("OwnerId")
    if owner is not None and new_values.get(owner) is None:
        new_values[owner] = principal.user_id
    try:
        check_complete(catalog.fields, principal, new_values)
    except FieldRejected as exc:
        refusal = MandatoryAttributeMissing(exc.message)
    if owner is not None and not principal.may_own(new_values[owner]):
        # Lead access "none": the caller could neither see nor change the lead it made.
        refusal = NotPermitted("You do not have permission to create leads (your lead access: none)")
    stamp = datetime.now(UTC).replace(tzinfo=None, microsecond=0)  # CreatedOn/ModifiedOn read back to the second
    prospect_id = str(uuid.uuid4())
    server_set = {
        "prospect_id": prospect_id,
        "created_on": stamp,
        "modified_on": stamp,
        "created_by": principal.user_id,
        "modified_by": principal.user_id,
    }
    return Creation(prospect_id, server_set, new_values, refusal)


async def create_or_update_one(
    catalog: CatalogSnapshot,
    principal: Principal,
    key: Field | None,
    key_value: Any,
    values: Mapping[Field, Any],
    request_id: str,
    *,
    update: Mapping[Field, Any] | None = None,
    expect: Mapping[Field, Any] | None = None,
) -> tuple[str, bool]:
    """Update the lead whose ``key`` holds ``key_value`` (with ``update`` when given, under the
    preconditions ``expect``), or create one with ``values``, in one transaction: two calls
    creating the same lead cannot both create it. Without a key value, a new lead. Its
    ProspectId, and whether it was created."""
    new = creation(catalog, principal, values)
    if key is None or key_value is None:  # nothing to find a lead by: found by its new id, never
        key, key_value = catalog.fields.system("ProspectId"), new.prospect_id
    result = await _write(
        catalog,
        principal,
        key,
        key_value,
        values if update is None else update,
        request_id,
        None if new.refusal else new,
        expect,
    )
    if result is None:
        raise new.refusal or LeadNotFound("Lead does not exist in the system")
    if result.created:
        return new.prospect_id, True
    assert result.prospect_id is not None  # the engines name every lead they find
    return result.prospect_id, False


async def _write(
    catalog: CatalogSnapshot,
    principal: Principal,
    key: Field,
    key_value: Any,
    values: Mapping[Field, Any],
    request_id: str,
    create: Creation | None = None,
    expect: Mapping[Field, Any] | None = None,
) -> LeadResult | None:
    """Write ``values`` to the lead whose ``key`` holds ``key_value`` (or, with ``create``,
    create it if there is none), as a bulk call of one lead would; None when no such lead is in
    the caller's reach."""
    fields = list(dict.fromkeys([*values, *(create.values if create else ()), *(expect or ())]))
    position = {f: i for i, f in enumerate(fields)}
    new = None if create is None else NewLead(create.server_set, {position[f]: v for f, v in create.values.items()})
    lead = LeadWrite(0, key_value, {position[f]: v for f, v in values.items()}, new)
    if expect:
        lead.expect = {position[f]: v for f, v in expect.items()}
    write = bulk.write_of(catalog.fields, principal, key, fields, [lead], request_id)
    result = (await catalog.db.write_bulk(write)).get(0)
    if result is None or not result.found:
        return None
    if result.failure is not None:
        raise error_of(result.failure)
    return result


def error_of(failure: tuple[ReasonCode, str]) -> LeadstoreError:
    """A lead's failure as the single-lead endpoints answer it."""
    code, reason = failure
    if code == ReasonCode.LEAD_NOT_FOUND:
        return LeadNotFound("Lead does not exist in the system")
    return _ERROR_FOR_CODE.get(code, InvalidFieldValue)(reason)


def search_key(
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
