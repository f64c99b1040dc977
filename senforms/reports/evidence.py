"""The EHC needs assessment evidence pack (Code of Practice 6.63): before it decides whether to
assess, the local authority "will expect to see evidence of the action taken by the school as part
of SEN support". One Word document from the archive: the pupil's needs and when SEN support
began; every cycle with its outcomes and their ratings at each review, with a chart; the
provision with its dates, frequency, hours, group size and cost; the specialists involved and what
they advised; and the pupil's and parents' views over time.

It is issued to the SENCO with a review that decides to request an assessment (the pipeline calls
``evidence_pack`` right after the review is filed, inside the same transaction, so the pack shows
the record as that review left it), and on demand with ``senforms evidence UPN``.

The cycles, outcomes, ratings and provision come from the archive's tables; the words that only
the forms hold (needs as written, views, who attended) from the current forms' answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.archive.store import Archive
from senforms.config import Settings
from senforms.documents import Rendered
from senforms.errors import PupilNotFoundError
from senforms.kinds import KINDS, BroadAreas, EarlyDecision, FormModel, Rating, ReviewDecision, ReviewRecord
from senforms.letters import Audience
from senforms.reports import printed
from senforms.reports.charts import Series, ratings_chart
from senforms.reports.frequency import parse_frequency
from senforms.values import fold_outcome, need_codes, parse_upn

TITLE = "Evidence pack for an EHC needs assessment request"
TEMPLATE = "report:evidence-pack"


def wanted(form: FormModel) -> bool:
    """A pack is issued with a review that decides to request an EHC needs assessment (6.63)."""
    return isinstance(form, ReviewRecord) and form.decision is ReviewDecision.EHC


# --- what the pack holds -------------------------------------------------------------------------


@dataclass
class RatingAt:
    reviewed_on: date
    cycle: int
    rating: str
    evidence: str | None


@dataclass
class OutcomeRow:
    description: str
    success_criteria: str | None
    ratings: list[RatingAt] = field(default_factory=list)


@dataclass
class ProvisionRow:
    what: str
    who: str | None
    group_size: str | None
    frequency: str | None
    hours_a_week: float | None
    frequency_problem: str | None
    start: date | None
    end: date | None  # the review that closed its cycle, or None while it runs
    weekly_cost: Decimal | None
    cost_to_date: Decimal | None
    impact: str | None


@dataclass
class CycleRow:
    number: int
    plan_date: date | None
    review_due: date | None
    reviewed_on: date | None
    decision: str | None
    needs: str | None
    outcomes: list[OutcomeRow] = field(default_factory=list)
    provision: list[ProvisionRow] = field(default_factory=list)


@dataclass
class Said:
    """Something a person said or advised, as a form recorded it."""

    on: date
    where: str  # which form
    who: str
    words: str


@dataclass
class Evidence:
    upn: str
    name: str
    date_of_birth: date
    year_group: str
    class_name: str | None
    school: str
    support_began: date | None
    needs_codes: list[tuple[str, str]]  # (code, description) as the register has them now
    status_history: list[tuple[str, str | None, str | None, date, date | None]]
    areas: list[str]
    needs_words: list[Said]
    strengths: list[Said]
    cycles: list[CycleRow]
    meetings: list[tuple[date, str]]
    specialists: list[Said]
    views: list[Said]
    as_of: date
    # Each early discussion's decision, as (date, label): for a pupil never on SEN support, what was
    # decided instead ("Monitor and meet again", "No SEN").
    decisions: list[tuple[date, str]] = field(default_factory=list)
    forms_on_record: list[str] = field(default_factory=list)  # the kinds of form received, by title, in order

    @property
    def never_on_support(self) -> bool:
        """No SEN support (nor EHC plan) ever on the register, and no plan or review: a pack of empty
        sections would read as missing data, so the pack and the command say so instead."""
        return self.support_began is None and not self.cycles

    @property
    def weeks_of_support(self) -> int:
        return 0 if self.support_began is None else max(0, (self.as_of - self.support_began).days // 7)

    @property
    def total_cost(self) -> Decimal:
        return sum(
            (p.cost_to_date for c in self.cycles for p in c.provision if p.cost_to_date is not None), Decimal(0)
        )


# Words that mark someone from outside the school (Code 6.58-6.62: specialist support).
_SPECIALIST = re.compile(
    r"\b(speech and language|salt|therapist|therapy|psycholog\w*|\bep\b|specialist|advisory|outreach|camhs|"
    r"paediatric\w*|pediatric\w*|nurse|occupational|physio\w*|sensory support|hearing support|visual impairment|"
    r"early help|social worker|consultant|clinic\w*)\b",
    re.IGNORECASE,
)

_KIND_TITLE = {slug: kind.title for slug, kind in KINDS.items()}


def _pupil(session: Session, upn: str) -> t.Pupil:
    try:
        upn = parse_upn(upn)
    except ValueError:
        upn = upn.strip().upper()
    row = session.scalar(select(t.Pupil).where(or_(t.Pupil.upn == upn, t.Pupil.former_upn == upn)))
    if row is None:
        raise PupilNotFoundError(f"The archive has no pupil with UPN {upn}.")
    return row


def gather(session: Session, upn: str, settings: Settings, as_of: date) -> Evidence:
    """Everything the pack shows, read from the archive as it stands in ``session``."""
    pupil = _pupil(session, upn)
    codes = need_codes()
    statuses = session.scalars(
        select(t.SenStatus).where(t.SenStatus.pupil_id == pupil.id).order_by(t.SenStatus.start_date, t.SenStatus.id)
    ).all()
    began = next((s.start_date for s in statuses if s.provision in ("K", "E")), None)
    current = next((s for s in reversed(statuses) if s.end_date is None), None)
    needs_codes = [
        (code, codes.get(code, code))
        for code in ((current.primary_need, current.secondary_need) if current else ())
        if code
    ]
    forms = session.execute(
        select(t.ReceivedForm.id, t.ReceivedForm.kind, t.ReceivedForm.meeting_date, t.ReceivedForm.data)
        .where(t.ReceivedForm.pupil_id == pupil.id, t.ReceivedForm.superseded_by_id.is_(None))
        .order_by(t.ReceivedForm.meeting_date, t.ReceivedForm.id)
    ).all()
    answers = [(f.kind, f.meeting_date, json.loads(f.data)) for f in forms]
    evidence = Evidence(
        upn=pupil.upn,
        name=" ".join(n for n in (pupil.legal_forename, pupil.legal_surname) if n),
        date_of_birth=pupil.date_of_birth,
        year_group=pupil.year_group,
        class_name=pupil.class_name,
        school=settings.school_name,
        support_began=began,
        needs_codes=needs_codes,
        status_history=[(s.provision, s.primary_need, s.secondary_need, s.start_date, s.end_date) for s in statuses],
        areas=_areas(answers),
        needs_words=[],
        strengths=[],
        cycles=_cycles(session, pupil.id, as_of),
        meetings=[
            (m.held_on, _KIND_TITLE.get(m.kind, m.kind))
            for m in session.scalars(
                select(t.Meeting).where(t.Meeting.pupil_id == pupil.id).order_by(t.Meeting.held_on, t.Meeting.id)
            )
        ],
        specialists=[],
        views=[],
        as_of=as_of,
    )
    _from_forms(evidence, answers)
    decided = {d.value: d.label for d in EarlyDecision}
    evidence.decisions = [
        (on, decided.get(data.get("decision"), str(data.get("decision"))))
        for kind, on, data in answers
        if kind == "early-discussion" and data.get("decision")
    ]
    for kind, _, _ in answers:
        title = _KIND_TITLE.get(kind, kind)
        if title not in evidence.forms_on_record:
            evidence.forms_on_record.append(title)
    return evidence


def no_support_note(evidence: Evidence) -> str | None:
    """For a pupil never on SEN support, the plain sentence the command prints; else None."""
    if not evidence.never_on_support:
        return None
    forms = [f"the {title[:1].lower()}{title[1:]}" for title in evidence.forms_on_record]
    if not forms:
        shows = "holds only the pupil's details"
    else:
        listed = forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " and " + forms[-1]
        shows = f"shows only what {listed} {'records' if len(forms) == 1 else 'record'}"
    return (
        f"The archive holds no SEN support for the pupil with UPN {evidence.upn}: no support plan and no review "
        f"are on record, so the pack {shows}."
    )


def _areas(answers: list[tuple[str, date, dict[str, Any]]]) -> list[str]:
    names: list[str] = []
    for kind, _, data in answers:
        if kind == "early-discussion" and isinstance(data.get("areas"), dict):
            for name in BroadAreas.model_validate(data["areas"]).names():
                if name not in names:
                    names.append(name)
    return names


def _cycles(session: Session, pupil_id: int, as_of: date) -> list[CycleRow]:
    cycles = session.scalars(select(t.Cycle).where(t.Cycle.pupil_id == pupil_id).order_by(t.Cycle.number)).all()
    ids = [c.id for c in cycles]
    outcomes = session.scalars(
        select(t.Outcome).where(t.Outcome.cycle_id.in_(ids)).order_by(t.Outcome.cycle_id, t.Outcome.position)
    ).all()
    ratings = session.execute(
        select(t.OutcomeRating, t.Outcome.cycle_id)
        .join(t.Outcome, t.Outcome.id == t.OutcomeRating.outcome_id)
        .where(t.Outcome.cycle_id.in_(ids))
        .order_by(t.OutcomeRating.reviewed_on, t.OutcomeRating.id)
    ).all()
    provision = session.scalars(
        select(t.Provision).where(t.Provision.cycle_id.in_(ids)).order_by(t.Provision.cycle_id, t.Provision.position)
    ).all()
    plan_needs = {
        row[0]: row[1]
        for row in session.execute(
            select(t.Cycle.id, t.ReceivedForm.data)
            .join(t.ReceivedForm, t.ReceivedForm.id == t.Cycle.plan_form_id)
            .where(t.Cycle.pupil_id == pupil_id)
        )
    }
    number = {c.id: c.number for c in cycles}
    rows: dict[int, CycleRow] = {}
    for c in cycles:
        needs = json.loads(plan_needs[c.id]).get("needs") if c.id in plan_needs else None
        rows[c.id] = CycleRow(c.number, c.plan_date, c.review_due, c.reviewed_on, c.decision, needs)
    by_outcome: dict[int, OutcomeRow] = {}
    for o in outcomes:
        by_outcome[o.id] = OutcomeRow(o.description, o.success_criteria)
        rows[o.cycle_id].outcomes.append(by_outcome[o.id])
    for r, cycle_id in ratings:
        by_outcome[r.outcome_id].ratings.append(RatingAt(r.reviewed_on, number[cycle_id], r.rating, r.evidence))
    for p in provision:
        cycle = rows[p.cycle_id]
        start = p.start_date or cycle.plan_date
        end = cycle.reviewed_on
        parsed = parse_frequency(p.frequency)
        cost = None
        if p.weekly_cost is not None and start is not None:
            weeks = max(0, ((end or as_of) - start).days) / 7
            cost = (p.weekly_cost * Decimal(str(round(weeks, 4)))).quantize(Decimal("0.01"))
        cycle.provision.append(
            ProvisionRow(
                p.what,
                p.who,
                p.group_size,
                p.frequency,
                parsed.hours_a_week,
                parsed.problem,
                start,
                end,
                p.weekly_cost,
                cost,
                p.impact,
            )
        )
    return list(rows.values())


def _from_forms(evidence: Evidence, answers: list[tuple[str, date, dict[str, Any]]]) -> None:
    """The needs in the forms' words, the strengths, the views, and the specialists."""
    for kind, on, data in answers:
        where = _KIND_TITLE.get(kind, kind)
        if kind == "early-discussion":
            _said(evidence.needs_words, on, where, "Difficulties noted", data.get("difficulties"))
            _said(evidence.strengths, on, where, "Strengths", data.get("strengths"))
            _said(evidence.views, on, where, "Parents' concerns", data.get("parent_concerns"))
        if kind == "support-plan":
            _said(evidence.needs_words, on, where + f" (cycle {data.get('cycle')})", "Summary of needs", data.get("needs"))
        for key, whose in (("pupil_views", "The pupil"), ("parent_views", "Parents")):
            _said(evidence.views, on, where, whose, data.get(key))
        if kind == "review":
            decision = data.get("decision")
            outside = [
                part.strip() for part in re.split(r"[,;\n]", data.get("attendees") or "") if _SPECIALIST.search(part)
            ]
            for person in outside:
                _said(evidence.specialists, on, where, person, "Attended the review.")
            # Fields a later version of the review form adds (who is to be involved and why, the
            # advice given): read by name when present, so older forms still work.
            for key, value in data.items():
                if ("specialist" in key or key in ("advice", "next_steps")) and isinstance(value, str):
                    _said(evidence.specialists, on, where, key.replace("_", " ").capitalize(), value)
            if decision == ReviewDecision.SPECIALIST.value:
                _said(
                    evidence.specialists,
                    on,
                    where,
                    "Decision",
                    "The review decided to involve a specialist (Code of Practice 6.58-6.59).",
                )
            if data.get("staff_views") and (decision == ReviewDecision.SPECIALIST.value or outside):
                _said(evidence.specialists, on, where, "Staff views", data["staff_views"])
            _said(evidence.views, on, where, "Staff", data.get("staff_views"))
    for cycle in evidence.cycles:
        for p in cycle.provision:
            if p.who and _SPECIALIST.search(f"{p.who} {p.what}"):
                advice = f"Provided: {p.what}" + (f". Impact: {p.impact}" if p.impact else "")
                _said(evidence.specialists, cycle.plan_date or evidence.as_of, f"Plan, cycle {cycle.number}", p.who, advice)
    evidence.specialists.sort(key=lambda s: s.on)


