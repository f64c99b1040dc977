"""One pupil's whole record (Code of Practice 6.72-6.74), read from the archive for
``senforms pupil UPN`` and the export: the forms received (with their corrections), the SEN
register over time, meetings, each cycle's outcomes with every rating and its evidence, the
provision, the documents sent and to whom, leaving and legal hold.

Read with one query per table, each by an indexed pupil id (or, for ratings and provision, by
the pupil's cycles), never one query per row: a pupil's history stays a few milliseconds however
large the archive. ``record_json`` is the documented shape for other programs (README, "One
pupil's record"); ``record_lines`` is the same record for a person at a terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from senforms.archive import tables as t
from senforms.archive.store import as_utc, load_form, log, now
from senforms.config import Settings
from senforms.errors import ArchiveError, ExitCode, SenformsError
from senforms.kinds import KINDS, EarlyDiscussion, ParentMeeting, Rating, ReviewDecision, ReviewRecord
from senforms.reports.retention import Retention, retention_of
from senforms.values import format_uk_date, parse_uk_date, parse_upn, same_name, upn_problem

#: The name and version of the JSON shape ``senforms pupil UPN --json`` prints. A change that
#: could break a program reading it (a field removed or renamed) bumps the number.
SCHEMA = "senforms.pupil-record/1"


class RecordError(SenformsError):
    """A pupil's record cannot be shown or changed as asked."""

    exit_code = ExitCode.bad_args
    advice = "Check the command and run it again."


class UnknownPupilError(RecordError):
    exit_code = ExitCode.identity_conflict
    advice = (
        "Check the UPN against the school's records (13 characters, like H801200001001). A pupil's record "
        "starts when their early discussion note is processed."
    )


class BadDetailError(RecordError):
    """A date that is not a date, a school name left blank, options that do not go together."""


class LeavingDateError(BadDetailError):
    """A leaving date that cannot be true: after today (as ``--today`` has it) or before the pupil
    was born. Nothing is recorded; exit code 2 like the other details the command refuses."""

    advice = "Check the date the pupil left; enter the date once the pupil has left, not before."


# --- the record ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParentInfo:
    name: str
    relationship: str | None
    address: str | None
    email: str | None
    phone: str | None
    preferred_contact: str | None


@dataclass(frozen=True)
class FormInfo:
    id: int
    kind: str
    title: str
    meeting_date: date
    received_at: datetime
    original_name: str
    read_by: str
    current: bool
    superseded_by: int | None
    corrects: tuple[int, ...]
    cycle: int | None
    decision: str | None
    decision_label: str | None
    summary: tuple[str, ...]  # a few plain lines: who attended, actions agreed, views


@dataclass(frozen=True)
class StatusInfo:
    provision: str
    primary_need: str | None
    secondary_need: str | None
    start_date: date
    end_date: date | None
    form_id: int


@dataclass(frozen=True)
class RatingInfo:
    reviewed_on: date
    rating: str
    rating_label: str
    evidence: str | None
    review_form_id: int


@dataclass(frozen=True)
class OutcomeInfo:
    position: int
    description: str
    success_criteria: str | None
    ratings: tuple[RatingInfo, ...]


@dataclass(frozen=True)
class ProvisionInfo:
    position: int
    what: str
    who: str | None
    group_size: str | None
    frequency: str | None
    start_date: date | None
    weekly_cost: Decimal | None
    impact: str | None


@dataclass(frozen=True)
class CycleInfo:
    number: int
    plan_form_id: int | None
    review_form_id: int | None
    plan_date: date | None
    review_due: date | None
    reviewed_on: date | None
    decision: str | None
    decision_label: str | None
    outcomes: tuple[OutcomeInfo, ...]
    provision: tuple[ProvisionInfo, ...]


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    form_id: int | None
    audience: str
    title: str
    template: str
    path: str
    corrected: bool
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class EventInfo:
    at: datetime
    action: str
    detail: str


