"""The pupil's record, derived from their current forms.

The received forms are the record; the tables written here (SEN status, cycles, outcomes with
their ratings, provision, meetings) are what those forms established, kept as rows so the
register, the SENCO's lists and the evidence pack can be queried. They are rebuilt from the
current forms rather than patched, which is what lets a corrected form simply replace the one it
corrects.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from senforms import rules
from senforms.archive import tables as t
from senforms.kinds import FormModel, ReviewRecord, SupportPlan, kind_of
from senforms.values import fold_outcome

# Statements every form runs, built once: building one costs SQLAlchemy more than running it.
_OPEN_STATUS = (
    select(t.SenStatus)
    .where(t.SenStatus.pupil_id == bindparam("pupil_id"), t.SenStatus.end_date.is_(None))
    .order_by(t.SenStatus.id.desc())
    .limit(1)
)
_CYCLE = select(t.Cycle).where(t.Cycle.pupil_id == bindparam("pupil_id"), t.Cycle.number == bindparam("number"))
_INSERT_MEETING = insert(t.table(t.Meeting))
_INSERT_OUTCOMES = insert(t.table(t.Outcome))
_INSERT_PROVISION = insert(t.table(t.Provision))
_INSERT_RATINGS = insert(t.table(t.OutcomeRating))
_PLANNED_OUTCOMES = (
    select(t.Outcome.id, t.Outcome.description)
    .where(t.Outcome.cycle_id == bindparam("cycle_id"))
    .order_by(t.Outcome.position)
)
_PLANNED_PROVISION = (
    select(t.Provision.id, t.Provision.what)
    .where(t.Provision.cycle_id == bindparam("cycle_id"))
    .order_by(t.Provision.position)
)
_IMPACT = (
    update(t.table(t.Provision))
    .where(t.table(t.Provision).c.id == bindparam("row"))
    .values(impact=bindparam("impact"))
)


#: A pupil's place on the register, as compared between versions: provision and need codes.
_Key = tuple[str, str | None, str | None] | None


@dataclass(frozen=True)
class RegisterEffect:
    """What a form did to the pupil's row of the SEND register.

    ``status_changed``: a new version of the register (on or off it, or new need codes), which
    the archive keeps. ``on_register``: the pupil is on it after the form, so the row's plan,
    review and meeting columns may have changed with it even when the status did not (every
    form records a meeting; a plan brings a review date)."""

    status_changed: bool
    on_register: bool


def _effect(before: _Key, after: _Key) -> RegisterEffect:
    return RegisterEffect(after != before, after is not None and after[0] in rules.ON_REGISTER)


def rebuild_record(
    session: Session, pupil: t.Pupil, forms: list[tuple[t.ReceivedForm, FormModel]]
) -> RegisterEffect:
    """Rebuild the pupil's SEN status, cycles, outcomes and provision from their current forms,
    oldest first. Deriving the record rather than patching it is what lets a corrected form
    simply replace the one it corrects. ``forms`` are the current forms with their models, as
    ``current_forms`` gives them."""
    before = _status_key(session, pupil.id)
    for old_status in session.scalars(select(t.SenStatus).where(t.SenStatus.pupil_id == pupil.id)):
        session.delete(old_status)
    for old_cycle in session.scalars(select(t.Cycle).where(t.Cycle.pupil_id == pupil.id)):
        session.delete(old_cycle)
    session.execute(delete(t.Meeting).where(t.Meeting.pupil_id == pupil.id))
    session.flush()
    status: t.SenStatus | None = None
    cycles: dict[int, t.Cycle] = {}
    for row, form in sorted(forms, key=lambda f: (f[0].meeting_date, f[0].id)):
        status = _apply(session, pupil.id, row.id, form, status, cycles)
    session.flush()
    return _effect(before, _status_key(session, pupil.id))


def extend_record(session: Session, pupil: t.Pupil, form_id: int, form: FormModel) -> RegisterEffect:
    """Add one new form to the pupil's record without rebuilding it: the usual case, a form
    later than every current form of the pupil's and correcting none, which the caller has
    checked (the pipeline knows the pupil's current forms, under the pupil's lock). The record
    is then what a rebuild would make (the rebuild applies the same ``_apply`` to each form in
    this order, so the rows already there are its first steps); for a pupil five years in, that
    is a few rows written instead of every cycle deleted and made again."""
    before_row = open_status(session, pupil.id)
    before = _key(before_row)
    cycles: dict[int, t.Cycle] = {}
    if isinstance(form, SupportPlan | ReviewRecord):
        found = session.scalar(_CYCLE, {"pupil_id": pupil.id, "number": form.cycle})
        if found is not None:
            cycles[form.cycle] = found
    status = _apply(session, pupil.id, form_id, form, before_row, cycles)
    session.flush()
    return _effect(before, _key(status))


def _apply(
    session: Session,
    pupil_id: int,
    form_id: int,
    form: FormModel,
    status: t.SenStatus | None,
    cycles: dict[int, t.Cycle],
) -> t.SenStatus | None:
    """One form's step in the record: its meeting, any change of SEN status, and its cycle's plan
    or review. Returns the pupil's SEN status after it.

    The rows nothing reads back as objects (the meeting, outcomes, provision, ratings) are
    written with plain INSERTs, a list at a time: the ORM writes such rows one statement each
    on SQLite, to learn ids no one here uses."""
    current = (
        None
        if status is None
        else rules.Status(status.provision, status.primary_need, status.secondary_need, status.start_date)
    )
    # Every form of the cycle records a meeting with the parents (6.65).
    kind = kind_of(form)
    session.execute(
        _INSERT_MEETING,
        {"pupil_id": pupil_id, "form_id": form_id, "kind": kind.slug, "held_on": getattr(form, kind.meeting_date)},
    )
    change = rules.register_status(form, current)
    if change is not None:
        if status is not None:
            status.end_date = change.since
        status = t.SenStatus(
            pupil_id=pupil_id,
            form_id=form_id,
            provision=change.provision,
            primary_need=change.primary_need,
            secondary_need=change.secondary_need,
            start_date=change.since,
        )
        session.add(status)
    if isinstance(form, SupportPlan):
        cycle = _cycle(session, pupil_id, form.cycle, cycles)
        replaces = cycle.id is not None  # a second plan for a cycle already on record
        cycle.plan_form_id, cycle.plan_date, cycle.review_due = form_id, form.plan_date, form.review_date
        session.flush()  # the cycle's id, for its outcomes and provision
        _plan(session, cycle.id, form, replaces=replaces)
    elif isinstance(form, ReviewRecord):
        cycle = _cycle(session, pupil_id, form.cycle, cycles)
        cycle.review_form_id, cycle.reviewed_on, cycle.decision = form_id, form.review_date, form.decision.value
        session.flush()
        _rate(session, cycle.id, form, form_id)
    return status


def _cycle(session: Session, pupil_id: int, number: int, cycles: dict[int, t.Cycle]) -> t.Cycle:
    """The pupil's cycle ``number``, as already on record or new."""
    cycle = cycles.get(number)
    if cycle is None:
        cycle = cycles[number] = t.Cycle(pupil_id=pupil_id, number=number)
        session.add(cycle)
    return cycle


