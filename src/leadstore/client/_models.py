"""What the client returns: leads as plain dicts, everything else as typed models.

Attributes are snake_case; LeadSquared's wire names are their aliases, so
``BulkItem.model_validate({"Identifier": ...})`` and ``item.identifier`` both work.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator

Lead: TypeAlias = dict[str, str | None]
"""A lead: schema name to value, read back as a string or None."""


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, coerce_numbers_to_str=True)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The rate-limit headers of the last answer (leadstore sends them; LeadSquared does not)."""

    limit: int
    remaining: int
    reset_seconds: float


class Outcome(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    UNPROCESSED = "UnProcessed"


class KeptField(_Wire):
    """A field a revert left alone: ``changed_by`` is the request id of its latest change."""

    attribute: str = Field(alias="Attribute")
    changed_by: str | None = Field(None, alias="ChangedBy")


class BulkItem(_Wire):
    identifier: str = Field(alias="Identifier")
    identifier_value: Any = Field(alias="IdentifierValue")
    reason: str | None = Field(None, alias="Reason")
    index: int | None = Field(None, alias="Index")
    """Position in the request's LeadPropertiesList (a leadstore extension)."""
    reason_code: str | None = Field(None, alias="ReasonCode")
    """A stable code for why the lead was not updated (a leadstore extension), e.g.
    ``LEAD_NOT_FOUND``, ``DUPLICATE_VALUE`` or ``PRECONDITION_FAILED``."""
    changed_fields: list[str] | None = Field(None, alias="ChangedFields")
    """On a successful lead, the fields the call changed; [] when it held every value already
    (a leadstore extension)."""
    reverted: list[str] | None = Field(None, alias="Reverted")
    """In a revert's answer: the fields put back to their value before the reverted call."""
    kept: list[KeptField] | None = Field(None, alias="Kept")
    """In a revert's answer: the fields changed since the reverted call, left as they are."""


class BulkStatus(_Wire):
    total_count: int = Field(alias="TotalCount")
    success_count: int = Field(alias="SuccessCount")
    failure_count: int = Field(alias="FailureCount")
    unprocessed_count: int | None = Field(None, alias="UnProcessedCount")
    message: str | None = Field(None, alias="Message")


class BulkResult(_Wire):
    """The answer of Update Leads in Bulk v2: every lead sent is in exactly one list."""

    status: BulkStatus
    successful: list[BulkItem] = []
    failed: list[BulkItem] = []
    unprocessed: list[BulkItem] = []
    request_id: str | None = None

    @classmethod
    def from_wire(cls, data: Any, request_id: str | None = None) -> "BulkResult":
        details = data.get("Details") or {}
        return cls(
            status=BulkStatus.model_validate(data["Status"]),
            successful=details.get("SuccessfulLeads") or [],
            failed=details.get("FailedLeads") or [],
            unprocessed=details.get("UnProcessedLeads") or [],
            request_id=request_id,
        )

    def outcomes(self) -> Iterator[tuple[Outcome, BulkItem]]:
        """Every item with its outcome, in the order of the lists."""
        for outcome, items in (
            (Outcome.SUCCESSFUL, self.successful),
            (Outcome.FAILED, self.failed),
            (Outcome.UNPROCESSED, self.unprocessed),
        ):
            for item in items:
                yield outcome, item


class FieldMetadata(_Wire):
    schema_name: str = Field(alias="SchemaName")
    display_name: str | None = Field(None, alias="DisplayName")
    data_type: str | None = Field(None, alias="DataType")
    is_mandatory: bool = Field(False, alias="IsMandatory")
    max_length: str | None = Field(None, alias="MaxLength")
    options: list[str] = Field([], alias="Options")
    is_unique: bool | None = Field(None, alias="IsUnique")
    """Whether the field can find a lead (a leadstore extension; None from LeadSquared)."""

    @field_validator("options", mode="before")
    @classmethod
    def _option_values(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [o.get("Value") if isinstance(o, dict) else o for o in value]
        return [] if value is None else value


class Change(_Wire):
    field: str = Field(alias="Field")
    old_value: str | None = Field(None, alias="OldValue")
    new_value: str | None = Field(None, alias="NewValue")
    changed_by: str | None = Field(None, alias="ChangedBy")
    changed_on: str | None = Field(None, alias="ChangedOn")
    request_id: str | None = Field(None, alias="RequestId")


class User(_Wire):
    """The owner of the keys (UserByAccessKey.Get)."""

    id: str = Field(alias="Id")
    name: str | None = Field(None, alias="Name")
    email_address: str | None = Field(None, alias="EmailAddress")
    role: str | None = Field(None, alias="Role")
    org_id: str | None = Field(None, alias="OrgId")
    default_country_code: str | None = Field(None, alias="DefaultCountryCode")
    service_urls: dict[str, str] = Field({}, alias="LSQCommonServiceURLs")
