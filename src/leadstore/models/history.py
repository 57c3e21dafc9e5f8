from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadstore.db import Base


class LeadChange(Base):
    """One changed field of one lead, stored in the order written. A lead's history is read by
    id, newest first: for one lead that is the order the writes were applied (they hold the
    lead's row lock, or SQLite's single writer), whatever the clocks of the hosts said.

    Why write order: a call changes 25 leads. Clustered by lead (as this table once was), every
    one of them is a page of its own to write once leads have long histories (SQLite, 10,000
    leads with ~200 changes each: 51 pages a call for the history alone). Appended rows share
    the last pages, and the index holds only the lead (SQLite adds the rowid to each entry, in
    order): still one index page per lead changed, but a third the size of an index on the lead
    and the time, and the database's own write loop does 30-40 % more leads a second there
    (bench/README.md). The request id alone does not tell changes apart: clients may send the
    same X-Request-Id on several calls."""

    __tablename__ = "lead_changes"
    __table_args__ = (Index("ix_lead_changes_lead_id", "lead_id"),)

    # SQLite: INTEGER PRIMARY KEY is the rowid itself (BIGINT would be a column of its own).
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    lead_id: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(36))
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class IdempotentResponse(Base):
    """The stored answer to a bulk call sent with an ``Idempotency-Key`` header."""

    __tablename__ = "idempotent_responses"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
