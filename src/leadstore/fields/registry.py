"""The set of fields an account has right now, and the lead table that holds them."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Column, Float, MetaData, Table, Text

from leadstore.fields.model import SYSTEM_FIELDS, DataType, Field
from leadstore.models import Lead

# Reads spell the id ProspectID (LeadSquared); writes accept either spelling.
READ_NAMES = {"ProspectId": "ProspectID"}


def custom_column(field_: Field) -> Column[object]:
    type_ = Float() if field_.data_type == DataType.NUMBER else Text()
    return Column(field_.column, type_)


@dataclass(frozen=True)
class FieldRegistry:
    fields: tuple[Field, ...]
    table: Table
    _by_key: dict[str, Field] = field(default_factory=dict)
    # Names as callers usually spell them, found without lower-casing (a bulk call looks up
    # every attribute it sends).
    _by_name: dict[str, Field] = field(default_factory=dict)

    @classmethod
    def build(cls, custom: Iterable[Field]) -> "FieldRegistry":
        custom = tuple(custom)
        metadata = MetaData()
        table = Lead.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
        for field_ in custom:
            table.append_column(custom_column(field_))
        fields = SYSTEM_FIELDS + custom
        by_key = {f.key: f for f in fields}
        by_name = {f.schema_name: f for f in fields} | {read_name(f): f for f in fields}
        return cls(fields, table, by_key, by_name)

    def get(self, name: str) -> Field | None:
        """The field a caller means by ``name`` (matched case-insensitively)."""
        return self._by_name.get(name) or self._by_key.get(name.lower())

    def system(self, schema_name: str) -> Field:
        """A system field, which every account has (``get`` for a name a caller sent)."""
        field_ = self._by_name.get(schema_name)
        if field_ is None:
            raise KeyError(schema_name)
        return field_

    def column(self, field_: Field) -> Column[object]:
        return self.table.c[field_.column]

    @property
    def unique_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.is_unique)


def read_name(field_: Field) -> str:
    return READ_NAMES.get(field_.schema_name, field_.schema_name)