def _said(into: list[Said], on: date, where: str, who: str, words: Any) -> None:
    if isinstance(words, str) and words.strip():
        into.append(Said(on, where, who, words))


# --- the document --------------------------------------------------------------------------------


_RATING_LABEL = {r.value: r.label for r in Rating}
_DECISION_LABEL = {d.value: d.label for d in ReviewDecision}


def _d(value: date | None) -> str:
    return "" if value is None else f"{value:%d/%m/%Y}"


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"£{value:,.2f}"


def _hours(p: ProvisionRow) -> str:
    if p.hours_a_week is None:
        return f"not worked out: {p.frequency_problem}"
    return f"{p.hours_a_week:.2f}".rstrip("0").rstrip(".")


def chart(evidence: Evidence) -> bytes | None:
    """Ratings by review, one line per outcome; outcomes carried from one cycle to the next are
    one line (matched by ``fold_outcome``, as the rules and the record match them)."""
    reviews = sorted({(r.reviewed_on, r.cycle) for c in evidence.cycles for o in c.outcomes for r in o.ratings})
    if not reviews:
        return None
    index = {review: i for i, review in enumerate(reviews)}
    lines: dict[str, Series] = {}
    for c in evidence.cycles:
        for o in c.outcomes:
            key = fold_outcome(o.description)
            line = lines.setdefault(key, Series(f"{len(lines) + 1}. {o.description}", []))
            line.points.extend((index[(r.reviewed_on, r.cycle)], r.rating) for r in o.ratings)
    series = [Series(s.label, sorted(set(s.points))) for s in lines.values() if s.points]
    return ratings_chart(reviews, series)


