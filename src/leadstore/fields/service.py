"""Adding custom ``mx_`` fields at run time: a real column on the lead table (with a unique
index when the field is unique), so lookups by any unique field are index lookups."""

import json
from collections.abc import Sequence

from sqlalchemy import Connection, Index, func, insert, select, text

from leadstore import catalog
from leadstore.errors import AdminInputError
from leadstore.fields.model import CUSTOM_NAME, TEXT_MAX_LENGTH, UNIQUE_MAX_LENGTH, DataType, Field
from leadstore.fields.registry import FieldRegistry, custom_column
from leadstore.models import CustomField


def add(
    conn: Connection,
    registry: FieldRegistry,
    schema_name: str,
    data_type: str,
    display_name: str | None = None,
    unique: bool = False,
    mandatory: bool = False,
    max_length: int | None = None,
    options: Sequence[str] = (),
) -> Field:
    if not CUSTOM_NAME.match(schema_name):
        raise AdminInputError(
            f"{schema_name!r} is not a custom field name: it must start with mx_ and a letter, then "
            "letters, digits or _ (at most 63 characters), e.g. mx_City"
        )
    if registry.get(schema_name) is not None:
        raise AdminInputError(f"a field named {schema_name!r} already exists (names are case-insensitive)")
    type_ = _data_type(data_type)
    if max_length is not None and not 1 <= max_length <= TEXT_MAX_LENGTH:
        raise AdminInputError(f"--max-length must be between 1 and {TEXT_MAX_LENGTH}")
    options = [o.strip() for o in options if o.strip()]
    if type_ == DataType.SELECT and not options:
        raise AdminInputError("a Select field needs its options: --option VALUE (repeat for each)")
    if type_ != DataType.SELECT and options:
        raise AdminInputError("--option is only for Select fields")
    if unique and type_ in (DataType.BOOLEAN, DataType.SELECT):
        raise AdminInputError(f"a {type_.value} field cannot be unique")
    if unique and max_length is not None and max_length > UNIQUE_MAX_LENGTH:
        raise AdminInputError(
            f"a unique field's --max-length is at most {UNIQUE_MAX_LENGTH} (its values are kept in an index)"
        )
    field_ = Field(
        schema_name=schema_name,
        column=schema_name.lower(),
        data_type=type_,
        display_name=display_name or schema_name[3:],
        is_unique=unique,
        is_mandatory=mandatory,
        max_length=max_length,
        options=tuple(options),
    )
    _add_column(conn, registry, field_)
    position = conn.execute(select(func.count()).select_from(CustomField)).scalar_one()
    conn.execute(
        insert(CustomField).values(
            schema_name=field_.schema_name,
            column_name=field_.column,
            display_name=field_.display_name,
            data_type=field_.data_type.value,
            is_unique=unique,
            is_mandatory=mandatory,
            max_length=max_length,
            options=json.dumps(options),
            position=position,
        )
    )
    catalog.bump_revision(conn)
    return field_


def _data_type(name: str) -> DataType:
    for type_ in DataType:
        if type_.value.lower() == name.strip().lower():
            return type_
    raise AdminInputError(f"unknown type {name!r}; types are: {', '.join(t.value for t in DataType)}")


def _add_column(conn: Connection, registry: FieldRegistry, field_: Field) -> None:
    # The column name passed CUSTOM_NAME above; it is still quoted by the dialect's own rules.
    column = custom_column(field_)
    name = conn.dialect.identifier_preparer.quote(field_.column)
    type_sql = column.type.compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE leads ADD COLUMN {name} {type_sql}"))
    if field_.is_unique:
        table = FieldRegistry.build([*_customs(registry), field_]).table
        Index(f"uq_leads_{field_.column}", table.c[field_.column], unique=True).create(conn)


def _customs(registry: FieldRegistry) -> list[Field]:
    return [f for f in registry.fields if f.schema_name.startswith("mx_")]
