"""Checking the fields a caller sends for one lead, shared by every endpoint that writes.

A lead's fields are checked whole before anything is written, so a lead with one bad field
leaves no trace, and each failure says which field broke which rule.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from leadstore.auth.principal import Principal
from leadstore.errors import InvalidRequest, cut
from leadstore.fields.model import Field
from leadstore.fields.registry import FieldRegistry
from leadstore.fields.validation import InvalidValue, PhoneRules, normalize
from leadstore.leads.outcomes import ReasonCode


class FieldRejected(Exception):
    def __init__(self, code: ReasonCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Pairs = list[tuple[str, Any]]

# Far more fields than a lead has in practice: a longer list is a mistake, refused before any work.
MAX_FIELDS_PER_LEAD = 500


def parse_pairs(fields: Any, where: str) -> Pairs:
    """``[{"Attribute": ..., "Value": ...}, ...]`` as pairs; ``InvalidRequest`` names the position."""
    if not isinstance(fields, list):
        raise InvalidRequest(f'{where} must be an array of {{"Attribute": ..., "Value": ...}} objects')
    if len(fields) > MAX_FIELDS_PER_LEAD:
        raise InvalidRequest(
            f"{where} holds {len(fields)} fields; at most {MAX_FIELDS_PER_LEAD} may be sent for one lead"
        )
    pairs: Pairs = []
    for j, pair in enumerate(fields):
        # The position is spelt out only for an error: this loop runs for every field of a call.
        if type(pair) is not dict or "Attribute" not in pair or "Value" not in pair:
            raise InvalidRequest(f"{where}[{j}] must be an object with Attribute and Value")
        attribute, value = pair["Attribute"], pair["Value"]
        if type(attribute) is not str or not attribute:
            raise InvalidRequest(f"{where}[{j}].Attribute must be a non-empty string, the field's schema name")
        if value is not None and type(value) is not str:
            value = _as_text(value, f"{where}[{j}].Value")
        pairs.append((attribute, value))
    return pairs


def _as_text(value: Any, where: str) -> str:
    """A JSON number or boolean as text (spec 1): the number as JSON wrote it (42, 3.5), a
    boolean as true or false; then validated as any string. An object or an array is no value."""
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    raise InvalidRequest(f"{where} must be a string, a number, true, false or null; objects and arrays are no value")


def split_pseudo(pairs: Pairs, *names: str) -> tuple[Pairs, dict[str, Any]]:
    """``pairs`` without the pseudo-attributes ``names`` (``SearchBy``..., in any letter case),
    and the first value of each of them sent."""
    wanted = {name.lower(): name for name in names}
    found: dict[str, Any] = {}
    rest: Pairs = []
    for attribute, value in pairs:
        name = wanted.get(attribute.lower())
        if name is None:
            rest.append((attribute, value))
        else:
            found.setdefault(name, value)
    return rest, found


def parse_fields(
    registry: FieldRegistry,
    principal: Principal,
    pairs: Sequence[tuple[str, Any]],
    phone: PhoneRules,
    skip: Field | None = None,
) -> dict[Field, Any]:
    """The stored values of ``pairs`` by field; ``skip`` is the search key, which is not written."""
    plan = FieldPlan(registry, principal, [attribute for attribute, _ in pairs], skip)
    return plan.values([raw for _, raw in pairs], phone)


class FieldPlan:
    """What one lead's attribute names settle for one caller, before any value is read: the field
    each name means, where the search key ``skip`` is, and the first rule the names break.

    The leads of a bulk call almost always send the same names, so the call makes one plan per
    list of names and then only checks values lead by lead."""

    def __init__(
        self, registry: FieldRegistry, principal: Principal, attributes: Sequence[str], skip: Field | None = None
    ) -> None:
        fields = [registry.get(attribute) for attribute in attributes]
        self.key_positions = [i for i, field_ in enumerate(fields) if skip is not None and field_ is skip]
        self._principal = principal
        self._owner = registry.get("OwnerId")
        self._steps: list[tuple[int, Field]] = []  # the fields to write, by position in the lead
        self._failure: tuple[ReasonCode, str] | None = None  # the names' first broken rule
        seen: set[Field] = set()
        for position, (attribute, field_) in enumerate(zip(attributes, fields, strict=True)):
            if field_ is not None and field_ is skip and principal.can_read(field_):
                continue
            self._failure = _name_failure(principal, attribute, field_, seen)
            if self._failure is not None:
                break
            assert field_ is not None  # else a failure above
            seen.add(field_)
            self._steps.append((position, field_))

    def values(self, raws: Sequence[Any], phone: PhoneRules) -> dict[Field, Any]:
        """The stored value of each field; ``FieldRejected`` names the first rule broken, in the
        order the fields were sent (a bad value before an unknown name is reported first)."""
        values: dict[Field, Any] = {}
        for position, field_ in self._steps:
            try:
                value = normalize(field_, raws[position], phone)
            except InvalidValue as exc:
                raise FieldRejected(ReasonCode(exc.code), exc.message) from None
            if field_ is self._owner and not self._principal.may_own(value):
                raise FieldRejected(
                    ReasonCode.OWNER_NOT_PERMITTED,
                    "OwnerId must name a user whose leads you may update (your lead access: "
                    f"{self._principal.lead_access.value})",
                )
            values[field_] = value
        if self._failure is not None:
            raise FieldRejected(*self._failure)
        return values


def _name_failure(
    principal: Principal, attribute: str, field_: Field | None, seen: set[Field]
) -> tuple[ReasonCode, str] | None:
    # A field hidden from the caller is answered exactly as one that does not exist.
    if field_ is None or not principal.can_read(field_):
        return (
            ReasonCode.UNKNOWN_ATTRIBUTE,
            f"{cut(attribute)} is not a lead field; see LeadsMetaData.Get for the schema names",
        )
    if field_ in seen:
        return ReasonCode.DUPLICATE_ATTRIBUTE, f"{field_.schema_name} is given more than once"
    if not principal.can_write(field_):
        whose = "set by the server" if field_.server_managed else "read-only for you (permission template)"
        return ReasonCode.FIELD_READ_ONLY, f"{field_.schema_name} is {whose}"
    return None


def check_complete(registry: FieldRegistry, principal: Principal, values: Mapping[Field, Any]) -> None:
    """Every way of creating a lead: each mandatory field has a value. A field hidden from the
    caller is not named, as everywhere; the caller learns only that it cannot create leads."""
    missing = [f for f in registry.fields if f.is_mandatory and values.get(f) is None]
    named = [f.schema_name for f in missing if principal.can_read(f)]
    if named:
        raise FieldRejected(ReasonCode.MANDATORY_MISSING, f"{', '.join(named)} is mandatory; send a value")
    if missing:
        raise FieldRejected(
            ReasonCode.MANDATORY_MISSING,
            "A mandatory field hidden by your permission template has no value, so you cannot create leads; "
            "ask an administrator to show you the field or to make it optional",
        )


def expected(
    registry: FieldRegistry, principal: Principal, pairs: Sequence[tuple[str, Any]], phone: PhoneRules
) -> dict[Field, Any]:
    """A lead's ``Expect`` (spec 10): each field's value in its stored form, null or empty for
    empty. A field the caller may not read is an unknown attribute, as in Fields."""
    values: dict[Field, Any] = {}
    for attribute, raw in pairs:
        field_ = registry.get(attribute)
        failure = _name_failure(principal, attribute, field_, set(values))
        if failure is not None and failure[0] != ReasonCode.FIELD_READ_ONLY:  # a read-only field may be expected
            raise FieldRejected(*failure)
        assert field_ is not None
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[field_] = None
            continue
        try:
            values[field_] = normalize(field_, raw, phone)
        except InvalidValue as exc:
            raise FieldRejected(ReasonCode.INVALID_VALUE, f"Expect: {exc.message}") from None
    return values
