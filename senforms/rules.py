"""What comes next: the graduated approach's rules, one small function each.

Each rule takes validated forms (and the pupil's history) and returns what should be written;
nothing here touches files or the archive. The docstring of each rule cites the paragraph of the
SEND Code of Practice 2015 (chapter 6) that it serves.

``STEPS`` is the one registry of what each form kind does: what comes after it and its effect on
the SEN register. ``what_next`` and ``register_status`` look a form up there, so a kind without
an entry is refused (``UnknownKindError``), never treated as another kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from senforms import letters
from senforms.history import History
from senforms.kinds import (
    KINDS,
    EarlyDecision,
    EarlyDiscussion,
    EndReason,
    FormModel,
    ParentMeeting,
    Rating,
    ReviewDecision,
    ReviewRecord,
    SupportPlan,
    kind_of,
)
from senforms.letters import Audience, Letter
from senforms.values import fold_outcome

PARENTS, SENCO, STAFF = Audience.PARENTS, Audience.SENCO, Audience.STAFF


class UnknownKindError(LookupError):
    """A form whose kind has no entry in ``STEPS``: a programming error, refused loudly."""


def _issued(letter: Letter, form: FormModel) -> Letter | None:
    """The letter if this form's kind and decision issue it (``letters.LETTERS`` says which)."""
    kind = next(k.slug for k in KINDS.values() if type(form) is k.model)
    return letter if letter.issued_by(form, kind) else None


@dataclass(frozen=True)
class Prefilled:
    """A senforms form for the SENCO, with what is already known filled in."""

    audience: str
    title: str
    kind: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Flag:
    """An outcome rated "not achieved" at two or more reviews in a row; ``ratings`` lists every
    rating in the streak, earliest first, each with its review's date; ``new`` when the streak
    has just begun and nobody has acted on it yet (the SENCO is prompted only then)."""

    description: str
    ratings: tuple[str, ...]
    new: bool = True


@dataclass
class Next:
    documents: list[Letter | Prefilled] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)


def _pupil(form: EarlyDiscussion | SupportPlan | ReviewRecord | ParentMeeting) -> dict[str, Any]:
    return form.pupil.model_dump(exclude_none=True)


# --- assess ----------------------------------------------------------------------------------


def note_of_early_discussion(note: EarlyDiscussion) -> Letter:
    """A short note of the early discussion is added to the pupil's record and given to the
    parents (the local authority's guide to SEN support, seed 000; Code 6.45-6.47)."""
    return letters.EARLY_DISCUSSION_NOTE


def formal_notification(note: EarlyDiscussion) -> Letter | None:
    """Where a school decides to make special educational provision, it must formally notify
    the parents (6.48; Children and Families Act 2014, s.68)."""
    return _issued(letters.SEN_NOTIFICATION, note)


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
    return letters.PLAN_PARENT_COPY


def staff_briefing(plan: SupportPlan) -> Letter:
    """All teachers and support staff who work with the pupil should know the pupil's needs,
    the outcomes sought, the support provided and the teaching strategies (6.49)."""
    return letters.STAFF_BRIEFING


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
    return Prefilled(
        SENCO,
        f"Review record for {plan.review_date.day} {plan.review_date:%B %Y} (pre-filled)",
        "review",
        _present(values),
    )


def formal_notification_with_plan(plan: SupportPlan, history: History) -> Letter | None:
    """A plan that puts a pupil on SEN support when no early discussion did (the last one decided
    to monitor, or a review had ended the support) is the school deciding to make special
    educational provision, and the parents must be told formally (6.48; Children and Families
    Act 2014, s.68), as an early discussion deciding it would have told them."""
    before = status_on(history, plan.plan_date)
    if before is not None and before.provision in ON_REGISTER:
        return None
    return letters.SEN_NOTIFICATION_WITH_PLAN


def after_support_plan(plan: SupportPlan, history: History) -> Next:
    return Next(
        _some(
            formal_notification_with_plan(plan, history),
            parent_copy_of_plan(plan),
            staff_briefing(plan),
            review_after_plan(plan),
        )
    )


# --- review ----------------------------------------------------------------------------------


