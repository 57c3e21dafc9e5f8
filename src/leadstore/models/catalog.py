"""Run-time configuration kept in the database: custom fields, account settings, and the
revision counter that tells every worker process to reload them."""

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadstore.db import Base


class CustomField(Base):
    __tablename__ = "custom_fields"

    schema_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    column_name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    data_type: Mapped[str] = mapped_column(String(20))
    is_unique: Mapped[bool] = mapped_column(Boolean, default=False)
    is_mandatory: Mapped[bool] = mapped_column(Boolean, default=False)
    max_length: Mapped[int | None] = mapped_column(Integer)
    options: Mapped[str] = mapped_column(Text, default="[]")  # JSON array of strings
    position: Mapped[int] = mapped_column(Integer)


class AccountSetting(Base):
    __tablename__ = "account_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CatalogRevision(Base):
    """One row; bumped by every administrative change so workers know to reload."""

    __tablename__ = "catalog_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
