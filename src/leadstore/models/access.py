"""Sales groups and permission templates (spec section 6)."""

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadstore.db import Base


class SalesGroup(Base):
    __tablename__ = "sales_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("sales_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class PermissionTemplate(Base):
    __tablename__ = "permission_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    lead_access: Mapped[str] = mapped_column(String(10))
    # JSON arrays of schema names.
    read_only_fields: Mapped[str] = mapped_column(Text, default="[]")
    hidden_fields: Mapped[str] = mapped_column(Text, default="[]")