@dataclass(frozen=True)
class PupilRecord:
    upn: str
    former_upn: str | None
    legal_forename: str
    legal_surname: str
    preferred_name: str | None
    preferred_surname: str | None
    date_of_birth: date
    year_group: str
    class_name: str | None
    parents: tuple[ParentInfo, ...]
    left_on: date | None
    left_to: str | None
    file_passed_on: bool
    hold_reason: str | None
    retention: Retention
    statuses: tuple[StatusInfo, ...]
    forms: tuple[FormInfo, ...]
    meetings: tuple[tuple[date, str, int], ...]  # (held on, kind, form id), current forms only
    cycles: tuple[CycleInfo, ...]
    documents: tuple[DocumentInfo, ...]
    events: tuple[EventInfo, ...]
    as_of: date = field(default_factory=date.today)

    @property
    def name(self) -> str:
        return f"{self.legal_forename} {self.legal_surname}"

    @property
    def current_status(self) -> StatusInfo | None:
        open_ = [s for s in self.statuses if s.end_date is None]
        return open_[-1] if open_ else None

    @property
    def sen_support_since(self) -> date | None:
        """The start of the SEN support now in place (a run of K rows, need codes changing)."""
        since = None
        for status in self.statuses:
            # Need codes may change while SEN support goes on; a break (N) starts the count again.
            since = (since or status.start_date) if status.provision == "K" else None
        return since if (self.current_status and self.current_status.provision == "K") else None


# --- reading it ------------------------------------------------------------------------------------


def find_pupil_row(session: Session, upn: str) -> t.Pupil:
    """The pupil with this UPN (or this former UPN); a plain error for anything else."""
    try:
        wanted = parse_upn(upn)
    except PydanticCustomError as exc:
        raise BadDetailError(
            upn_problem(upn, exc),
            advice="Check the UPN against the school's records: 13 characters, like H801200001001.",
        ) from None
    row = session.scalar(select(t.Pupil).where(t.Pupil.upn == wanted))
    if row is None:
        row = session.scalar(select(t.Pupil).where(t.Pupil.former_upn == wanted))
    if row is None:
        raise UnknownPupilError(f"No pupil with UPN {wanted} is in the archive.")
    return row


def _label(choice: type[Rating] | type[ReviewDecision], value: str | None) -> str | None:
    if value is None:
        return None
    return next((member.label for member in choice if member.value == value), value)


def _form_details(row: t.ReceivedForm) -> tuple[int | None, str | None, str | None, tuple[str, ...]]:
    """(cycle, decision, decision label, summary lines) from a filed form's answers."""
    try:
        model = load_form(row)
    except (ArchiveError, ValueError):
        return None, None, None, ()
    cycle = getattr(model, "cycle", None)
    lines: list[str] = []
    if attendees := getattr(model, "attendees", None):
        lines.append(f"Who attended: {attendees}")
    decision = getattr(model, "decision", None)
    if isinstance(model, EarlyDiscussion):
        needs = ", ".join(n for n in (model.primary_need, model.secondary_need) if n)
        if needs:
            lines.append(f"Need: {needs}")
    if isinstance(model, ReviewRecord | ParentMeeting) and model.parent_views:
        lines.append(f"Parents' views: {model.parent_views}")
    if pupil_views := getattr(model, "pupil_views", None):
        lines.append(f"The pupil's views: {pupil_views}")
    if isinstance(model, ParentMeeting):
        lines.append(f"Discussed: {model.discussed}")
        for action in model.actions:
            by = f", by {format_uk_date(action.by_when)}" if action.by_when else ""
            who = f" ({action.who}{by})" if action.who else (f" ({by[2:]})" if by else "")
            lines.append(f"Action agreed: {action.action}{who}")
    return (
        cycle,
        decision.value if decision is not None else None,
        decision.label if decision is not None else None,
        tuple(lines),
    )


