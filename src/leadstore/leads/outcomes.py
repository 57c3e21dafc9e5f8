"""What became of each lead of a bulk call, and the LeadSquared-shaped answer that says so
(spec 4.3 and 4.4). No SQLAlchemy here: SQLite's writer process renders an answer too, to store
it with its Idempotency-Key in the call's own transaction."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class ReasonCode(StrEnum):
    """Why a lead was not updated; stable, documented in the API docs."""

    LEAD_NOT_FOUND = "LEAD_NOT_FOUND"  # also: not permitted, or a phone key without country code
    FIELDS_EMPTY = "FIELDS_EMPTY"
    SEARCH_KEY_MISSING = "SEARCH_KEY_MISSING"
    DUPLICATE_LEAD_IN_REQUEST = "DUPLICATE_LEAD_IN_REQUEST"
    DUPLICATE_ATTRIBUTE = "DUPLICATE_ATTRIBUTE"
    UNKNOWN_ATTRIBUTE = "UNKNOWN_ATTRIBUTE"
    FIELD_READ_ONLY = "FIELD_READ_ONLY"
    OWNER_NOT_PERMITTED = "OWNER_NOT_PERMITTED"
    INVALID_VALUE = "INVALID_VALUE"
    TOO_LONG = "TOO_LONG"
    MANDATORY_MISSING = "MANDATORY_MISSING"
    DUPLICATE_VALUE = "DUPLICATE_VALUE"
    PRECONDITION_FAILED = "PRECONDITION_FAILED"


REASON_CODE_MEANINGS: dict[ReasonCode, str] = {
    ReasonCode.LEAD_NOT_FOUND: "no lead has the key's value, the caller may not update that lead, or the value cannot "
    "match any lead (e.g. a phone without a country code the account requires); UnProcessedLeads with "
    "PushNonExistentLeadsToUnProcessedList, else FailedLeads",
    ReasonCode.FIELDS_EMPTY: "the lead's Fields is empty or missing",
    ReasonCode.SEARCH_KEY_MISSING: "Fields has no value for the search key (SearchByKey, else ProspectId)",
    ReasonCode.DUPLICATE_LEAD_IN_REQUEST: "the same lead is earlier in this request; the Reason names its index",
    ReasonCode.DUPLICATE_ATTRIBUTE: "an attribute is given twice in one lead's Fields",
    ReasonCode.UNKNOWN_ATTRIBUTE: "an attribute is no lead field the caller can see",
    ReasonCode.FIELD_READ_ONLY: "an attribute is set by the server, or read-only for the caller",
    ReasonCode.OWNER_NOT_PERMITTED: "OwnerId names a user whose leads the caller may not update",
    ReasonCode.INVALID_VALUE: "a value is not valid for its field's type or options, or OwnerId names no user",
    ReasonCode.TOO_LONG: "a value is longer than its field's maximum length",
    ReasonCode.MANDATORY_MISSING: "a mandatory field would be emptied",
    ReasonCode.DUPLICATE_VALUE: "a unique value is held by another lead, or taken by an earlier lead of this request",
    ReasonCode.PRECONDITION_FAILED: "a field named in the lead's Expect does not hold the expected value now (checked "
    "in the write's transaction); the Reason names the first such field and its current value",
}
assert set(REASON_CODE_MEANINGS) == set(ReasonCode)

NOT_FOUND_REASON = "Lead does not exist in the system or You do not have permission to update the lead"


def duplicate_message(display_name: str) -> str:
    return f"A Lead with same {display_name} already exists."


Failure = tuple[ReasonCode, str]


@dataclass(slots=True)
class LeadResult:
    """What the database made of one lead it was asked to write: found (or created) or not, the
    fields the write changed (schema names), or why it was refused there (a unique value taken,
    an owner who is no user)."""

    found: bool
    changed: list[str] = field(default_factory=list)
    failure: Failure | None = None
    created: bool = False
    prospect_id: str | None = None  # of a lead found (a created lead's is the caller's own)


NOT_FOUND = LeadResult(False)


@dataclass(frozen=True, slots=True)
class Item:
    """A lead of the request as its answer names it; ``failure`` when it was settled before the
    database was asked (else the database's ``LeadResult`` for ``index`` decides). ``extra``
    goes into its SuccessfulLeads item."""

    index: int
    identifier_value: Any
    failure: Failure | None = None
    extra: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to a call, but for what the database says about each lead."""

    identifier: str
    items: Sequence[Item]
    push_unprocessed: bool = False
    changed_as: str = "ChangedFields"  # the name that lists the fields each lead's write changed

    def render(self, results: Mapping[int, LeadResult]) -> dict[str, Any]:
        lists: dict[str, list[dict[str, Any]]] = {"SuccessfulLeads": [], "FailedLeads": [], "UnProcessedLeads": []}
        for item in self.items:
            failure = item.failure
            if failure is None:
                result = results.get(item.index, NOT_FOUND)
                if not result.found:
                    failure = (ReasonCode.LEAD_NOT_FOUND, NOT_FOUND_REASON)
                elif result.failure is not None:
                    failure = result.failure
                else:
                    lists["SuccessfulLeads"].append(
                        {
                            "Identifier": self.identifier,
                            "IdentifierValue": item.identifier_value,
                            "Index": item.index,
                            self.changed_as: result.changed,
                            **(item.extra or {}),
                        }
                    )
                    continue
            code, reason = failure
            unprocessed = self.push_unprocessed and code == ReasonCode.LEAD_NOT_FOUND
            lists["UnProcessedLeads" if unprocessed else "FailedLeads"].append(
                {
                    "Identifier": self.identifier,
                    "IdentifierValue": item.identifier_value,
                    "Reason": reason,
                    "Index": item.index,
                    "ReasonCode": code,
                }
            )
        status: dict[str, Any] = {
            "TotalCount": len(self.items),
            "SuccessCount": len(lists["SuccessfulLeads"]),
            "FailureCount": len(lists["FailedLeads"]),
        }
        if self.push_unprocessed:
            status["UnProcessedCount"] = len(lists["UnProcessedLeads"])
        status["Message"] = "Processed" if lists["SuccessfulLeads"] else "Error"
        return {"Status": status, "Details": {name: items for name, items in lists.items() if items}}

    def render_json(self, results: Mapping[int, LeadResult]) -> bytes:
        return orjson.dumps(self.render(results))
