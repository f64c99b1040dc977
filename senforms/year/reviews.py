"""Reviews on time (Code of Practice 6.52-6.53): which reviews are due soon, which are overdue,
and the producer that issues each pre-filled review record ``review_notice_days`` before its
review date.

A review is *open* while its cycle has a plan with a review date and no review on record, the
pupil has not left, and no later cycle has started (a plan of cycle 2 means cycle 1 is over,
reviewed on paper or not).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from senforms import rules
from senforms.archive import tables as t
from senforms.archive.roll import rolled_pupil
from senforms.archive.store import Archive, load_form
from senforms.config import Settings
from senforms.documents import Due, PdfLetters, render_documents
from senforms.history import History
from senforms.kinds import SupportPlan


@dataclass(frozen=True)
class OpenReview:
    """A plan whose review has not been filed yet."""

    pupil_id: int
    upn: str
    name: str  # as the school knows the pupil: preferred first name, else legal, then surname
    year_group: str
    cycle: int
    review_date: date
    plan_form_id: int
    days_overdue: int  # 0 or less: not overdue yet (-3: due in three days)

    @property
    def overdue(self) -> bool:
        return self.days_overdue > 0


def open_reviews(session: Session, today: date, *, until: date | None = None) -> list[OpenReview]:
    """Every open review with a review date on or before ``until`` (all, if None), earliest first."""
    later = aliased(t.Cycle)
    query = (
        # Columns, not whole rows: tens of thousands of open reviews in a large trust's archive.
        select(
            t.Pupil.id,
            t.Pupil.upn,
            t.Pupil.legal_forename,
            t.Pupil.legal_surname,
            t.Pupil.preferred_name,
            t.Pupil.preferred_surname,
            t.Pupil.year_group,
            t.Cycle.number,
            t.Cycle.review_due,
            t.Cycle.plan_form_id,
        )
        .select_from(t.Cycle)
        .join(t.Pupil, t.Pupil.id == t.Cycle.pupil_id)
        .where(
            t.Cycle.plan_form_id.is_not(None),
            t.Cycle.review_due.is_not(None),
            t.Cycle.review_form_id.is_(None),
            or_(t.Pupil.left_on.is_(None), t.Pupil.left_on > today),
            ~exists().where(and_(later.pupil_id == t.Cycle.pupil_id, later.number > t.Cycle.number)),
        )
        .order_by(t.Cycle.review_due, t.Pupil.upn)
    )
    if until is not None:
        query = query.where(t.Cycle.review_due <= until)
    return [
        OpenReview(
            row.id,
            row.upn,
            f"{row.preferred_name or row.legal_forename} {row.preferred_surname or row.legal_surname}",
            row.year_group,
            row.number,
            row.review_due,
            row.plan_form_id,
            (today - row.review_due).days,
        )
        for row in session.execute(query)
    ]


def due_list(session: Session, today: date, *, weeks: int = 4) -> tuple[list[OpenReview], list[OpenReview]]:
    """(reviews due from today to ``weeks`` weeks ahead, overdue reviews), each earliest first."""
    found = open_reviews(session, today, until=today + timedelta(weeks=weeks))
    return [r for r in found if not r.overdue], [r for r in found if r.overdue]


def review_key(review: OpenReview) -> str:
    """The review record's key in the ``issued`` table. By pupil and cycle number, not by the
    cycle's row id: the pupil's cycles are rebuilt (new ids) whenever one of their forms is filed.
    The review date is part of it: a plan corrected to a later review date gets a review record
    for that date in its turn."""
    return f"review-record:pupil:{review.pupil_id}:cycle:{review.cycle}:{review.review_date.isoformat()}"


CHUNK = 5000


def _to_issue(session: Session, today: date, notice_days: int) -> list[OpenReview]:
    """Open reviews within the notice whose review record has not been issued: neither by the
    round (its key) nor with the plan itself (a plan filed within the notice, or with notice 0,
    or before reviews were issued on time, has a pre-filled review among its documents)."""
    candidates = open_reviews(session, today, until=today + timedelta(days=notice_days))
    if not candidates:
        return []
    issued: set[str] = set()
    with_plan: set[int | None] = set()
    # In slices: a database takes only so many values in one IN (SQLite 32,766).
    for start in range(0, len(candidates), CHUNK):
        chunk = candidates[start : start + CHUNK]
        keys = [review_key(r) for r in chunk]
        issued.update(session.scalars(select(t.Issued.key).where(t.Issued.key.in_(keys))))
        with_plan.update(
            session.scalars(
                select(t.Document.form_id).where(
                    t.Document.form_id.in_([r.plan_form_id for r in chunk]), t.Document.template == "form:review"
                )
            )
        )
    return [r for r in candidates if review_key(r) not in issued and r.plan_form_id not in with_plan]


def reviews_due(archive: Archive, settings: Settings, today: date) -> Iterator[Due]:
    """The producer: each pre-filled review record owed today, built exactly as the pipeline
    builds it with a plan (``rules.review_after_plan``, ``documents.render_documents``), from
    the plan as it stands now (a corrected plan's, never the one it replaced), and with the
    school roll's current details of the pupil (year group, class, preferred name, contacts) when
    the roll names the pupil, as the pipeline's own pre-filled forms are (``rolled_pupil``): the
    plan may be months old and the pupil in another class since."""
    with archive.reading() as session:
        owed = _to_issue(session, today, settings.review_notice_days)
    if not owed:
        return
    pdf = PdfLetters(settings)
    try:
        for review in owed:
            # One plan at a time (a first round after a long break may owe many).
            with archive.reading() as session:
                row = session.get(t.ReceivedForm, review.plan_form_id)
                plan = load_form(row) if row is not None else None
                if isinstance(plan, SupportPlan):
                    pupil = session.get(t.Pupil, review.pupil_id)
                    if pupil is not None and pupil.roll_updated_at is not None:
                        plan = plan.model_copy(update={"pupil": rolled_pupil(pupil, plan.pupil)})
            if not isinstance(plan, SupportPlan):
                continue
            decided = rules.Next([rules.review_after_plan(plan)])
            rendered, _ = render_documents(settings, plan, decided, History(), corrected=False, today=today, pdf=pdf)
            issue_on = review.review_date - timedelta(days=settings.review_notice_days)
            yield Due(review_key(review), review.upn, issue_on, rendered)
    finally:
        pdf.close()