def read_record(session: Session, upn: str, *, settings: Settings) -> PupilRecord:
    """The pupil's whole record, as of ``settings.today()``."""
    pupil = find_pupil_row(session, upn)
    pid = pupil.id
    parents = session.scalars(select(t.Parent).where(t.Parent.pupil_id == pid).order_by(t.Parent.position)).all()
    forms = session.scalars(
        select(t.ReceivedForm)
        .options(defer(t.ReceivedForm.original))
        .where(t.ReceivedForm.pupil_id == pid)
        .order_by(t.ReceivedForm.meeting_date, t.ReceivedForm.id)
    ).all()
    statuses = session.scalars(
        select(t.SenStatus).where(t.SenStatus.pupil_id == pid).order_by(t.SenStatus.start_date, t.SenStatus.id)
    ).all()
    meetings = session.execute(
        select(t.Meeting.held_on, t.Meeting.kind, t.Meeting.form_id)
        .where(t.Meeting.pupil_id == pid)
        .order_by(t.Meeting.held_on, t.Meeting.id)
    ).all()
    cycles = session.scalars(select(t.Cycle).where(t.Cycle.pupil_id == pid).order_by(t.Cycle.number)).all()
    cycle_ids = select(t.Cycle.id).where(t.Cycle.pupil_id == pid).scalar_subquery()
    outcomes = session.scalars(
        select(t.Outcome).where(t.Outcome.cycle_id.in_(cycle_ids)).order_by(t.Outcome.cycle_id, t.Outcome.position)
    ).all()
    ratings = session.scalars(
        select(t.OutcomeRating)
        .join(t.Outcome, t.Outcome.id == t.OutcomeRating.outcome_id)
        .where(t.Outcome.cycle_id.in_(cycle_ids))
        .order_by(t.OutcomeRating.reviewed_on, t.OutcomeRating.id)
    ).all()
    provision = session.scalars(
        select(t.Provision)
        .where(t.Provision.cycle_id.in_(cycle_ids))
        .order_by(t.Provision.cycle_id, t.Provision.position)
    ).all()
    documents = session.scalars(
        select(t.Document)
        .options(defer(t.Document.content))
        .where(t.Document.pupil_id == pid)
        .order_by(t.Document.created_at, t.Document.id)
    ).all()
    upns = [u for u in (pupil.upn, pupil.former_upn) if u]
    events = session.execute(
        select(t.Event.at, t.Event.action, t.Event.detail).where(t.Event.upn.in_(upns)).order_by(t.Event.id)
    ).all()

    by_outcome: dict[int, list[RatingInfo]] = {}
    for r in ratings:
        by_outcome.setdefault(r.outcome_id, []).append(
            RatingInfo(r.reviewed_on, r.rating, _label(Rating, r.rating) or r.rating, r.evidence, r.review_form_id)
        )
    outcomes_of: dict[int, list[OutcomeInfo]] = {}
    for o in outcomes:
        outcomes_of.setdefault(o.cycle_id, []).append(
            OutcomeInfo(o.position, o.description, o.success_criteria, tuple(by_outcome.get(o.id, ())))
        )
    provision_of: dict[int, list[ProvisionInfo]] = {}
    for p in provision:
        provision_of.setdefault(p.cycle_id, []).append(
            ProvisionInfo(p.position, p.what, p.who, p.group_size, p.frequency, p.start_date, p.weekly_cost, p.impact)
        )
    corrects: dict[int, list[int]] = {}
    for f in forms:
        if f.superseded_by_id is not None:
            corrects.setdefault(f.superseded_by_id, []).append(f.id)
    form_infos = []
    for f in forms:
        cycle, decision, decision_label, summary = _form_details(f)
        form_infos.append(
            FormInfo(
                id=f.id,
                kind=f.kind,
                title=KINDS[f.kind].title if f.kind in KINDS else f.kind,
                meeting_date=f.meeting_date,
                received_at=f.received_at,
                original_name=f.original_name,
                read_by=f.read_by,
                current=f.superseded_by_id is None,
                superseded_by=f.superseded_by_id,
                corrects=tuple(corrects.get(f.id, ())),
                cycle=cycle,
                decision=decision,
                decision_label=decision_label,
                summary=summary,
            )
        )
    today = settings.today()
    return PupilRecord(
        upn=pupil.upn,
        former_upn=pupil.former_upn,
        legal_forename=pupil.legal_forename,
        legal_surname=pupil.legal_surname,
        preferred_name=pupil.preferred_name,
        preferred_surname=pupil.preferred_surname,
        date_of_birth=pupil.date_of_birth,
        year_group=pupil.year_group,
        class_name=pupil.class_name,
        parents=tuple(
            ParentInfo(p.name, p.relation, p.address, p.email, p.phone, p.preferred_contact) for p in parents
        ),
        left_on=pupil.left_on,
        left_to=pupil.left_to,
        file_passed_on=bool(pupil.file_passed_on),
        hold_reason=pupil.hold_reason,
        retention=retention_of(
            pupil.date_of_birth,
            settings.retention_years_after_birth,
            left_on=pupil.left_on,
            left_to=pupil.left_to,
            file_passed_on=bool(pupil.file_passed_on),
            hold_reason=pupil.hold_reason,
            today=today,
        ),
        statuses=tuple(
            StatusInfo(s.provision, s.primary_need, s.secondary_need, s.start_date, s.end_date, s.form_id)
            for s in statuses
        ),
        forms=tuple(form_infos),
        meetings=tuple((m.held_on, m.kind, m.form_id) for m in meetings),
        cycles=tuple(
            CycleInfo(
                number=c.number,
                plan_form_id=c.plan_form_id,
                review_form_id=c.review_form_id,
                plan_date=c.plan_date,
                review_due=c.review_due,
                reviewed_on=c.reviewed_on,
                decision=c.decision,
                decision_label=_label(ReviewDecision, c.decision),
                outcomes=tuple(outcomes_of.get(c.id, ())),
                provision=tuple(provision_of.get(c.id, ())),
            )
            for c in cycles
        ),
        documents=tuple(
            DocumentInfo(
                d.id, d.form_id, d.audience, d.title, d.template, d.path, d.corrected, d.created_at, d.delivered_at
            )
            for d in documents
        ),
        events=tuple(EventInfo(e.at, e.action, e.detail) for e in events),
        as_of=today,
    )


