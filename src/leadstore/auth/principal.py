"""Who a call runs as, and what that user may see and change (spec section 6)."""

from dataclasses import dataclass
from enum import StrEnum

from leadstore.fields.model import Field


class Role(StrEnum):
    ADMINISTRATOR = "Administrator"
    SALES_MANAGER = "SalesManager"
    SALES_USER = "SalesUser"
    MARKETING_USER = "MarketingUser"


class LeadAccess(StrEnum):
    ALL = "all"
    GROUP = "group"
    OWN = "own"
    NONE = "none"


ROLE_DEFAULT_ACCESS = {
    Role.ADMINISTRATOR: LeadAccess.ALL,
    Role.SALES_MANAGER: LeadAccess.GROUP,
    Role.SALES_USER: LeadAccess.OWN,
    Role.MARKETING_USER: LeadAccess.ALL,
}


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str
    name: str
    role: Role
    lead_access: LeadAccess
    # Users who share a sales group with this user, the user included.
    group_user_ids: frozenset[str]
    # Field keys (lower-case schema names) the template marks.
    read_only: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()

    @property
    def lead_owners(self) -> frozenset[str] | None:
        """The owners whose leads this user may touch; ``None`` means every lead."""
        if self.lead_access == LeadAccess.ALL:
            return None
        if self.lead_access == LeadAccess.GROUP:
            return self.group_user_ids
        if self.lead_access == LeadAccess.OWN:
            return frozenset({self.user_id})
        return frozenset()

    def may_own(self, owner_id: str | None) -> bool:
        """Whether this user may give a lead to ``owner_id`` (write OwnerId, or create a lead
        that this owner holds): only to owners whose leads it may update, so that no write moves a
        lead out of the caller's reach, and no write probes which user ids exist."""
        owners = self.lead_owners
        return owners is None or owner_id in owners

    def can_read(self, field_: Field) -> bool:
        return field_.key not in self.hidden

    def can_write(self, field_: Field) -> bool:
        return not field_.server_managed and field_.key not in self.hidden and field_.key not in self.read_only