def _plan(session: Session, cycle_id: int, plan: SupportPlan, *, replaces: bool) -> None:
    """The plan's outcomes and provision; with ``replaces``, in place of those an earlier plan
    for the same cycle set (and the ratings of those outcomes)."""
    if replaces:
        outcomes, ratings, provision = t.table(t.Outcome), t.table(t.OutcomeRating), t.table(t.Provision)
        earlier = select(outcomes.c.id).where(outcomes.c.cycle_id == cycle_id).scalar_subquery()
        session.execute(delete(ratings).where(ratings.c.outcome_id.in_(earlier)))
        session.execute(delete(outcomes).where(outcomes.c.cycle_id == cycle_id))
        session.execute(delete(provision).where(provision.c.cycle_id == cycle_id))
    if plan.outcomes:
        session.execute(
            _INSERT_OUTCOMES,
            [
                {"cycle_id": cycle_id, "position": i, "description": o.description, "success_criteria": o.success_criteria}
                for i, o in enumerate(plan.outcomes)
            ],
        )
    if plan.provision:
        session.execute(
            _INSERT_PROVISION,
            [
                {
                    "cycle_id": cycle_id,
                    "position": i,
                    "what": p.what,
                    "who": p.who,
                    "group_size": p.group_size,
                    "frequency": p.frequency,
                    "start_date": p.start_date,
                    "weekly_cost": p.weekly_cost,
                    "impact": None,
                }
                for i, p in enumerate(plan.provision)
            ],
        )


def _rate(session: Session, cycle_id: int, review: ReviewRecord, form_id: int) -> None:
    """The review's rating of each outcome, and the impact of each piece of provision, matched to
    the plan's by their words (``fold_outcome``)."""
    planned = session.execute(_PLANNED_OUTCOMES, {"cycle_id": cycle_id}).all()
    outcomes = {fold_outcome(o.description): o.id for o in planned}
    count = len(planned)
    ratings = []
    for item in review.outcomes:
        outcome_id = outcomes.get(fold_outcome(item.description))
        if outcome_id is None:
            # Rated at review but not on the plan (the plan was not sent to senforms).
            # Its id from the driver (lastrowid where SQLite is too old for RETURNING).
            added = session.connection().execute(
                insert(t.table(t.Outcome)).values(cycle_id=cycle_id, position=count, description=item.description)
            )
            assert added.inserted_primary_key is not None
            outcome_id = added.inserted_primary_key[0]
            count += 1
            outcomes[fold_outcome(item.description)] = outcome_id
        ratings.append(
            {
                "outcome_id": outcome_id,
                "review_form_id": form_id,
                "reviewed_on": review.review_date,
                "rating": item.rating.value,
                "evidence": item.evidence,
            }
        )
    if ratings:
        session.execute(_INSERT_RATINGS, ratings)
    provision = {
        fold_outcome(p.what): p.id
        for p in session.execute(_PLANNED_PROVISION, {"cycle_id": cycle_id})
    }
    impacts = [
        {"row": row_id, "impact": impact.impact}
        for impact in review.provision
        if (row_id := provision.get(fold_outcome(impact.what))) is not None
    ]
    if impacts:
        session.execute(_IMPACT, impacts)


def open_status(session: Session, pupil_id: int) -> t.SenStatus | None:
    """The pupil's SEN status now: the last one made, the only one without an end date."""
    return session.scalar(_OPEN_STATUS, {"pupil_id": pupil_id})


def _key(row: t.SenStatus | None) -> _Key:
    return None if row is None else (row.provision, row.primary_need, row.secondary_need)


def _status_key(session: Session, pupil_id: int) -> _Key:
    return _key(open_status(session, pupil_id))