# --- as JSON ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return value


def _obj(item: Any, **extra: Any) -> dict[str, Any]:
    out = {name: _plain(getattr(item, name)) for name in item.__dataclass_fields__}
    out.update(extra)
    return out


def record_json(record: PupilRecord) -> dict[str, Any]:
    """The record in the documented, stable shape (``SCHEMA``): dates as ``YYYY-MM-DD``, times as
    ISO 8601 with their offset, money as a string with two decimals, absent values as null."""
    current = record.current_status
    return {
        "schema": SCHEMA,
        "as_of": record.as_of.isoformat(),
        "pupil": {
            "upn": record.upn,
            "former_upn": record.former_upn,
            "legal_forename": record.legal_forename,
            "legal_surname": record.legal_surname,
            "preferred_name": record.preferred_name,
            "preferred_surname": record.preferred_surname,
            "date_of_birth": record.date_of_birth.isoformat(),
            "year_group": record.year_group,
            "class_name": record.class_name,
            "parents": [_obj(p) for p in record.parents],
        },
        "status": {
            "sen_provision": current.provision if current else None,
            "primary_need": current.primary_need if current else None,
            "secondary_need": current.secondary_need if current else None,
            "sen_support_since": _plain(record.sen_support_since),
            "left_on": _plain(record.left_on),
            "left_to": record.left_to,
            "file_passed_on": record.file_passed_on,
            "legal_hold": record.hold_reason,
            "retention_review_on": record.retention.review_on.isoformat(),
            "retention_reason": record.retention.reason,
            "retention_due": record.retention.due,
        },
        "sen_status": [_obj(s) for s in record.statuses],
        "forms": [_obj(f, corrects=list(f.corrects), summary=list(f.summary)) for f in record.forms],
        "meetings": [{"held_on": d.isoformat(), "kind": k, "form_id": i} for d, k, i in record.meetings],
        "cycles": [
            _obj(
                c,
                outcomes=[_obj(o, ratings=[_obj(r) for r in o.ratings]) for o in c.outcomes],
                provision=[_obj(p) for p in c.provision],
            )
            for c in record.cycles
        ],
        "documents": [_obj(d) for d in record.documents],
        "events": [_obj(e) for e in record.events],
        "history": [
            {"on": e.on.isoformat(), "what": e.what, "text": e.text, "details": list(e.details)}
            for e in timeline(record)
        ],
    }


def record_json_text(record: PupilRecord) -> str:
    return json.dumps(record_json(record), indent=2, ensure_ascii=False)


