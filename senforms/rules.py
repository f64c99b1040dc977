"""What comes next: the graduated approach's rules, one small function each.

Each rule takes validated forms (and the pupil's history) and returns what should be written;
nothing here touches files or the archive. The docstring of each rule cites the paragraph of the
SEND Code of Practice 2015 (chapter 6) that it serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from senforms.archive.store import History
from senforms.kinds import (
    EarlyDecision,
    EarlyDiscussion,
    Rating,
    ReviewDecision,
    ReviewRecord,
    SupportPlan,
)
from senforms.layout import fold_label

PARENTS, SENCO, STAFF = "parents", "senco", "staff"


@dataclass(frozen=True)
class Letter:
    """A document rendered from a letter template in ``templates/letters/``."""

    audience: str
    title: str
    template: str


@dataclass(frozen=True)
class Prefilled:
    """A senforms form for the SENCO, with what is already known filled in."""

    audience: str
    title: str
    kind: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Flag:
    """An outcome rated "not achieved" at two reviews in a row."""

    description: str
    ratings: tuple[str, ...]


@dataclass
class Next:
    documents: list[Letter | Prefilled] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)


def _pupil(form: EarlyDiscussion | SupportPlan | ReviewRecord) -> dict[str, Any]:
    return form.pupil.model_dump(exclude_none=True)


# --- assess ----------------------------------------------------------------------------------


def note_of_early_discussion(note: EarlyDiscussion) -> Letter:
    """A short note of the early discussion is added to the pupil's record and given to the
    parents (the local authority's guide to SEN support, seed 000; Code 6.45-6.47)."""
    return Letter(PARENTS, "Note of our early discussion", "early-discussion-note")


def formal_notification(note: EarlyDiscussion) -> Letter | None:
    """Where a school decides to make special educational provision, it must formally notify
    the parents (6.48; Children and Families Act 2014, s.68)."""
    if note.decision is EarlyDecision.SEN_SUPPORT:
        return Letter(PARENTS, "Formal notification of SEN support", "sen-notification")
    return None


def plan_after_discussion(note: EarlyDiscussion) -> Prefilled | None:
    """SEN support is planned with the parents: outcomes, support and a review date agreed
    (6.48). The SENCO gets the plan with the pupil, needs and outcomes sought filled in."""
    if note.decision is not EarlyDecision.SEN_SUPPORT:
        return None
    sought = [line.strip(" -•*\t") for line in note.outcomes_sought.splitlines() if line.strip(" -•*\t")]
    values = {
        "pupil": _pupil(note),
        "cycle": 1,
        "needs": note.difficulties,
        "primary_need": note.primary_need,
        "secondary_need": note.secondary_need,
        "outcomes": [{"description": text} for text in sought[:6]],
        "pupil_views": note.pupil_views,
    }
    return Prefilled(SENCO, "SEN support plan (pre-filled)", "support-plan", _present(values))


def next_discussion(note: EarlyDiscussion) -> Prefilled | None:
    """Monitor and meet again: the next early discussion form, ready for the agreed date (6.45)."""
    if note.decision is not EarlyDecision.MONITOR:
        return None
    values = {"pupil": _pupil(note), "meeting_date": note.next_meeting_date}
    return Prefilled(
        SENCO, "Early discussion note for the next meeting (pre-filled)", "early-discussion", _present(values)
    )


def after_early_discussion(note: EarlyDiscussion, history: History) -> Next:
    return Next(
        _some(
            note_of_early_discussion(note),
            formal_notification(note),
            plan_after_discussion(note),
            next_discussion(note),
        )
    )


# --- plan and do ------------------------------------------------------------------------------


def parent_copy_of_plan(plan: SupportPlan) -> Letter:
    """Parents should be fully aware of the planned support and of what they can do at home
    (6.51)."""
    return Letter(PARENTS, "Your child's SEN support plan", "plan-parent-copy")


def staff_briefing(plan: SupportPlan) -> Letter:
    """All teachers and support staff who work with the pupil should know the pupil's needs,
    the outcomes sought, the support provided and the teaching strategies (6.49)."""
    return Letter(STAFF, "Staff briefing", "staff-briefing")


def review_after_plan(plan: SupportPlan) -> Prefilled:
    """The plan is reviewed on the date agreed (6.52-6.53): the review record comes ready with
    every outcome and row of provision in it."""
    values = {
        "pupil": _pupil(plan),
        "review_date": plan.review_date,
        "plan_date": plan.plan_date,
        "cycle": plan.cycle,
        "outcomes": [{"description": o.description} for o in plan.outcomes],
        "provision": [{"what": p.what} for p in plan.provision],
    }
    return Prefilled(SENCO, f"Review record for {plan.review_date:%d %B %Y} (pre-filled)", "review", _present(values))


def after_support_plan(plan: SupportPlan, history: History) -> Next:
    return Next([parent_copy_of_plan(plan), staff_briefing(plan), review_after_plan(plan)])


# --- review ----------------------------------------------------------------------------------


def review_letter(review: ReviewRecord) -> Letter:
    """Parents get clear information on the impact of the support (6.55) and a record of the
    outcomes, action and support agreed at the meeting (6.71)."""
    return Letter(PARENTS, "Review of SEN support", "review-outcome")


def next_plan(review: ReviewRecord, history: History) -> Prefilled | None:
    """The cycle goes round again, informed by the review (6.54): the next plan with each outcome
    carried forward with its latest rating."""
    if review.decision not in (ReviewDecision.CONTINUE, ReviewDecision.REVISE, ReviewDecision.SPECIALIST):
        return None
    cycle = history.cycles.get(review.cycle)
    plan = cycle.plan if cycle else None
    criteria = {fold_label(o.description): o.success_criteria for o in plan.outcomes} if plan else {}
    values: dict[str, Any] = {
        "pupil": _pupil(review),
        "cycle": review.cycle + 1,
        "review_date": review.next_review_date,
        "outcomes": [
            {
                "description": o.description,
                "success_criteria": criteria.get(fold_label(o.description)),
                "last_rating": o.rating.value,
            }
            for o in review.outcomes
        ],
    }
    if plan is not None:
        values |= {
            "needs": plan.needs,
            "primary_need": plan.primary_need,
            "secondary_need": plan.secondary_need,
            "strategies": plan.strategies,
            "home": plan.home,
            "class_teacher": plan.class_teacher,
            "senco": plan.senco,
        }
        if review.decision is ReviewDecision.CONTINUE:
            values["provision"] = [p.model_dump(exclude_none=True) for p in plan.provision]
    return Prefilled(
        SENCO, f"SEN support plan, cycle {review.cycle + 1} (pre-filled)", "support-plan", _present(values)
    )


def specialist_letter(review: ReviewRecord) -> Letter | None:
    """Where a pupil makes little or no progress, the school should consider involving
    specialists, and the parents should always be involved in that decision (6.58-6.59)."""
    if review.decision is ReviewDecision.SPECIALIST:
        return Letter(PARENTS, "Involving a specialist", "specialist-letter")
    return None


def evidence_summary(review: ReviewRecord) -> Letter | None:
    """Where the pupil has not made expected progress, the school or parents may request an EHC
    needs assessment; the local authority expects evidence of the SEN support given (6.63)."""
    if review.decision is ReviewDecision.EHC:
        return Letter(SENCO, "Evidence summary for an EHC needs assessment request", "evidence-summary")
    return None


def end_of_support(review: ReviewRecord) -> Letter | None:
    """SEN support ends when the pupil no longer needs it; the register is updated and the
    parents are told (6.44, 6.48)."""
    if review.decision is ReviewDecision.END:
        return Letter(PARENTS, "SEN support is ending", "sen-support-ended")
    return None


def not_achieved_twice(review: ReviewRecord, history: History) -> list[Flag]:
    """Where progress stays little or none, the SENCO should consider specialist involvement
    (6.58-6.59): an outcome rated "not achieved" at this review and at the review before."""
    earlier = history.reviews_before(review.cycle)
    if not earlier:
        return []
    before = {fold_label(o.description): o.rating for o in earlier[-1].outcomes}
    return [
        Flag(o.description, (Rating.NOT_ACHIEVED.label, Rating.NOT_ACHIEVED.label))
        for o in review.outcomes
        if o.rating is Rating.NOT_ACHIEVED and before.get(fold_label(o.description)) is Rating.NOT_ACHIEVED
    ]


def specialist_prompt(flags: list[Flag]) -> Letter | None:
    """The flag reaches the SENCO as its own document, so it cannot be missed (6.58-6.59)."""
    if flags:
        return Letter(SENCO, "Consider involving a specialist", "specialist-prompt")
    return None


def after_review(review: ReviewRecord, history: History) -> Next:
    flags = not_achieved_twice(review, history)
    documents = _some(
        review_letter(review),
        specialist_letter(review),
        end_of_support(review),
        next_plan(review, history),
        evidence_summary(review),
        specialist_prompt(flags),
    )
    return Next(documents, flags)


def what_next(form: EarlyDiscussion | SupportPlan | ReviewRecord, history: History) -> Next:
    if isinstance(form, EarlyDiscussion):
        return after_early_discussion(form, history)
    if isinstance(form, SupportPlan):
        return after_support_plan(form, history)
    return after_review(form, history)


# --- the SEN register ------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    provision: str  # "K" SEN support, "N" no SEN
    primary_need: str | None
    secondary_need: str | None
    since: date


def register_status(form: EarlyDiscussion | SupportPlan | ReviewRecord, current: Status | None) -> Status | None:
    """The pupil's place on the SEN register after this form, or None if unchanged.

    SEN support starts with the decision to provide it (6.48) and is recorded with a primary,
    and at most one secondary, type of need (school census); the plan may refine the need; a
    review may end support.
    """
    if isinstance(form, EarlyDiscussion):
        if form.decision is EarlyDecision.SEN_SUPPORT and (current is None or current.provision != "K"):
            return Status("K", form.primary_need, form.secondary_need, form.meeting_date)
        return None
    if isinstance(form, SupportPlan):
        if current is None or current.provision != "K":
            return Status("K", form.primary_need, form.secondary_need, form.plan_date)
        if (current.primary_need, current.secondary_need) != (form.primary_need, form.secondary_need):
            return Status("K", form.primary_need, form.secondary_need, form.plan_date)
        return None
    if form.decision is ReviewDecision.END and current is not None and current.provision == "K":
        return Status("N", None, None, form.review_date)
    return None


def _some(*items: Any) -> list[Any]:
    return [i for i in items if i is not None]


def _present(values: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values, so a pre-filled form shows its placeholder where nothing is known."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _present(value)
        elif isinstance(value, list):
            value = [_present(v) if isinstance(v, dict) else v for v in value]
        if value not in (None, "", [], {}):
            out[key] = value
    return out
