"""Request shapes, for the API documentation. Bodies are checked by hand on the hot path (see
``leads.bulk.parse_request``), so that every error names its exact position."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadstore.leads.outcomes import ReasonCode as Code


class AttributeValue(BaseModel):
    Attribute: str = Field(description="A field's schema name, e.g. EmailAddress or mx_City")
    Value: str | None = Field(description="The value, always as a string; null or empty clears the field")


class BulkOptions(BaseModel):
    PushNonExistentLeadsToUnProcessedList: bool = Field(
        False, description="List leads that are not found under UnProcessedLeads instead of FailedLeads"
    )
    DryRun: bool = Field(False, description="(leadstore) Check and report everything, write nothing")


class BulkLead(BaseModel):
    Fields: list[AttributeValue]
    Expect: list[AttributeValue] | None = Field(
        None,
        description="(leadstore) Write this lead only if these fields hold these values now (null or empty: "
        "empty); otherwise it fails with ReasonCode PRECONDITION_FAILED",
    )


class BulkUpdateRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "SearchByKey": "EmailAddress",
                "Options": {"PushNonExistentLeadsToUnProcessedList": False},
                "LeadPropertiesList": [
                    {
                        "Fields": [
                            {"Attribute": "EmailAddress", "Value": "john@example.com"},
                            {"Attribute": "FirstName", "Value": "John"},
                        ]
                    }
                ],
            }
        }
    )

    SearchByKey: str | None = Field(None, description="A unique field that finds each lead; default ProspectId")
    Options: BulkOptions | None = None
    LeadPropertiesList: list[BulkLead] = Field(description="1 to 25 leads")


class LeadsGetParameter(BaseModel):
    LookupName: str
    LookupValue: str
    SqlOperator: str = "="


class LeadsGetColumns(BaseModel):
    Include_CSV: str | None = None


class LeadsGetSorting(BaseModel):
    ColumnName: str | None = None
    Direction: str | None = Field(None, description='"1" for descending')


class LeadsGetPaging(BaseModel):
    PageIndex: int = 1
    PageSize: int = 100


class LeadsGetRequest(BaseModel):
    Parameter: LeadsGetParameter
    Columns: LeadsGetColumns | None = None
    Sorting: LeadsGetSorting | None = None
    Paging: LeadsGetPaging | None = None


class LeadIds(BaseModel):
    LeadIds: list[str] = Field(description="ProspectIds, at most 10,000")


class ByIdsRequest(BaseModel):
    SearchParameters: LeadIds
    Columns: LeadsGetColumns | None = None
    Paging: LeadsGetPaging | None = None


class BulkFieldUpdate(BaseModel):
    LeadIds: list[str] = Field(description="ProspectIds, at most 50")
    LeadFields: AttributeValue = Field(description="The one field to set on every lead, and its value")


class RevertOptions(BaseModel):
    DryRun: bool = Field(False, description="Check and report everything, write nothing")


class RevertRequestBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"RequestId": "5f0c8e2a9b1d4c3e8f7a6b5c4d3e2f1a"}})

    RequestId: str = Field(description="The X-Request-Id of the call to undo")
    Options: RevertOptions | None = None


class ErrorEnvelope(BaseModel):
    """Every error, in LeadSquared's envelope."""

    Status: Literal["Error"]
    ExceptionType: str = Field(description="LeadSquared's name for the error, e.g. MXInvalidInputException")
    ExceptionMessage: str = Field(description="What was wrong and how to fix it")


class BulkStatus(BaseModel):
    TotalCount: int = Field(description="Leads sent (for a revert: leads the reverted call changed)")
    SuccessCount: int
    FailureCount: int
    UnProcessedCount: int | None = Field(None, description="Only with PushNonExistentLeadsToUnProcessedList")
    Message: Literal["Processed", "Error"] = Field(description="Processed when at least one lead succeeded")


class KeptField(BaseModel):
    Attribute: str
    ChangedBy: str = Field(description="The request id of the field's latest change")


class BulkItem(BaseModel):
    Identifier: str = Field(description="The key's schema name (a revert's: ProspectId)")
    IdentifierValue: Any = Field(description="The key's value as sent")
    Index: int = Field(description="(leadstore) The lead's position in LeadPropertiesList (of the reverted call)")
    Reason: str | None = Field(None, description="Why the lead failed or was not processed")
    ReasonCode: Code | None = Field(None, description="(leadstore) A stable code for Reason")
    ChangedFields: list[str] | None = Field(None, description="(leadstore) The fields the call changed")
    Reverted: list[str] | None = Field(None, description="(leadstore, revert) The fields put back")
    Kept: list[KeptField] | None = Field(None, description="(leadstore, revert) The fields changed since")


class BulkDetails(BaseModel):
    SuccessfulLeads: list[BulkItem] | None = None
    FailedLeads: list[BulkItem] | None = None
    UnProcessedLeads: list[BulkItem] | None = None


class BulkAnswer(BaseModel):
    """Every lead sent is in exactly one list; lists that would be empty are left out."""

    Status: BulkStatus
    Details: BulkDetails
