"""The read endpoints of spec section 5. A caller sees only the leads its scope allows and
only the fields it may read; a hidden field can be neither shown, searched nor sorted on."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Select, String, or_, select

from leadstore.auth.principal import Principal
from leadstore.catalog import CatalogSnapshot
from leadstore.errors import InvalidRequest, shown
from leadstore.fields.model import Field
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
_OPERATORS = {
    "=": lambda c, v: c == v,
    "<>": lambda c, v: c != v,
    ">": lambda c, v: c > v,
    "<": lambda c, v: c < v,
    ">=": lambda c, v: c >= v,
    "<=": lambda c, v: c <= v,
    # Case-insensitive on both databases (SQLite's LIKE is, PostgreSQL's is not); % and _ are the
    # caller's wildcards, a backslash is literal on both (PostgreSQL would read it as an escape).
    "LIKE": lambda c, v: c.ilike((v if "%" in v else f"%{v}%").replace("\\", "\\\\"), escape="\\"),
}


def _scoped(catalog: CatalogSnapshot, principal: Principal) -> Select[Any]:
    table = catalog.fields.table
    query = select(table)
    scope = repo.scope_filter(table, principal)
    return query if scope is None else query.where(scope)


def _run(catalog: CatalogSnapshot, principal: Principal, query: Select[Any]) -> list[Lead]:
    with catalog.db.read() as conn:
        rows = conn.execute(query).mappings().all()
    return [lead_to_wire(catalog.fields, principal, row) for row in rows]


def _by_value(catalog: CatalogSnapshot, principal: Principal, names: Sequence[str], raw: str | None) -> list[Lead]:
    """Leads whose unique field ``names`` (any of them) hold ``raw``, normalised as that field is.

    One query per field: each is a lookup in that field's unique index, where ``a = ? OR b = ?``
    beside a scope filter may lead SQLite to walk the owner index instead."""
    queries = []
    for name in names:
        field_ = catalog.fields.get(name)
        if field_ is None or not principal.can_read(field_) or not raw:
            continue
        try:
            value = normalize(field_, raw, catalog.account.phone_rules)
        except InvalidValue:
            continue  # no lead can hold a value that is not valid
        queries.append(_scoped(catalog, principal).where(catalog.fields.column(field_) == value))
    found: dict[int, Any] = {}
    with catalog.db.read() as conn:
        for query in queries:
            found.update((row["auto_id"], row) for row in conn.execute(query.limit(QUICK_SEARCH_LIMIT)).mappings())
    rows = [found[auto_id] for auto_id in sorted(found)][:QUICK_SEARCH_LIMIT]
    return [lead_to_wire(catalog.fields, principal, row) for row in rows]


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
    conditions = []
    for name in _QUICK_SEARCH_FIELDS:
        field_ = catalog.fields.get(name)
        if field_ is not None and principal.can_read(field_):
            # Spelt as the field stores values (e.g. full-width digits as ASCII in a phone).
            fragment = normalize_fragment(field_, key)
            if fragment:
                pattern = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                conditions.append(catalog.fields.column(field_).ilike(pattern, escape="\\"))
    if not conditions:  # every searched field is hidden from the caller: nothing can match
        return []
    query = _scoped(catalog, principal).where(or_(*conditions)).order_by(catalog.fields.table.c.auto_id)
    return _run(catalog, principal, query.limit(QUICK_SEARCH_LIMIT))


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


def search(catalog: CatalogSnapshot, principal: Principal, q: LeadQuery) -> list[Lead]:
    """Leads.Get: one condition, optional sorting, paging from 1, selected columns."""
    field_ = _readable(catalog, principal, q.lookup_name, "LookupName")
    operator = q.operator.strip().upper()
    if operator not in _OPERATORS:
        raise InvalidRequest(f"SqlOperator {shown(q.operator)} is not supported; use one of: {', '.join(_OPERATORS)}")
    if not 1 <= q.page_size <= MAX_PAGE_SIZE or not 1 <= q.page_index <= MAX_PAGE_INDEX:
        raise InvalidRequest(
            f"Paging needs PageIndex from 1 to {MAX_PAGE_INDEX} and PageSize from 1 to {MAX_PAGE_SIZE}"
        )
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
    query = _scoped(catalog, principal).where(_OPERATORS[operator](column, value))
    table = catalog.fields.table
    if q.sort_column:
        sort = catalog.fields.column(_readable(catalog, principal, q.sort_column, "Sorting.ColumnName"))
        query = query.order_by(sort.desc() if q.descending else sort.asc())
    query = query.order_by(table.c.auto_id).offset((q.page_index - 1) * q.page_size).limit(q.page_size)
    leads = _run(catalog, principal, query)
    if q.columns:
        wanted = {
            read_name(_readable(catalog, principal, n.strip(), "Columns")) for n in q.columns.split(",") if n.strip()
        }
        wanted.add("ProspectID")
        leads = [{k: v for k, v in lead.items() if k in wanted} for lead in leads]
    return leads


def metadata(catalog: CatalogSnapshot, principal: Principal, schema_name: str | None) -> list[dict[str, Any]]:
    fields = [f for f in catalog.fields.fields if principal.can_read(f)]
    if schema_name:
        fields = [f for f in fields if f.key == schema_name.strip().lower()]
    return [
        {
            "SchemaName": f.schema_name,
            "DisplayName": f.display_name,
            "DataType": f.data_type.value,
            "IsMandatory": f.is_mandatory,
            "MaxLength": str(f.effective_max_length or ""),
            "Options": [{"Value": option} for option in f.options],
            "IsUnique": f.is_unique,
        }
        for f in fields
    ]


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


def find_one(catalog: CatalogSnapshot, principal: Principal, field_: Field, value: Any) -> str | None:
    """The ProspectId of the lead in reach whose unique ``field_`` holds ``value``."""
    with catalog.db.read() as conn:
        rows = repo.find(conn, catalog.fields.table, field_.column, [value], principal, columns=["prospect_id"])
    return str(rows[0]["prospect_id"]) if rows else None


def lead_key(catalog: CatalogSnapshot, prospect_id: str | None) -> str | None:
    """A ProspectId as sent (``leadId``, ``id``) in its stored form; None when no lead can have it."""
    field_ = catalog.fields.get("ProspectId")
    assert field_ is not None  # a system field
    try:
        key: str | None = normalize(field_, prospect_id, catalog.account.phone_rules)
    except InvalidValue:
        return None
    return key
