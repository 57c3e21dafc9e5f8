"""The read endpoints of spec section 5. A caller sees only the leads its scope allows and
only the fields it may read; a hidden field can be neither shown, searched nor sorted on."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String

from leadstore.auth.principal import Principal
from leadstore.catalog import CatalogSnapshot
from leadstore.errors import InvalidRequest, shown
from leadstore.fields.model import DataType, Field
from leadstore.fields.registry import read_name
from leadstore.fields.validation import (
    DATETIME_FORMAT,
    InvalidValue,
    format_datetime,
    normalize,
    normalize_fragment,
)
from leadstore.leads import repository as repo
from leadstore.leads.reading import lead_to_wire

Lead = dict[str, str | None]
MAX_PAGE_SIZE = 1000
# Keeps the row offset inside a 64-bit integer (the database's limit) whatever the page size.
MAX_PAGE_INDEX = 1_000_000_000
QUICK_SEARCH_LIMIT = 100
_QUICK_SEARCH_FIELDS = ("FirstName", "LastName", "EmailAddress", "Phone", "Mobile", "Company")
OPERATORS = repo.OPERATORS


def _wire(catalog: CatalogSnapshot, principal: Principal, rows: Sequence[Any]) -> list[Lead]:
    return [lead_to_wire(catalog.fields, principal, row) for row in rows]


def _by_value(catalog: CatalogSnapshot, principal: Principal, names: Sequence[str], raw: str | None) -> list[Lead]:
    """Leads whose unique field ``names`` (any of them) hold ``raw``, normalised as that field is.

    One query per field: each is a lookup in that field's unique index, where ``a = ? OR b = ?``
    beside a scope filter may lead SQLite to walk the owner index instead."""
    wanted: list[tuple[Field, Any]] = []
    for name in names:
        field_ = catalog.fields.get(name)
        if field_ is None or not principal.can_read(field_) or not raw:
            continue
        try:
            wanted.append((field_, normalize(field_, raw, catalog.account.phone_rules)))
        except InvalidValue:
            continue  # no lead can hold a value that is not valid
    if not wanted:
        return []
    with catalog.db.read() as conn:
        rows = repo.by_unique_values(conn, catalog.fields, principal, wanted, QUICK_SEARCH_LIMIT)
    return _wire(catalog, principal, rows)


def get_by_id(catalog: CatalogSnapshot, principal: Principal, prospect_id: str | None) -> list[Lead]:
    return _by_value(catalog, principal, ["ProspectId"], prospect_id)


def get_by_email(catalog: CatalogSnapshot, principal: Principal, email: str | None) -> list[Lead]:
    return _by_value(catalog, principal, ["EmailAddress"], email)


def get_by_phone(catalog: CatalogSnapshot, principal: Principal, phone: str | None) -> list[Lead]:
    return _by_value(catalog, principal, ["Phone", "Mobile"], phone)


def quick_search(catalog: CatalogSnapshot, principal: Principal, key: str | None) -> list[Lead]:
    """Leads whose name, email, phone or company starts with ``key``, in any letter case."""
    key = (key or "").strip()
    if not key or "\x00" in key:  # no stored text holds NUL (and PostgreSQL refuses it in a query)
        return []
    prefixes: list[tuple[Field, str]] = []
    for name in _QUICK_SEARCH_FIELDS:
        field_ = catalog.fields.get(name)
        if field_ is not None and principal.can_read(field_):
            # Spelt as the field stores values (e.g. full-width digits as ASCII in a phone).
            fragment = normalize_fragment(field_, key)
            if fragment:
                prefixes.append((field_, fragment))
    if not prefixes:  # every searched field is hidden from the caller: nothing can match
        return []
    with catalog.db.read() as conn:
        return _wire(catalog, principal, repo.by_prefix(conn, catalog.fields, principal, prefixes, QUICK_SEARCH_LIMIT))


@dataclass(frozen=True)
class LeadQuery:
    lookup_name: str
    lookup_value: str
    operator: str = "="
    columns: str | None = None
    sort_column: str | None = None
    descending: bool = False
    page_index: int = 1
    page_size: int = 100


def _readable(catalog: CatalogSnapshot, principal: Principal, name: str, role: str) -> Field:
    field_ = catalog.fields.get(name)
    if field_ is None or not principal.can_read(field_):
        raise InvalidRequest(f"{role} {shown(name)} is not a lead field; see LeadsMetaData.Get for the schema names")
    return field_


def _check_paging(page_index: int, page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE or not 1 <= page_index <= MAX_PAGE_INDEX:
        raise InvalidRequest(
            f"Paging needs PageIndex from 1 to {MAX_PAGE_INDEX} and PageSize from 1 to {MAX_PAGE_SIZE}"
        )


def search(catalog: CatalogSnapshot, principal: Principal, q: LeadQuery) -> list[Lead]:
    """Leads.Get: one condition, optional sorting, paging from 1, selected columns."""
    field_ = _readable(catalog, principal, q.lookup_name, "LookupName")
    operator = q.operator.strip().upper()
    if operator not in OPERATORS:
        raise InvalidRequest(f"SqlOperator {shown(q.operator)} is not supported; use one of: {', '.join(OPERATORS)}")
    _check_paging(q.page_index, q.page_size)
    value: Any = q.lookup_value
    if operator == "LIKE" and "\x00" in value:
        return []  # no stored text holds NUL (and PostgreSQL refuses it in a query)
    if operator == "LIKE":
        if not isinstance(catalog.fields.column(field_).type, String):
            raise InvalidRequest(
                f"SqlOperator LIKE matches text, and {field_.schema_name} is a {field_.data_type.value} field; "
                "compare it with =, <>, <, <=, > or >="
            )
        value = normalize_fragment(field_, value)
        if value is None:
            return []  # no stored value holds it
    else:
        try:
            value = normalize(field_, q.lookup_value, catalog.account.phone_rules)
        except InvalidValue as exc:
            raise InvalidRequest(f"LookupValue: {exc.message}") from None
        if value is None and operator not in ("=", "<>"):
            raise InvalidRequest(
                f"LookupValue is empty, which SqlOperator {operator} cannot compare; "
                "use = or <> to find leads whose field is empty or not"
            )
    column = catalog.fields.column(field_)
    if isinstance(column.type, DateTime) and isinstance(value, str):
        # CreatedOn and ModifiedOn are real date-times in the database, not text.
        value = datetime.strptime(value, DATETIME_FORMAT)
    sort = _readable(catalog, principal, q.sort_column, "Sorting.ColumnName") if q.sort_column else None
    page = repo.Page((q.page_index - 1) * q.page_size, q.page_size, sort, q.descending)
    with catalog.db.read() as conn:
        leads = _wire(catalog, principal, repo.matching(conn, catalog.fields, principal, field_, operator, value, page))
    wanted = _wanted_columns(catalog, principal, q.columns)
    if wanted is not None:
        leads = [{k: v for k, v in lead.items() if k in wanted} for lead in leads]
    return leads


MAX_IDS = 10_000


def by_ids(
    catalog: CatalogSnapshot,
    principal: Principal,
    lead_ids: Sequence[str],
    columns: str | None,
    page_index: int = 1,
    page_size: int = MAX_PAGE_SIZE,
) -> dict[str, Any]:
    """Leads/Retrieve/ByIds: the leads in reach among ``lead_ids``, in the order asked, with the
    columns asked (ProspectID always), one page of them; RecordCount counts them all."""
    if len(lead_ids) > MAX_IDS:
        raise InvalidRequest(f"SearchParameters.LeadIds holds {len(lead_ids)} ids; at most {MAX_IDS} may be asked")
    _check_paging(page_index, page_size)
    wanted = _wanted_columns(catalog, principal, columns, strict=False)
    keys = [key for raw in lead_ids if (key := lead_key(catalog, raw)) is not None]
    with catalog.db.read() as conn:
        rows = repo.find(conn, catalog.fields.table, "prospect_id", keys, principal)
    by_key = {row["prospect_id"]: row for row in rows}
    found = [by_key[key] for key in dict.fromkeys(keys) if key in by_key]
    page = found[(page_index - 1) * page_size : page_index * page_size]
    leads = _wire(catalog, principal, page)
    if wanted is not None:
        leads = [{k: v for k, v in lead.items() if k in wanted} for lead in leads]
    return {"RecordCount": len(found), "Leads": leads}


def _wanted_columns(
    catalog: CatalogSnapshot, principal: Principal, columns: str | None, *, strict: bool = True
) -> set[str] | None:
    """The read names of ``columns`` (comma-separated schema names), ProspectID always; None for
    every field the caller may read. Not ``strict``: a name that is no field the caller can read
    is left out (LeadSquared's ByIds answers without such columns), rather than refused."""
    if not columns or not columns.strip():
        return None
    names = [n.strip() for n in columns.split(",") if n.strip()]
    if strict:
        wanted = {read_name(_readable(catalog, principal, name, "Columns")) for name in names}
    else:
        fields = [catalog.fields.get(name) for name in names]
        wanted = {read_name(f) for f in fields if f is not None and principal.can_read(f)}
    return wanted | {"ProspectID"}


# LeadSquared's render types: Phone 6, Dropdown 13 and Time 21 as its documentation shows them;
# the others are this service's own numbers, with LeadSquared's names.
_RENDER_TYPES = {
    DataType.TEXT: (1, "Textbox"),
    DataType.NUMBER: (3, "Number"),
    DataType.EMAIL: (4, "Email"),
    DataType.PHONE: (6, "Phone"),
    DataType.WEBSITE: (7, "Website"),
    DataType.DATE: (8, "Date"),
    DataType.DATETIME: (9, "DateTime"),
    DataType.BOOLEAN: (10, "Checkbox"),
    DataType.SELECT: (13, "Dropdown"),
    DataType.TIME: (21, "Time"),
}
# The longest value a field of a type without a length limit takes, in its stored form.
_TYPE_MAX_LENGTH = {
    DataType.NUMBER: 16,
    DataType.PHONE: 20,
    DataType.DATE: 10,
    DataType.DATETIME: 19,
    DataType.TIME: 5,
    DataType.BOOLEAN: 1,
}


def _max_length(field_: Field) -> int:
    if field_.effective_max_length is not None:
        return field_.effective_max_length
    if field_.data_type == DataType.SELECT:
        return max((len(option) for option in field_.options), default=0)
    return _TYPE_MAX_LENGTH.get(field_.data_type, 36)


def metadata(catalog: CatalogSnapshot, principal: Principal, schema_name: str | None) -> list[dict[str, Any]]:
    """LeadsMetaData.Get: the fields the caller may read, with LeadSquared's documented keys."""
    fields = [f for f in catalog.fields.fields if principal.can_read(f)]
    if schema_name:
        fields = [f for f in fields if f.key == schema_name.strip().lower()]
    answer = []
    for f in fields:
        render_type, render_name = _RENDER_TYPES[f.data_type]
        item: dict[str, Any] = {
            "Entity": "1",
            "SchemaName": f.schema_name,
            "DisplayName": f.display_name,
            "DataType": f.data_type.value,
            "IsMandatory": f.is_mandatory,
            "MaxLength": str(_max_length(f)),
            "Name": f.schema_name,
            "EntityAttributeType": 1 if not f.schema_name.startswith("mx_") else 2,
            "RenderType": render_type,
            "RenderTypeTextValue": render_name,
            "IsVisible": True,
            "IsSearchable": f.is_unique,
            "AllowMultiple": False,
            "IsLeadIdentifier": f.schema_name in ("EmailAddress", "Phone", "Mobile", "ProspectId"),
            "LockAfterCreate": 1 if f.server_managed else 0,
            "IsSortable": True,
            "Options": [{"Value": option} for option in f.options],
            "IsUnique": f.is_unique,
        }
        answer.append(item)
    return answer


def change_history(
    catalog: CatalogSnapshot, principal: Principal, prospect_id: str | None, limit: int = 1000
) -> list[dict[str, Any]]:
    """The lead's recorded changes, newest first in the order written; fields the caller may not
    read are left out. A lead that does not exist or is out of reach has none, alike."""
    key = lead_key(catalog, prospect_id)
    if key is None:
        return []
    with catalog.db.read() as conn:
        rows = repo.find(conn, catalog.fields.table, "prospect_id", [key], principal)
        changes = repo.history(conn, rows[0]["last_change_id"], limit) if rows else []
    readable = {f.schema_name for f in catalog.fields.fields if principal.can_read(f)}
    return [
        {
            "Field": c["field"],
            "OldValue": c["old_value"],
            "NewValue": c["new_value"],
            "ChangedBy": c["changed_by"],
            "ChangedOn": format_datetime(c["changed_at"]),
            "RequestId": c["request_id"],
        }
        for c in changes
        if c["field"] in readable
    ]


def find_row(catalog: CatalogSnapshot, principal: Principal, field_: Field, value: Any) -> Mapping[str, Any] | None:
    """The lead in reach whose unique ``field_`` holds ``value``, as stored."""
    with catalog.db.read() as conn:
        rows = repo.find(conn, catalog.fields.table, field_.column, [value], principal)
    return rows[0] if rows else None


def lead_key(catalog: CatalogSnapshot, prospect_id: str | None) -> str | None:
    """A ProspectId as sent (``leadId``, ``id``) in its stored form; None when no lead can have it."""
    try:
        key: str | None = normalize(catalog.fields.system("ProspectId"), prospect_id, catalog.account.phone_rules)
    except InvalidValue:
        return None
    return key