# --- in date order, for a person -------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    on: date
    order: int  # within a day: forms, then the register, then documents, then notes
    what: str  # form, correction, register, plan, review, document, left, hold, export
    text: str
    details: tuple[str, ...] = ()


def _day(value: datetime) -> date:
    return value.date()


def _money(value: Decimal | None) -> str:
    return f"£{value:.2f} a week" if value is not None else ""


_AUDIENCE = {"parents": "parents", "senco": "the SENCO", "staff": "staff"}


def timeline(record: PupilRecord) -> list[Entry]:
    """Everything in the record as dated entries, oldest first."""
    entries: list[Entry] = []
    by_id = {f.id: f for f in record.forms}
    cycles_by_plan = {c.plan_form_id: c for c in record.cycles if c.plan_form_id}
    cycles_by_review = {c.review_form_id: c for c in record.cycles if c.review_form_id}
    for f in record.forms:
        details = [f"Received {format_uk_date(_day(f.received_at))} as “{f.original_name}”"]
        if f.decision_label:
            details.append(f"Decision: {f.decision_label}")
        details += f.summary
        for old in f.corrects:
            details.append(
                f"Corrects the form received {format_uk_date(_day(by_id[old].received_at))} "
                f"(“{by_id[old].original_name}”), which it replaces"
            )
        if not f.current and f.superseded_by is not None:
            newer = by_id.get(f.superseded_by)
            when = f" on {format_uk_date(_day(newer.received_at))}" if newer else ""
            details.append(f"Replaced by a corrected form received{when}; kept in the archive, no longer used")
        label = f"{f.title}" + (f", cycle {f.cycle}" if f.cycle else "") + ("" if f.current else " (superseded)")
        if f.current and (c := cycles_by_plan.get(f.id)):
            details += _plan_lines(c)
        if f.current and (c := cycles_by_review.get(f.id)):
            details += _review_lines(c, f.id)
        entries.append(Entry(f.meeting_date, 0, "form" if f.current else "superseded form", label, tuple(details)))
    for s in record.statuses:
        needs = ", ".join(n for n in (s.primary_need, s.secondary_need) if n)
        what = {"K": "On SEN support (K)", "N": "No SEN (N)", "E": "EHC plan (E)"}.get(s.provision, s.provision)
        text = f"SEND register: {what}" + (f", need {needs}" if needs else "")
        if s.end_date:
            text += f", until {format_uk_date(s.end_date)}"
        entries.append(Entry(s.start_date, 1, "register", text))
    for d in record.documents:
        to = _AUDIENCE.get(d.audience, d.audience)
        delivered = f"delivered {format_uk_date(_day(d.delivered_at))}" if d.delivered_at else "not yet in the outbox"
        entries.append(Entry(_day(d.created_at), 2, "document", f"To {to}: {d.title}", (f"{d.path} ({delivered})",)))
    for e in record.events:
        if e.action in ("exported", "left", "legal hold", "hold released", "pupil fixed", "upn replaced"):
            entries.append(Entry(_day(e.at), 3, e.action, f"{e.action[:1].upper()}{e.action[1:]}: {e.detail}"))
    entries.sort(key=lambda e: (e.on, e.order))
    return entries


def _plan_lines(c: CycleInfo) -> list[str]:
    lines = []
    if c.review_due:
        lines.append(f"Review due {format_uk_date(c.review_due)}")
    for o in c.outcomes:
        lines.append(f"Outcome {o.position + 1}: {o.description}")
    for p in c.provision:
        parts = [
            x for x in (p.who, p.frequency, p.group_size and f"group of {p.group_size}", _money(p.weekly_cost)) if x
        ]
        start = f", from {format_uk_date(p.start_date)}" if p.start_date else ""
        lines.append(f"Provision: {p.what}" + (f" ({'; '.join(parts)})" if parts else "") + start)
    return lines


def _review_lines(c: CycleInfo, review_form_id: int) -> list[str]:
    lines = []
    for o in c.outcomes:
        for r in o.ratings:
            if r.review_form_id == review_form_id:
                evidence = f" (evidence: {r.evidence})" if r.evidence else ""
                lines.append(f"Outcome {o.position + 1}, {o.description}: {r.rating_label}{evidence}")
    for p in c.provision:
        if p.impact:
            lines.append(f"Impact of {p.what}: {p.impact}")
    return lines


