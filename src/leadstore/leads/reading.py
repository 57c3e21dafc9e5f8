"""How a stored lead reads on the wire: schema names to strings, hidden fields left out."""

from collections.abc import Mapping
from typing import Any

from leadstore.auth.principal import Principal
from leadstore.fields.registry import FieldRegistry, read_name
from leadstore.fields.validation import to_wire


def lead_to_wire(registry: FieldRegistry, principal: Principal, row: Mapping[Any, Any]) -> dict[str, str | None]:
    return {read_name(f): to_wire(f, row[f.column]) for f in registry.fields if principal.can_read(f)}