def render(evidence: Evidence, written: date) -> bytes:
    doc = printed.new_document(f"{TITLE}: {evidence.name}", written)
    doc.add_paragraph(TITLE, style="Title")
    printed.paragraph(doc, evidence.name, bold_lead="Pupil: ")
    printed.paragraph(
        doc,
        f"{evidence.upn}; born {_d(evidence.date_of_birth)}; year group {evidence.year_group}"
        + (f"; class {evidence.class_name}" if evidence.class_name else ""),
        bold_lead="UPN: ",
    )
    if evidence.school:
        printed.paragraph(doc, evidence.school, bold_lead="School: ")
    printed.paragraph(doc, _d(written), bold_lead="Written: ")
    doc.add_paragraph(
        "This pack sets out the SEN support the school has given, for the local authority deciding whether "
        "to carry out an Education, Health and Care (EHC) needs assessment (SEND Code of Practice 2015, 6.63 "
        "and chapter 9). It is built from the school's SEN records; the words in quotation are as written on "
        "the forms at each meeting."
    )

    never = evidence.never_on_support
    if never:
        # Said first, so that the sections below are not read as records gone missing.
        decided = " ".join(
            f"The early discussion of {_d(on)} decided: {label}." for on, label in evidence.decisions
        )
        printed.paragraph(
            doc,
            "the school's SEN records hold no support plan and no review, and the SEND register has never "
            "had this pupil on SEN support, so this pack has no outcomes, ratings or provision to show. " + decided,
            bold_lead="There is no SEN support on record for this pupil: ",
        )

    doc.add_paragraph("Summary", style="Heading 1")
    cycles_reviewed = sum(1 for c in evidence.cycles if c.reviewed_on)
    summary = (
        [["SEN support", "none on record (no support plan, no review)"]]
        if never
        else [
            ["SEN support began", _d(evidence.support_began) or "not recorded"],
            ["Weeks of SEN support", str(evidence.weeks_of_support)],
            ["Cycles of assess, plan, do, review", f"{len(evidence.cycles)} ({cycles_reviewed} reviewed)"],
        ]
    )
    summary.append(["Meetings with parents", str(len(evidence.meetings))])
    if not never:
        summary.append(["Cost of provision recorded", _money(evidence.total_cost)])
    printed.table(doc, ["", ""], summary, widths=[6, 11])

    doc.add_paragraph("Needs", style="Heading 1")
    if evidence.needs_codes:
        printed.paragraph(
            doc, "; ".join(f"{desc} ({code})" for code, desc in evidence.needs_codes), bold_lead="Type of need (school census): "
        )
    if evidence.areas:
        printed.paragraph(doc, ", ".join(evidence.areas), bold_lead="Broad areas of need: ")
    if not never:
        printed.paragraph(doc, _d(evidence.support_began) or "not recorded", bold_lead="SEN support began: ")
    if len(evidence.status_history) > 1:
        printed.table(
            doc,
            ["From", "To", "SEN provision", "Needs"],
            [
                [_d(start), _d(end) or "now", {"K": "SEN support", "E": "EHC plan", "N": "No SEN"}.get(p, p), ", ".join(c for c in (a, b) if c)]
                for p, a, b, start, end in evidence.status_history
            ],
            widths=[3, 3, 4, 7],
        )
    _said_table(doc, "What the forms say about the pupil's needs", evidence.needs_words)
    _said_table(doc, "Strengths", evidence.strengths)

    # Never on SEN support: no cycles, so no outcomes to chart; the note at the top says why.
    if not never:
        doc.add_paragraph("Outcomes and progress", style="Heading 1")
        png = chart(evidence)
        if png is not None:
            printed.picture(
                doc, png, 16.5, "Progress on each outcome at each review. Each line is one outcome, numbered as in the tables below."
            )
        else:
            doc.add_paragraph("No review has rated an outcome yet.")

    for cycle in evidence.cycles:
        doc.add_paragraph(f"Cycle {cycle.number}", style="Heading 2")
        facts = [
            f"plan of {_d(cycle.plan_date)}" if cycle.plan_date else "no plan on record",
            f"reviewed {_d(cycle.reviewed_on)}" if cycle.reviewed_on else f"review due {_d(cycle.review_due)}",
        ]
        if cycle.decision:
            facts.append(f"decision: {_DECISION_LABEL.get(cycle.decision, cycle.decision)}")
        sentence = "; ".join(facts)
        doc.add_paragraph(sentence[:1].upper() + sentence[1:] + ".")
        doc.add_paragraph("Outcomes", style="Heading 3")
        rows = []
        for o in cycle.outcomes:
            rated = "\n".join(
                f"{_d(r.reviewed_on)}: {_RATING_LABEL.get(r.rating, r.rating)}" + (f". {r.evidence}" if r.evidence else "")
                for r in o.ratings
            )
            rows.append([o.description, o.success_criteria or "", rated or "not reviewed yet"])
        printed.table(doc, ["Outcome", "Success criteria", "Rating and evidence at review"], rows, widths=[6, 4, 7])
        if cycle.provision:
            doc.add_paragraph("Provision", style="Heading 3")
            printed.table(
                doc,
                ["Provision", "By", "Group", "How often", "Hours a week", "From", "To", "Weekly cost", "Cost"],
                [
                    [
                        p.what,
                        p.who or "",
                        p.group_size or "",
                        p.frequency or "",
                        _hours(p),
                        _d(p.start),
                        _d(p.end) or "continuing",
                        _money(p.weekly_cost),
                        _money(p.cost_to_date),
                    ]
                    for p in cycle.provision
                ],
                widths=[3.0, 2.0, 1.2, 2.2, 1.4, 1.9, 1.9, 1.5, 1.7],
                size=8.5,
            )
            impacts = [p for p in cycle.provision if p.impact]
            if impacts:
                printed.table(doc, ["Provision", "Impact at review"], [[p.what, p.impact] for p in impacts], widths=[6, 11])

    doc.add_paragraph("Specialists involved and their advice", style="Heading 1")
    if evidence.specialists:
        printed.table(
            doc,
            ["Date", "Recorded in", "Who", "Advice or involvement"],
            [[_d(s.on), s.where, s.who, s.words] for s in evidence.specialists],
            widths=[2.2, 3.3, 3.5, 8],
        )
    else:
        doc.add_paragraph("No specialist from outside the school is recorded on the forms.")

    doc.add_paragraph("The pupil's and parents' views over time", style="Heading 1")
    if evidence.views:
        printed.table(
            doc,
            ["Date", "Meeting", "Whose", "Views"],
            [[_d(s.on), s.where, s.who, s.words] for s in evidence.views],
            widths=[2.2, 3.3, 2.5, 9],
        )
    else:
        doc.add_paragraph("No views are recorded on the forms.")

    doc.add_paragraph("Meetings with parents", style="Heading 1")
    if evidence.meetings:
        printed.table(doc, ["Date", "Meeting"], [[_d(on), what] for on, what in evidence.meetings], widths=[3, 14])
    else:
        doc.add_paragraph("No meetings with parents are recorded.")
    return printed.to_bytes(doc)


