from datetime import datetime

from sqlalchemy import DateTime, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadstore.db import Base


class LeadChange(Base):
    """One changed field of one lead. The primary key starts with the lead and the time, so it
    serves the per-lead history read, newest first, without a second index on the write path
    (SQLite: clustered). The request id alone does not tell changes apart: clients may send the
    same X-Request-Id on several calls."""

    __tablename__ = "lead_changes"
    __table_args__ = (
        PrimaryKeyConstraint("lead_id", "changed_at", "request_id", "field"),
        {"sqlite_with_rowid": False},
    )

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