def review_letter(review: ReviewRecord) -> Letter:
    """Parents get clear information on the impact of the support (6.55) and a record of the
    outcomes, action and support agreed at the meeting (6.71)."""
    return letters.REVIEW_OUTCOME


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _counted(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Findings:
    """What a review found, in the words a parent reads on the letter's first page (6.55):
    ``summary`` counts the ratings, ``decision`` says what was agreed and never contradicts them."""

    summary: str
    decision: str
    achieved: int
    partly: int
    not_achieved: int


def _how_many(name: str, achieved: int, partly: int, missed: int) -> str:
    """ "Ella achieved 1, partly achieved 1 and did not yet achieve 1." with zeros left out."""
    total = achieved + partly + missed
    parts = [(achieved, "achieved"), (partly, "partly achieved"), (missed, "did not yet achieve")]
    given = [(n, words) for n, words in parts if n]
    if len(given) == 1:
        words = given[0][1]
        if total == 1:
            return f"{name} {words} it."
        every = "both" if total == 2 else f"all {total}"
        return f"{name} did not yet achieve any of them." if missed else f"{name} {words} {every}."
    said = [f"{words} {n}" for n, words in given]
    return f"{name} {', '.join(said[:-1])} and {said[-1]}."


def review_findings(review: ReviewRecord) -> Findings:
    """The review's findings for parents, built from the ratings (6.55, 6.71). The sentence for
    "continue" follows the ratings: "the support is working" only when nothing was rated
    "Not achieved"."""
    name = review.pupil.known_as
    achieved = sum(o.rating is Rating.ACHIEVED for o in review.outcomes)
    partly = sum(o.rating is Rating.PARTLY for o in review.outcomes)
    missed = sum(o.rating is Rating.NOT_ACHIEVED for o in review.outcomes)
    total = achieved + partly + missed
    summary = f"At the review on {_day(review.review_date)} we looked at {_counted(total, 'target')}. " + _how_many(
        name, achieved, partly, missed
    )
    return Findings(summary, _decision_words(review, missed, partly), achieved, partly, missed)


def _decision_words(review: ReviewRecord, missed: int, partly: int) -> str:
    name = review.pupil.known_as
    decision = review.decision
    if decision is ReviewDecision.CONTINUE:
        if missed:
            them = "this target" if missed == 1 else "these targets"
            return (
                f"{name} has not met every target yet. We agreed to keep the same plan for now and give it "
                f"more time. We will watch {them} closely and look at {'it' if missed == 1 else 'them'} "
                "again at the next review."
            )
        if partly:
            return "The support is helping, so we will keep the plan as it is and check again at the next review."
        return "The support is working, so we will carry on with the plan as it is."
    if decision is ReviewDecision.REVISE:
        return "We agreed to change some of the targets or some of the help, as we talked about. We will share the new plan with you."
    if decision is ReviewDecision.SPECIALIST:
        return (
            "We would like to ask a specialist for advice. We will only do this if you agree, and we "
            "will write to you about it."
        )
    if decision is ReviewDecision.EHC:
        return (
            "We agreed to ask the council for an EHC needs assessment (EHC stands for Education, Health "
            "and Care). This is a close look at all of "
            f"{name}'s needs. It can lead to an EHC plan: a plan from the council that sets out the help "
            f"{name} must get. We will write to you about it. The help at school "
            "goes on while you wait."
        )
    return (
        f"We agreed that SEN support for {name} will end. {end_reason(review)}We will write to you about it.".replace(
            "  ", " "
        )
    )


def end_reason(review: ReviewRecord) -> str:
    """Why SEN support ends, as the form gives it and nothing more: a form printed before the
    form asked (version 1) gets no reason at all, never a guessed "enough progress"."""
    name = review.pupil.known_as
    reason = review.end_reason
    if reason is EndReason.PROGRESS:
        return f"{name} has made good progress and no longer needs SEN support. "
    if reason is EndReason.EHC_PLAN:
        return (
            f"{name} is moving to an EHC plan (an Education, Health and Care plan from the council). An EHC "
            f"plan sets out the help a child must get, so {name}'s help will now be set out in that plan. "
        )
    if reason is EndReason.LEAVING:
        return f"{name} is leaving our school. "
    if reason is EndReason.PARENTS:
        return "You asked us to end it. "
    if reason is EndReason.OTHER and review.end_reason_words:
        words = review.end_reason_words.strip()
        return f"The reason we agreed: {words}{'' if words.endswith(('.', '!', '?')) else '.'} "
    return ""


def next_plan(review: ReviewRecord, history: History) -> Prefilled | None:
    """The cycle goes round again, informed by the review (6.54): the next plan with each outcome
    carried forward with its latest rating. After a request for an EHC needs assessment too: SEN
    support goes on while the council decides (up to 20 weeks), and so does its plan."""
    if review.decision is ReviewDecision.END:
        return None
    cycle = history.cycles.get(review.cycle)
    plan = cycle.plan if cycle else None
    criteria = {fold_outcome(o.description): o.success_criteria for o in plan.outcomes} if plan else {}
    values: dict[str, Any] = {
        "pupil": _pupil(review),
        "cycle": review.cycle + 1,
        "review_date": review.next_review_date,
        "outcomes": [
            {
                "description": o.description,
                "success_criteria": criteria.get(fold_outcome(o.description)),
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
        if review.decision in (ReviewDecision.CONTINUE, ReviewDecision.EHC):
            # The same support goes on; an EHC request changes nothing until the council decides.
            values["provision"] = [p.model_dump(exclude_none=True) for p in plan.provision]
    return Prefilled(
        SENCO, f"SEN support plan, cycle {review.cycle + 1} (pre-filled)", "support-plan", _present(values)
    )


def specialist_letter(review: ReviewRecord) -> Letter | None:
    """Where a pupil makes little or no progress, the school should consider involving
    specialists, and the parents should always be involved in that decision (6.58-6.59)."""
    return _issued(letters.SPECIALIST_LETTER, review)


def ehc_request_letter(review: ReviewRecord) -> Letter | None:
    """The parents are told what an EHC needs assessment is and what happens next: the local
    authority decides within 6 weeks whether to assess (9.14) and issues any plan within 20 weeks
    of the request (9.40); parents may ask for one themselves (6.63)."""
    return _issued(letters.EHC_REQUEST, review)


def end_of_support(review: ReviewRecord) -> Letter | None:
    """SEN support ends when the pupil no longer needs it; the register is updated and the
    parents are told (6.44, 6.48)."""
    return _issued(letters.SEN_SUPPORT_ENDED, review)


def not_achieved_twice(review: ReviewRecord, history: History) -> list[Flag]:
    """Where progress stays little or none, the SENCO should consider specialist involvement
    (6.58-6.59): an outcome rated "not achieved" at this review and at the review before. Each
    flag lists every rating of its streak; it is ``new`` (and prompts the SENCO) only when the
    streak has just begun (two reviews) and no review in it already decided on a specialist or
    an EHC needs assessment."""
    earlier = history.reviews_before(review.cycle)
    flags = []
    for outcome in review.outcomes:
        if outcome.rating is not Rating.NOT_ACHIEVED:
            continue
        key = fold_outcome(outcome.description)
        streak = [review]
        for before in reversed(earlier):
            rated = {fold_outcome(o.description): o.rating for o in before.outcomes}
            if rated.get(key) is not Rating.NOT_ACHIEVED:
                break
            streak.insert(0, before)
        if len(streak) < 2:
            continue
        acted = any(r.decision in (ReviewDecision.SPECIALIST, ReviewDecision.EHC) for r in streak)
        ratings = tuple(f"{Rating.NOT_ACHIEVED.label} ({_day(r.review_date)})" for r in streak)
        flags.append(Flag(outcome.description, ratings, new=len(streak) == 2 and not acted))
    return flags


def specialist_prompt(flags: list[Flag]) -> Letter | None:
    """The flag reaches the SENCO as its own document, so it cannot be missed (6.58-6.59); only
    for a new streak, not again at every review of one already prompted or acted on."""
    if any(f.new for f in flags):
        return letters.SPECIALIST_PROMPT
    return None


def after_review(review: ReviewRecord, history: History) -> Next:
    flags = not_achieved_twice(review, history)
    documents = _some(
        review_letter(review),
        specialist_letter(review),
        end_of_support(review),
        ehc_request_letter(review),
        next_plan(review, history),
        specialist_prompt(flags),
    )
    return Next(documents, flags)


# --- meetings with parents ---------------------------------------------------------------------


def note_of_meeting(meeting: ParentMeeting) -> Letter:
    """Parents get a record of what was discussed and the actions agreed, with who does what
    by when (6.71); meeting parents regularly is part of SEN support (6.65)."""
    return letters.PARENT_MEETING_NOTE


def after_parent_meeting(meeting: ParentMeeting, history: History) -> Next:
    return Next([note_of_meeting(meeting)])


# --- the SEN register ------------------------------------------------------------------------


#: On the SEN register: SEN support (K) or an EHC plan (E); N is no SEN.
ON_REGISTER = ("K", "E")


@dataclass(frozen=True)
class Status:
    provision: str  # "K" SEN support, "E" EHC plan, "N" no SEN
    primary_need: str | None
    secondary_need: str | None
    since: date


def register_after_early_discussion(note: EarlyDiscussion, current: Status | None) -> Status | None:
    """SEN support starts with the decision to provide it (6.48), recorded with a primary and
    at most one secondary type of need (school census)."""
    if note.decision is EarlyDecision.SEN_SUPPORT and (current is None or current.provision not in ON_REGISTER):
        return Status("K", note.primary_need, note.secondary_need, note.meeting_date)
    return None


def register_after_plan(plan: SupportPlan, current: Status | None) -> Status | None:
    """A plan puts the pupil on SEN support if they were not already, and may refine the need
    recorded for the census (6.48). A pupil with an EHC plan (E) stays E: schools write support
    plans for them too, and only the local authority ends an EHC plan, which no form here records."""
    if current is None or current.provision not in ON_REGISTER:
        return Status("K", plan.primary_need, plan.secondary_need, plan.plan_date)
    if (current.primary_need, current.secondary_need) != (plan.primary_need, plan.secondary_need):
        return Status(current.provision, plan.primary_need, plan.secondary_need, plan.plan_date)
    return None


def register_after_review(review: ReviewRecord, current: Status | None) -> Status | None:
    """A review may end SEN support when the pupil no longer needs it (6.44); the pupil then
    leaves the register (provision N). SEN support that ends because the pupil is moving to an
    EHC plan (end reason "ehc-plan") keeps the pupil on the register with provision E, and the
    same need codes: the census requires them with E as with K, and the needs have not changed."""
    if review.decision is ReviewDecision.END and current is not None and current.provision == "K":
        if review.end_reason is EndReason.EHC_PLAN:
            return Status("E", current.primary_need, current.secondary_need, review.review_date)
        return Status("N", None, None, review.review_date)
    return None


def status_on(history: History, day: date) -> Status | None:
    """The pupil's place on the SEN register on ``day``, from their forms of that day or before,
    replayed in order as the archive's record is."""
    status = None
    for form in history.forms:
        if getattr(form, kind_of(form).meeting_date) <= day:
            status = register_status(form, status) or status
    return status


def register_unchanged(form: FormModel, current: Status | None) -> None:
    """A form that never changes the register (a meeting note records a meeting, not a decision)."""
    return None


# --- the registry: what each kind does ---------------------------------------------------------

F = TypeVar("F", bound=FormModel)


@dataclass(frozen=True)
class Step(Generic[F]):
    """What a form kind does: the rules that decide what comes after it, and its effect on the
    SEN register. Generic in the kind's model, so mypy checks that both functions take it."""

    model: type[F]
    then: Callable[[F, History], Next]
    register: Callable[[F, Status | None], Status | None]


STEPS: dict[str, Step[Any]] = {
    "early-discussion": Step(EarlyDiscussion, after_early_discussion, register_after_early_discussion),
    "support-plan": Step(SupportPlan, after_support_plan, register_after_plan),
    "review": Step(ReviewRecord, after_review, register_after_review),
    "parent-meeting": Step(ParentMeeting, after_parent_meeting, register_unchanged),
}


def step_for(form: FormModel) -> Step[Any]:
    """The registry's entry for this form's kind; ``UnknownKindError`` if it has none."""
    for step in STEPS.values():
        if type(form) is step.model:
            return step
    raise UnknownKindError(f"{type(form).__name__} has no entry in rules.STEPS")


def what_next(form: FormModel, history: History) -> Next:
    """What comes after this form under the graduated approach."""
    return step_for(form).then(form, history)


def register_status(form: FormModel, current: Status | None) -> Status | None:
    """The pupil's place on the SEN register after this form, or None if unchanged."""
    return step_for(form).register(form, current)


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
