from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leadstore.db import Base

# The type of a change id, wherever one is stored. SQLite: INTEGER PRIMARY KEY is the rowid
# itself (BIGINT would be a column of its own).
CHANGE_ID = BigInteger().with_variant(Integer, "sqlite")


class LeadChange(Base):
    """One changed field of one lead. A lead's changes form a chain, newest first: the lead row
    holds the id of its newest change (``Lead.last_change_id``) and each change the id of the
    one before it (``previous_id``), in the order the writes were applied (they hold the lead's
    row lock, or SQLite's single writer), whatever the clocks of the hosts said.

    Why a chain and no index on the lead: a call changes 25 leads. Any index by lead needs a
    page of its own for each of them once leads have long histories (SQLite, 10,000 leads: 25
    pages a call for the index alone), while the chain costs nothing extra to write: the lead
    rows are rewritten by the call anyway and the history rows are appended. There the
    database's own write loop does ~40 % more leads a second and the service 15-18 %
    (bench/README.md). Reading a history follows the chain, one primary-key lookup per change.
    The request id alone does not tell changes apart: clients may send the same X-Request-Id on
    several calls."""

    __tablename__ = "lead_changes"

    id: Mapped[int] = mapped_column(CHANGE_ID, primary_key=True)
    previous_id: Mapped[int | None] = mapped_column(CHANGE_ID)
    lead_id: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(36))
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class LeadCall(Base):
    """A call that changed existing leads: who, when, which leads (each with its position in the
    call) and the range of change ids its history rows lie in, so that a revert finds them
    without an index on the history. Written by the call's own transaction."""

    __tablename__ = "lead_calls"

    id: Mapped[int] = mapped_column(CHANGE_ID, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(DateTime)
    lead_count: Mapped[int] = mapped_column(Integer)
    # JSON: [[lead id, position in the call], ...], the leads the call changed (not those it created).
    leads: Mapped[str] = mapped_column(Text)
    first_change_id: Mapped[int] = mapped_column(CHANGE_ID)
    last_change_id: Mapped[int] = mapped_column(CHANGE_ID)


class IdempotentResponse(Base):
    """The stored answer to a bulk call sent with an ``Idempotency-Key`` header."""

    __tablename__ = "idempotent_responses"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