def status_lines(record: PupilRecord) -> list[str]:
    lines = []
    current = record.current_status
    if since := record.sen_support_since:
        needs = ", ".join(n for n in (current.primary_need, current.secondary_need) if n) if current else ""
        lines.append(f"On SEN support since {format_uk_date(since)}" + (f" (need {needs})" if needs else ""))
    elif current is not None:
        lines.append(f"Not on SEN support (register: {current.provision} since {format_uk_date(current.start_date)})")
    else:
        lines.append("Not on the SEND register")
    if record.left_on:
        where = f" to {record.left_to}" if record.left_to else ""
        lines.append(
            f"Left on {format_uk_date(record.left_on)}{where}"
            + ("; the file was passed on" if record.file_passed_on else "; the file has not been passed on yet")
        )
    if record.hold_reason:
        lines.append(f"LEGAL HOLD: {record.hold_reason} (the record must not be destroyed while this applies)")
    lines.append(f"Retention: {record.retention.sentence()}")
    return lines


def record_lines(record: PupilRecord) -> list[str]:
    """The record as a person reads it at a terminal or in the export's summary."""
    known = f" (known as {record.preferred_name})" if record.preferred_name else ""
    lines = [
        f"{record.name}{known}, UPN {record.upn}" + (f" (formerly {record.former_upn})" if record.former_upn else ""),
        f"Born {format_uk_date(record.date_of_birth)}; year {record.year_group}"
        + (f", class {record.class_name}" if record.class_name else ""),
    ]
    for p in record.parents:
        # The address too: who letters go to, and where, is what the office looks a pupil up for.
        address = ", ".join(line.strip() for line in (p.address or "").splitlines() if line.strip())
        contact = "; ".join(x for x in (address, p.email, p.phone) if x)
        lines.append(
            f"Parent or carer: {p.name}"
            + (f" ({p.relationship})" if p.relationship else "")
            + (f", {contact}" if contact else "")
        )
    lines += status_lines(record)
    lines.append("")
    forms, documents = len(record.forms), len(record.documents)
    lines.append(
        f"History ({forms} form{'s' if forms != 1 else ''}, {documents} document{'s' if documents != 1 else ''}), "
        "oldest first:"
    )
    for entry in timeline(record):
        lines.append(f"{format_uk_date(entry.on)}  {entry.text}")
        # An answer of several lines (an address, a paragraph of views) stays under its entry.
        lines += ["            " + d.replace("\n", "\n              ") for d in entry.details]
    return lines


# --- leaving and legal hold ----------------------------------------------------------------------------


def _date(option: str, raw: str) -> date:
    try:
        value = parse_uk_date(raw)
    except PydanticCustomError as exc:
        raise BadDetailError(
            f"{option}: {exc.message()}.", advice=f"Write the date like 20/07/2026 after {option}."
        ) from None
    if value is None:
        raise BadDetailError(f"{option} needs a date.", advice=f"Write the date like 20/07/2026 after {option}.")
    return value


def _possible_leaving_date(left_on: date, born: date | None, today: date | None) -> date:
    """``left_on`` if a pupil can have left on it: not after ``today``, not before they were born."""
    shown = format_uk_date(left_on)
    if today is not None and left_on > today:
        raise LeavingDateError(
            f"--left: {shown} is after today ({format_uk_date(today)}); a pupil's leaving is recorded once it "
            "has happened.",
            advice="Enter the date once the pupil has left (run the command again on or after that day), "
            "or correct the date if it was mistyped.",
        )
    if born is not None and left_on < born:
        raise LeavingDateError(
            f"--left: {shown} is before the pupil's date of birth ({format_uk_date(born)}).",
            advice="Check the date the pupil left and type it again, like 20/07/2026. If the date of birth "
            "is wrong, correct it first with 'senforms pupil fix'.",
        )
    return left_on


