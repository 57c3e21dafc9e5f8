"""Update Leads in Bulk v2 (spec section 4): up to 25 leads a call, each atomic, each with an
outcome.

A call is checked whole in memory first (shape, fields, values). What only the database can
tell (which leads exist and are in the caller's reach, which unique values other leads hold,
which owners are users) is settled by one write, a ``leadstore.leads.plan.BulkWrite``, which the
database runs the way its engine does best (``Database.write_bulk``), with a bounded number of
statements whatever the number of leads sent or stored.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadstore.auth.principal import Principal
from leadstore.catalog import CatalogSnapshot
from leadstore.db import Database
from leadstore.errors import InvalidRequest, shown
from leadstore.fields.model import DataType, Field
from leadstore.fields.registry import FieldRegistry
from leadstore.fields.validation import InvalidValue, normalize
from leadstore.leads.changes import FieldPlan, FieldRejected, Pairs, expected, parse_pairs
from leadstore.leads.outcomes import NOT_FOUND_REASON, Answer, Failure, Item, ReasonCode
from leadstore.leads.plan import BulkWrite, Column, IdempotencyRecord, LeadWrite


@dataclass(frozen=True)
class BulkRequest:
    search_by: str | None
    leads: list[Pairs]
    push_unprocessed: bool = False
    dry_run: bool = False
    # Each lead's preconditions (spec 10): the values its fields must hold now to be written.
    expects: list[Pairs | None] | None = None


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs several times more
class _Checked:
    """A lead as far as it can be judged without the database."""

    index: int
    identifier_value: Any
    key: Any = None  # the normalised search-key value; None when the lead cannot be found
    values: Mapping[Field, Any] = field(default_factory=dict)
    failure: Failure | None = None
    expect: Mapping[Field, Any] | None = None


def parse_request(body: Any, max_leads: int) -> BulkRequest:
    """Check the request's shape; ``InvalidRequest`` names the first offending position."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with a LeadPropertiesList array")
    search_by = body.get("SearchByKey")
    if search_by is not None and not isinstance(search_by, str):
        raise InvalidRequest("SearchByKey must be a string naming a unique lead field, e.g. EmailAddress")
    options = body.get("Options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidRequest('Options must be an object, e.g. {"PushNonExistentLeadsToUnProcessedList": true}')
    for name in ("PushNonExistentLeadsToUnProcessedList", "DryRun"):
        if options.get(name) is not None and not isinstance(options[name], bool):
            raise InvalidRequest(f"Options.{name} must be true or false")
    items = body.get("LeadPropertiesList")
    if not isinstance(items, list):
        raise InvalidRequest('LeadPropertiesList is missing or not an array; send an array of {"Fields": [...]}')
    if not items:
        raise InvalidRequest(f"LeadPropertiesList is empty; send between 1 and {max_leads} leads")
    if len(items) > max_leads:
        raise InvalidRequest(
            f"LeadPropertiesList holds {len(items)} leads; at most {max_leads} may be sent in one call"
        )
    leads = [_parse_lead(item, i) for i, item in enumerate(items)]
    expects = [_parse_expect(item, i) for i, item in enumerate(items)]
    return BulkRequest(
        search_by=search_by,
        leads=leads,
        push_unprocessed=bool(options.get("PushNonExistentLeadsToUnProcessedList")),
        dry_run=bool(options.get("DryRun")),
        expects=expects if any(e is not None for e in expects) else None,
    )


def _parse_lead(item: Any, i: int) -> Pairs:
    where = f"LeadPropertiesList[{i}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object with a Fields array")
    fields = item.get("Fields")
    return [] if fields is None else parse_pairs(fields, f"{where}.Fields")


def _parse_expect(item: dict[str, Any], i: int) -> Pairs | None:
    expect = item.get("Expect")
    return None if expect is None else parse_pairs(expect, f"LeadPropertiesList[{i}].Expect")


def search_field(registry: FieldRegistry, name: str | None, principal: Principal) -> Field:
    """The unique field that finds each lead: ``SearchByKey``, else ProspectId (LeadSquared).
    A field hidden from the caller cannot find leads: it is answered as a field that does not exist."""
    field_ = registry.get(name or "ProspectId")
    if field_ is None or not principal.can_read(field_):
        raise InvalidRequest(f"SearchByKey {shown(name)} names no lead field; use a unique field such as EmailAddress")
    if not field_.is_unique:
        unique = ", ".join(f.schema_name for f in registry.unique_fields if principal.can_read(f))
        raise InvalidRequest(f"SearchByKey {field_.schema_name} is not a unique field; use one of: {unique}")
    return field_


