from leadstore.models.access import GroupMember, PermissionTemplate, SalesGroup
from leadstore.models.catalog import AccountSetting, CatalogRevision, CustomField
from leadstore.models.history import IdempotentResponse, LeadCall, LeadChange
from leadstore.models.lead import Lead
from leadstore.models.user import User

__all__ = [
    "AccountSetting",
    "CatalogRevision",
    "CustomField",
    "GroupMember",
    "IdempotentResponse",
    "Lead",
    "LeadCall",
    "LeadChange",
    "PermissionTemplate",
    "SalesGroup",
    "User",
]
