"""The archive's tables. Received forms and the event log are the record; the other tables are
what those forms established (the pupil, SEN status, cycles, outcomes, provision), kept as rows
so the register, provision maps and evidence summaries can be queried.

Whatever a person types on a form is kept in a ``Text`` column, which has no length limit on any
database: a form allows answers of any length, and a column shorter than an answer made
PostgreSQL refuse the form (SQLite never checks lengths), which the watcher took for an outage and
retried for ever. ``String(n)`` is kept for values senforms itself checks or chooses: UPNs (13
characters, validated), choices, codes and hashes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import false

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """A model's table, for a plain INSERT of rows nothing reads back in the same transaction
    (the ORM inserts rows one by one on SQLite to learn each new id)."""
    found = model.__table__
    assert isinstance(found, Table)
    return found


class Pupil(Base):
    __tablename__ = "pupils"
    id: Mapped[int] = mapped_column(primary_key=True)
    upn: Mapped[str] = mapped_column(String(13), unique=True)
    former_upn: Mapped[str | None] = mapped_column(String(13), index=True)
    legal_forename: Mapped[str] = mapped_column(Text)
    legal_surname: Mapped[str] = mapped_column(Text)
    preferred_name: Mapped[str | None] = mapped_column(Text)
    date_of_birth: Mapped[date] = mapped_column(Date, index=True)
    year_group: Mapped[str] = mapped_column(String(8))
    class_name: Mapped[str | None] = mapped_column(Text)
    # From the school's roll export (``senforms pupils import``): None when known only from forms.
    preferred_surname: Mapped[str | None] = mapped_column(Text)
    roll_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Leaving the school (Code 6.57) and the retention review (the school's records policy).
    left_on: Mapped[date | None] = mapped_column(Date)
    left_to: Mapped[str | None] = mapped_column(Text)
    file_passed_on: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    hold_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    parents: Mapped[list[Parent]] = relationship(
        back_populates="pupil", order_by="Parent.position", cascade="all, delete-orphan"
    )


class Parent(Base):
    __tablename__ = "parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    relation: Mapped[str | None] = mapped_column("relationship", Text)
    address: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    preferred_contact: Mapped[str | None] = mapped_column(String(20))
    pupil: Mapped[Pupil] = relationship(back_populates="parents")


class ReceivedForm(Base):
    """Every form received, with its original bytes, whether or not it is still current."""

    __tablename__ = "received_forms"
    id: Mapped[int] = mapped_column(primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    meeting_date: Mapped[date] = mapped_column(Date)
    original_name: Mapped[str] = mapped_column(Text)
    # Indexed for the status's count of forms received today (migration 0008_received_by_day).
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Stored as it is on PostgreSQL, never compressed again (migration 0009_files_stored_as_they_are).
    original: Mapped[bytes] = mapped_column(LargeBinary)
    data: Mapped[str] = mapped_column(Text)  # the validated model as JSON
    read_by: Mapped[str] = mapped_column(String(20))  # tags, labels or pdf
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("received_forms.id"))
    # "delivering" until every document is in the outbox, then "done": a crash in between is
    # finished by processing the same file again.
    state: Mapped[str] = mapped_column(String(20))


class SenStatus(Base):
    """The SEN register over time: provision K (SEN support) or N (no SEN), with need codes."""

    __tablename__ = "sen_status"
    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), index=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("received_forms.id"), index=True)
    provision: Mapped[str] = mapped_column(String(1))
    primary_need: Mapped[str | None] = mapped_column(String(10))
    secondary_need: Mapped[str | None] = mapped_column(String(10))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)


class Cycle(Base):
    """One turn of assess, plan, do, review: a plan and, later, its review."""

    __tablename__ = "cycles"
    __table_args__ = (UniqueConstraint("pupil_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    plan_form_id: Mapped[int | None] = mapped_column(ForeignKey("received_forms.id"))
    review_form_id: Mapped[int | None] = mapped_column(ForeignKey("received_forms.id"))
    plan_date: Mapped[date | None] = mapped_column(Date)
    review_due: Mapped[date | None] = mapped_column(Date)
    reviewed_on: Mapped[date | None] = mapped_column(Date)
    decision: Mapped[str | None] = mapped_column(String(20))
    outcomes: Mapped[list[Outcome]] = relationship(order_by="Outcome.position", cascade="all, delete-orphan")
    provision: Mapped[list[Provision]] = relationship(order_by="Provision.position", cascade="all, delete-orphan")


class Meeting(Base):
    """A meeting with the pupil's parents, as a form recorded it: early discussions, plan
    meetings, reviews and parent meeting notes all count (Code of Practice 6.65)."""

    __tablename__ = "meetings"
    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), index=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("received_forms.id"))
    kind: Mapped[str] = mapped_column(String(40))
    held_on: Mapped[date] = mapped_column(Date, index=True)


class Outcome(Base):
    __tablename__ = "outcomes"
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    success_criteria: Mapped[str | None] = mapped_column(Text)
    ratings: Mapped[list[OutcomeRating]] = relationship(cascade="all, delete-orphan")


class OutcomeRating(Base):
    """Progress on an outcome at a review."""

    __tablename__ = "outcome_ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    outcome_id: Mapped[int] = mapped_column(ForeignKey("outcomes.id"), index=True)
    review_form_id: Mapped[int] = mapped_column(ForeignKey("received_forms.id"), index=True)
    reviewed_on: Mapped[date] = mapped_column(Date)
    rating: Mapped[str] = mapped_column(String(20))
    evidence: Mapped[str | None] = mapped_column(Text)


class Provision(Base):
    __tablename__ = "provision"
    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    what: Mapped[str] = mapped_column(Text)
    who: Mapped[str | None] = mapped_column(Text)
    group_size: Mapped[str | None] = mapped_column(Text)
    frequency: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[date | None] = mapped_column(Date)
    weekly_cost: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    impact: Mapped[str | None] = mapped_column(Text)


class Document(Base):
    """Every document generated, with its bytes, so any letter can be produced again."""

    __tablename__ = "documents"
    __table_args__ = (
        # The register versions still to be written to the outbox (migration 0005_register).
        Index("ix_documents_template_delivered_at", "template", "delivered_at"),
        # The office's daily list of letters (outbox.letters_to_send, migration 0007): the day's
        # delivered parent letters found in the index alone. Found through the table, each row
        # was read through its document's bytes to the columns stored after them, which made
        # each form of a 2,000-form batch slower than the one before.
        Index("ix_documents_letters_by_day", "created_at", "audience", "delivered_at", "path"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    pupil_id: Mapped[int | None] = mapped_column(ForeignKey("pupils.id"), index=True)
    # None for a document issued by date (a review record's reminder, a digest, an annual report).
    form_id: Mapped[int | None] = mapped_column(ForeignKey("received_forms.id"), index=True)
    audience: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(Text)
    template: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(Text)  # relative to the outbox, with "/" separators
    content_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)  # as it is on PostgreSQL: see migration 0009
    corrected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Issued(Base):
    """What the daily round has issued, one row per thing, so that running the round again, or a
    watcher restarting, never issues it twice. ``key`` names the thing, like
    ``review-record:cycle:42`` or ``digest:2026-W48``."""

    __tablename__ = "issued"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    pupil_id: Mapped[int | None] = mapped_column(ForeignKey("pupils.id"))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    for_date: Mapped[date | None] = mapped_column(Date)


class Event(Base):
    """Append-only: what happened and why. Names pupils by UPN only."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    upn: Mapped[str | None] = mapped_column(String(13), index=True)
    form_id: Mapped[int | None] = mapped_column(ForeignKey("received_forms.id"))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
