"""The lead table's system columns. Custom ``mx_`` fields are added as columns at run time
(``leadstore field add``), so queries go through ``leadstore.fields.registry``'s table, which
knows every column; this class gives Alembic the fixed part."""

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadstore.db import Base
from leadstore.models.history import CHANGE_ID


class Lead(Base):
    __tablename__ = "leads"

    auto_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prospect_id: Mapped[str] = mapped_column(String(36), unique=True)
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    company: Mapped[str | None] = mapped_column(Text)
    job_title: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    email_address: Mapped[str | None] = mapped_column(Text, unique=True)
    phone: Mapped[str | None] = mapped_column(Text, unique=True)
    mobile: Mapped[str | None] = mapped_column(Text, unique=True)
    website: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    source_medium: Mapped[str | None] = mapped_column(Text)
    source_campaign: Mapped[str | None] = mapped_column(Text)
    prospect_stage: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    do_not_email: Mapped[str | None] = mapped_column(String(1))
    do_not_call: Mapped[str | None] = mapped_column(String(1))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_on: Mapped[datetime] = mapped_column(DateTime)
    modified_by: Mapped[str | None] = mapped_column(String(36))
    modified_on: Mapped[datetime] = mapped_column(DateTime)
    # The newest entry of the lead's change history (see ``LeadChange``); not a field.
    last_change_id: Mapped[int | None] = mapped_column(CHANGE_ID)

    # Every index costs every write that changes its column: only lookups that need one have
    # one (unique fields by their unique index; the caller's scope by owner).
    __table_args__ = (Index("ix_leads_owner_id", "owner_id"),)
