from leadstore.models.access import GroupMember, PermissionTemplate, SalesGroup
from leadstore.models.catalog import AccountSetting, CatalogRevision, CustomField
from leadstore.models.history import IdempotentResponse, LeadChange
from leadstore.models.lead import Lead
from leadstore.models.user import User

__all__ = [
    "AccountSetting",
    "CatalogRevision",
    "CustomField",
    "GroupMember",
    "IdempotentResponse",
    "Lead",
    "LeadChange",
    "PermissionTemplate",
    "SalesGroup",
    "User",
]