def record_leaving(
    session: Session,
    upn: str,
    left_on: str | date | None,
    left_to: str | None,
    *,
    passed_on: bool = False,
    today: date | None = None,
) -> list[str]:
    """Note that the pupil left (and, with ``passed_on``, that their file went to the next school,
    Code 6.57). Returns plain sentences of what changed; logged under the UPN. A leaving date after
    ``today`` (when given) or before the pupil's date of birth raises ``LeavingDateError``."""
    pupil = find_pupil_row(session, upn)
    said: list[str] = []
    dropped = ""
    if left_on is not None:
        pupil.left_on = _possible_leaving_date(
            left_on if isinstance(left_on, date) else _date("--left", left_on), pupil.date_of_birth, today
        )
        if left_to is not None:
            name = " ".join(left_to.split())
            if not name:
                raise BadDetailError(
                    "--to cannot be blank.", advice='Give the name of the next school, like --to "Elm Academy".'
                )
            if pupil.file_passed_on and not passed_on and not same_name(name, pupil.left_to):
                # The file went to the school recorded then, not to this one: left marked as
                # passed on, the record and the retention list would say it went here.
                dropped = (
                    f'the earlier "file passed on to {pupil.left_to}" no longer applies; '
                    f"add --passed-on once {name} has the file"
                )
                pupil.file_passed_on = False
            pupil.left_to = name
        where = f" to {pupil.left_to}" if pupil.left_to else ""
        said.append(f"left on {format_uk_date(pupil.left_on)}{where}")
        if dropped:
            said.append(dropped)
    elif left_to is not None:
        raise BadDetailError(
            "--to goes with --left.",
            advice='Give the date the pupil left too, like --left 20/07/2026 --to "Elm Academy".',
        )
    if passed_on:
        if pupil.left_on is None:
            raise BadDetailError(
                "--passed-on needs the pupil to have left.", advice='Add --left DATE --to "School name".'
            )
        if not pupil.left_to:
            raise BadDetailError("--passed-on needs the school the file went to.", advice='Add --to "School name".')
        pupil.file_passed_on = True
        said.append(f"file passed on to {pupil.left_to}")
    if said:
        pupil.updated_at = now()
        log(session, "left", "; ".join(said), upn=pupil.upn)
    return said


def place_hold(session: Session, upn: str, reason: str) -> str:
    reason = " ".join(reason.split())
    if not reason:
        raise BadDetailError(
            "--hold needs a reason.", advice='Say why, like --hold "Insurance claim, letter of 3 May 2026".'
        )
    pupil = find_pupil_row(session, upn)
    pupil.hold_reason, pupil.updated_at = reason, now()
    # The reason stays on the pupil's record; the log, which names pupils by UPN only, does not copy
    # it (it may well name the child or a family member).
    log(session, "legal hold", "legal hold placed: the record must not be destroyed", upn=pupil.upn)
    return "legal hold placed"


def release_hold(session: Session, upn: str) -> str:
    pupil = find_pupil_row(session, upn)
    if pupil.hold_reason is None:
        raise BadDetailError(
            f"The pupil with UPN {pupil.upn} has no legal hold to release.", advice="Nothing needs doing."
        )
    pupil.hold_reason, pupil.updated_at = None, now()
    log(session, "hold released", "legal hold released", upn=pupil.upn)
    return "legal hold released"


# --- on the home folder's archive, for the command line ---------------------------------------------


def record_in_home(settings: Settings, upn: str) -> PupilRecord:
    from senforms.archive.store import Archive

    archive = Archive(settings.database_url)
    try:
        with archive.reading() as session:
            return read_record(session, upn, settings=settings)
    finally:
        archive.close()


def update_in_home(
    settings: Settings,
    upn: str,
    *,
    left_on: str | None = None,
    left_to: str | None = None,
    passed_on: bool = False,
    hold: str | None = None,
    release: bool = False,
) -> list[str]:
    """Leaving, passing the file on, a legal hold or its release, in one transaction: all of it
    or none. Returns what changed, in plain words."""
    from senforms.archive.store import Archive

    archive = Archive(settings.database_url)
    try:
        with archive.session() as session:
            said = record_leaving(session, upn, left_on, left_to, passed_on=passed_on, today=settings.today())
            if hold is not None:
                said.append(place_hold(session, upn, hold))
            if release:
                said.append(release_hold(session, upn))
            return said
    finally:
        archive.close()