def _said_table(doc: Any, heading: str, items: Iterable[Said]) -> None:
    items = list(items)
    if not items:
        return
    doc.add_paragraph(heading, style="Heading 2")
    printed.table(doc, ["Date", "Recorded in", "Words on the form"], [[_d(s.on), s.where, s.words] for s in items], widths=[2.4, 4, 10.6])


# --- issuing it ----------------------------------------------------------------------------------


def evidence_pack(session: Session, upn: str, settings: Settings, written: date) -> Rendered:
    """The pack as a document for the SENCO, from the archive as ``session`` sees it."""
    content = render(gather(session, upn, settings, written), written)
    return Rendered(Audience.SENCO, TITLE, TEMPLATE, content, ".docx")


@dataclass(frozen=True)
class Pack:
    """``senforms evidence UPN``'s pack, with what the command says about it."""

    content: bytes
    upn: str
    note: str | None  # ``no_support_note``: set when the pupil was never on SEN support


def evidence_pack_on_request(settings: Settings, upn: str, written: date) -> Pack:
    """``senforms evidence UPN``: the pack from the archive as it is now, and, for a pupil never on
    SEN support, the sentence that says so (the pack is still written: the SENCO may want it)."""
    archive = Archive(settings.database_url)
    try:
        with archive.reading() as session:
            data = gather(session, upn, settings, written)
    finally:
        archive.close()
    return Pack(render(data, written), data.upn, no_support_note(data))


def evidence_pack_for(settings: Settings, upn: str, written: date) -> bytes:
    """``senforms evidence UPN``: the pack's bytes (``evidence_pack_on_request`` says more)."""
    return evidence_pack_on_request(settings, upn, written).content