class BulkUpdate:
    """One call's work: ``run`` returns the LeadSquared-shaped answer."""

    def __init__(
        self, db: Database, catalog: CatalogSnapshot, principal: Principal, request: BulkRequest, request_id: str
    ) -> None:
        self.db = db
        self.registry = catalog.fields
        self.phone = catalog.account.phone_rules
        self.principal = principal
        self.request = request
        self.request_id = request_id
        self.key_field = search_field(self.registry, request.search_by, principal)
        self._plans: dict[tuple[str, ...], FieldPlan] = {}  # by the attribute names a lead sends

    async def run(self, idempotency: IdempotencyRecord | None = None) -> dict[str, Any]:
        """Write the call. With ``idempotency`` its answer is stored in the same transaction
        (``plan.KeyTaken`` when a concurrent call with that key committed first)."""
        answer, write = self.plan(self.check())
        if idempotency is not None:
            write.idempotency, write.answer = idempotency, answer
        return answer.render(await self.db.write_bulk(write))

    def check(self) -> list[_Checked]:
        """Everything that can be judged without the database."""
        checked = [self._check(i, pairs) for i, pairs in enumerate(self.request.leads)]
        for c, expect in zip(checked, self.request.expects or (), strict=False):
            if expect is not None and c.failure is None:
                try:
                    c.expect = expected(self.registry, self.principal, expect, self.phone)
                except FieldRejected as exc:
                    c.failure = (exc.code, exc.message)
        return checked

    def _check(self, index: int, pairs: Pairs) -> _Checked:
        if not pairs:
            return _Checked(index, None, failure=(ReasonCode.FIELDS_EMPTY, "Fields cannot be empty"))
        attributes = tuple([attribute for attribute, _ in pairs])
        plan = self._plans.get(attributes)
        if plan is None:
            plan = self._plans[attributes] = FieldPlan(self.registry, self.principal, attributes, self.key_field)
        name = self.key_field.schema_name
        if not plan.key_positions:
            return _Checked(
                index,
                None,
                failure=(ReasonCode.SEARCH_KEY_MISSING, f"Fields has no {name} to find the lead by"),
            )
        identifier = pairs[plan.key_positions[0]][1]
        if len(plan.key_positions) > 1:
            return _Checked(
                index, identifier, failure=(ReasonCode.DUPLICATE_ATTRIBUTE, f"{name} is given more than once")
            )
        try:
            key = normalize(self.key_field, identifier, self.phone)
        except InvalidValue:
            key = None  # no lead can hold an invalid value (the seed's FAQ: a phone without country code)
        try:
            values = plan.values([raw for _, raw in pairs], self.phone)
        except FieldRejected as exc:
            return _Checked(index, identifier, key, failure=(exc.code, exc.message))
        if key is None:
            return _Checked(index, identifier, failure=(ReasonCode.LEAD_NOT_FOUND, NOT_FOUND_REASON))
        return _Checked(index, identifier, key, values)

    def plan(self, checked: list[_Checked]) -> tuple[Answer, BulkWrite]:
        """The answer but for what the database says, and the write that asks it. A lead named
        again later in the call is answered as a duplicate of the first mention."""
        items: list[Item] = []
        leads: list[LeadWrite] = []
        columns: dict[Field, int] = {}
        first_index: dict[Any, int] = {}
        integer_key = self.key_field.column == "auto_id"
        for c in checked:
            earlier = first_index.setdefault(c.key, c.index) if c.key is not None else c.index
            if earlier != c.index:
                reason = f"The same lead is already at LeadPropertiesList[{earlier}]"
                items.append(Item(c.index, c.identifier_value, (ReasonCode.DUPLICATE_LEAD_IN_REQUEST, reason)))
            elif c.failure is not None:
                failure = c.failure
                if failure[0] == ReasonCode.LEAD_NOT_FOUND:
                    failure = (ReasonCode.LEAD_NOT_FOUND, NOT_FOUND_REASON)
                items.append(Item(c.index, c.identifier_value, failure))
            else:
                items.append(Item(c.index, c.identifier_value))
                values = {columns.setdefault(f, len(columns)): v for f, v in c.values.items()}
                lead = LeadWrite(c.index, int(c.key) if integer_key else c.key, values)
                if c.expect is not None:
                    lead.expect = {columns.setdefault(f, len(columns)): v for f, v in c.expect.items()}
                leads.append(lead)
        answer = Answer(self.key_field.schema_name, items, self.request.push_unprocessed)
        write = write_of(self.registry, self.principal, self.key_field, list(columns), leads, self.request_id)
        write.dry_run = self.request.dry_run
        return answer, write


def write_of(
    registry: FieldRegistry,
    principal: Principal,
    key: Field,
    fields: list[Field],
    leads: list[LeadWrite],
    request_id: str,
) -> BulkWrite:
    """The write of ``leads`` (values by position in ``fields``), found by ``key``, by ``principal``."""
    owners = principal.lead_owners
    return BulkWrite(
        table=registry.table.name,
        key=_column(registry, key),
        columns=[_column(registry, f) for f in fields],
        leads=leads,
        owners=None if owners is None else sorted(owners),
        user_id=principal.user_id,
        request_id=request_id,
        now=datetime.now(UTC).replace(tzinfo=None),
    )


def _column(registry: FieldRegistry, field_: Field) -> Column:
    kind = "text"
    if field_.column == "auto_id":
        kind = "integer"
    elif field_.data_type == DataType.NUMBER:
        kind = "number"
    elif field_.server_managed and field_.data_type == DataType.DATETIME:
        kind = "datetime"  # CreatedOn, ModifiedOn: real date-times, not text
    owner = field_ is registry.get("OwnerId")
    return Column(field_.column, field_.schema_name, field_.display_name, kind, field_.is_unique, owner)
