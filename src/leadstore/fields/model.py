"""What a lead field is, and the system fields every account has (spec section 3)."""

import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum


class DataType(StrEnum):
    TEXT = "Text"
    NUMBER = "Number"
    EMAIL = "Email"
    PHONE = "Phone"
    WEBSITE = "Website"
    DATE = "Date"
    DATETIME = "DateTime"
    TIME = "Time"
    SELECT = "Select"
    BOOLEAN = "Boolean"


TEXT_DEFAULT_MAX_LENGTH = 200
TEXT_MAX_LENGTH = 4000
# A unique value is kept in an index, whose entries PostgreSQL limits to ~2,700 bytes: 500
# characters fit in any UTF-8 spelling.
UNIQUE_MAX_LENGTH = 500
CUSTOM_NAME = re.compile(r"^mx_[A-Za-z][A-Za-z0-9_]{0,59}$")


@dataclass(frozen=True, slots=True, eq=False)
class Field:
    """A lead field. Fields key the per-call dictionaries of the bulk update's hot path, so they
    compare and hash by identity (one object per field per registry), not by value."""

    schema_name: str
    column: str
    data_type: DataType
    display_name: str
    is_unique: bool = False
    is_mandatory: bool = False
    max_length: int | None = None
    options: tuple[str, ...] = ()
    # Set by the server (ids, audit columns); never written by a caller.
    server_managed: bool = False
    # Values compare in any letter case and are kept in lower case (ids are UUIDs).
    lower_case: bool = False
    # Derived once, read on every write: the case-insensitive name callers may use, and the
    # length limit that applies (max_length, else the type's default).
    key: str = dataclass_field(init=False, repr=False)
    effective_max_length: int | None = dataclass_field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.schema_name.lower())
        limit = self.max_length
        if limit is None and self.data_type in (DataType.TEXT, DataType.EMAIL, DataType.WEBSITE):
            limit = TEXT_DEFAULT_MAX_LENGTH if self.data_type == DataType.TEXT else TEXT_MAX_LENGTH
        if self.is_unique and limit is not None:
            limit = min(limit, UNIQUE_MAX_LENGTH)
        object.__setattr__(self, "effective_max_length", limit)

    def definition(self) -> tuple[object, ...]:
        """What the field is, for telling whether a field changed."""
        return (
            self.schema_name,
            self.column,
            self.data_type,
            self.display_name,
            self.is_unique,
            self.is_mandatory,
            self.max_length,
            self.options,
            self.server_managed,
            self.lower_case,
        )


def _system(schema: str, column: str, data_type: DataType, **kw: object) -> Field:
    display = re.sub(r"(?<!^)(?=[A-Z])", " ", schema)
    return Field(schema, column, data_type, display, **kw)  # type: ignore[arg-type]


STAGES = ("Prospect", "Opportunity", "Customer", "Inactive")

SYSTEM_FIELDS: tuple[Field, ...] = (
    _system(
        "ProspectId", "prospect_id", DataType.TEXT, is_unique=True, server_managed=True, max_length=36, lower_case=True
    ),
    _system("ProspectAutoId", "auto_id", DataType.NUMBER, is_unique=True, server_managed=True),
    _system("FirstName", "first_name", DataType.TEXT),
    _system("LastName", "last_name", DataType.TEXT),
    Field("EmailAddress", "email_address", DataType.EMAIL, "Email", is_unique=True),
    _system("Phone", "phone", DataType.PHONE, is_unique=True),
    _system("Mobile", "mobile", DataType.PHONE, is_unique=True),
    _system("Company", "company", DataType.TEXT),
    _system("JobTitle", "job_title", DataType.TEXT),
    _system("Website", "website", DataType.WEBSITE),
    _system("Source", "source", DataType.TEXT),
    _system("SourceMedium", "source_medium", DataType.TEXT),
    _system("SourceCampaign", "source_campaign", DataType.TEXT),
    _system("ProspectStage", "prospect_stage", DataType.SELECT, options=STAGES),
    _system("Score", "score", DataType.NUMBER),
    _system("DoNotEmail", "do_not_email", DataType.BOOLEAN),
    _system("DoNotCall", "do_not_call", DataType.BOOLEAN),
    _system("Notes", "notes", DataType.TEXT, max_length=TEXT_MAX_LENGTH),
    _system("OwnerId", "owner_id", DataType.TEXT, max_length=36),
    _system("CreatedBy", "created_by", DataType.TEXT, server_managed=True),
    _system("CreatedOn", "created_on", DataType.DATETIME, server_managed=True),
    _system("ModifiedBy", "modified_by", DataType.TEXT, server_managed=True),
    _system("ModifiedOn", "modified_on", DataType.DATETIME, server_managed=True),
)
