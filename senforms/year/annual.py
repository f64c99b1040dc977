"""The annual report to parents on their child's progress (SEND Code of Practice 6.64).

Once a school year, on the day set in ``senforms.toml`` (``[reports] annual_report = "15 July"``),
every pupil on SEN support gets a report for their parents, written from the archive: the year's
plans, each outcome with its ratings and evidence at each review, the help given, the meetings
held with the parents and what comes next. Parents who live apart each get their own copy.

``annual_reports`` is a producer for the daily round (``senforms.year.round``): it yields one
``documents.Due`` per pupil, keyed ``annual-report:<year the school year starts>:<UPN>``, so the
round issues each report once however often it runs. ``write_annual_reports`` is
``senforms annual-report``: the reports written now, for a school that wants them early (those
already issued this school year only with ``--again``, or as copies in a folder with ``-o``).

The school year runs from 1 September; a report covers 1 September up to the day it is written.
The querying is done here; the letter's wording is built from plain data by
``context.annual_report_context``, which knows nothing of the archive.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from senforms import kinds
from senforms.archive import tables as t
from senforms.archive.store import Archive, current_forms, history, log, now
from senforms.config import Settings
from senforms.context import annual_report_context, recipients
from senforms.deliver import pupil_folder, safe_name, staging, write_atomic
from senforms.documents import Due, PdfLetters, Rendered
from senforms.errors import ArchiveError, NoSuchPupilError, NotOnSenSupportError
from senforms.letters import ANNUAL_REPORT, Audience
from senforms.outbox import document_row, write_letters_lists
from senforms.render import letter_template, render_docx
from senforms.values import SCHOOL_YEAR_STARTS, school_year_start

logger = logging.getLogger(__name__)

def report_date(settings: Settings, day: date) -> date | None:
    """The day of the annual report in the school year ``day`` falls in; None when the school has
    not set one. "29 February" falls on the 28th in a year without one."""
    day_month = settings.annual_report_day
    if day_month is None:
        return None
    d, month = day_month
    start = school_year_start(day)
    year = start.year if month >= SCHOOL_YEAR_STARTS else start.year + 1
    try:
        return date(year, month, d)
    except ValueError:
        return date(year, month, 28)


def report_key(day: date, upn: str) -> str:
    """The report's key in the ``issued`` table: one per pupil per school year."""
    return f"annual-report:{school_year_start(day).year}:{upn}"


@dataclass(frozen=True)
class _OnSupport:
    pupil_id: int
    upn: str
    legal_surname: str
    legal_forename: str
    preferred_name: str | None = None
    preferred_surname: str | None = None

    @property
    def name(self) -> str:
        """The name the school calls the pupil by, for messages to staff (never for the log)."""
        return f"{self.preferred_name or self.legal_forename} {self.preferred_surname or self.legal_surname}"


def _on_support(session: Session, day: date, upn: str | None = None) -> list[_OnSupport]:
    """Pupils on SEN support (census provision K) on ``day`` who have not left the school by then."""
    query = (
        select(
            t.Pupil.id,
            t.Pupil.upn,
            t.Pupil.legal_surname,
            t.Pupil.legal_forename,
            t.Pupil.preferred_name,
            t.Pupil.preferred_surname,
        )
        .join(t.SenStatus, t.SenStatus.pupil_id == t.Pupil.id)
        .where(
            t.SenStatus.provision == "K",
            t.SenStatus.start_date <= day,
            or_(t.SenStatus.end_date.is_(None), t.SenStatus.end_date > day),
            or_(t.Pupil.left_on.is_(None), t.Pupil.left_on > day),
        )
        .distinct()
        .order_by(t.Pupil.legal_surname, t.Pupil.legal_forename, t.Pupil.upn)
    )
    if upn is not None:
        query = query.where(or_(t.Pupil.upn == upn, t.Pupil.former_upn == upn))
    return [_OnSupport(*row) for row in session.execute(query).all()]


def _pupil_now(row: t.Pupil, latest: kinds.Pupil) -> kinds.Pupil:
    """The pupil as the archive knows them now (a ``pupil fix`` or the roll may have changed a
    name or class since the last form), with the parents of their latest form."""
    return latest.model_copy(
        update={
            "upn": row.upn,
            "legal_forename": row.legal_forename,
            "legal_surname": row.legal_surname,
            "preferred_name": row.preferred_name,
            "date_of_birth": row.date_of_birth,
            "year_group": next((y for y in kinds.YearGroup if y.value == row.year_group), latest.year_group),
            "class_name": row.class_name,
        }
    )


def _render(archive: Archive, settings: Settings, pupil_id: int, *, since: date, today: date) -> list[Rendered]:
    """The pupil's report, one copy per household, as Word documents."""
    with archive.reading() as session:
        row = session.get(t.Pupil, pupil_id)
        assert row is not None
        forms = current_forms(session, pupil_id)
        past = history(forms)
        if not past.forms:
            return []
        pupil = _pupil_now(row, past.forms[-1].pupil)  # type: ignore[attr-defined]
    template = letter_template(settings, ANNUAL_REPORT.name)
    households: list[dict[str, Any] | None] = [*recipients(pupil)] or [None]
    out = []
    for household in households:
        context = annual_report_context(
            settings, pupil, past, since=since, until=today, today=today, household=household
        )
        title = ANNUAL_REPORT.title
        if household is not None and len(households) > 1:
            title += f" for {household['names']}"
        content = render_docx(template, context, title=title, written=today)
        out.append(Rendered("parents", title, ANNUAL_REPORT.name, content, ".docx"))
    return out


def annual_reports(
    archive: Archive, settings: Settings, today: date, *, pdf: PdfLetters | None = None
) -> Iterator[Due]:
    """A producer for the daily round: on the report day, or on a later day of the same school
    year if the round missed it (the watcher was off), one ``Due`` per pupil on SEN support
    whose report has not been issued this school year. Nothing before the day, nothing when
    ``annual_report`` is not set. A report already in the ``issued`` table is not rendered
    again; the key also stops the round from issuing it twice. With ``pdf``, the copies are
    converted as the school's ``format`` asks."""
    day = report_date(settings, today)
    if day is None or today < day:
        return
    since = school_year_start(today)
    prefix = f"annual-report:{since.year}:"
    with archive.reading() as session:
        pupils = _on_support(session, today)
        done = set(session.scalars(select(t.Issued.key).where(t.Issued.key.startswith(prefix))).all())
    for pupil in pupils:
        key = prefix + pupil.upn
        if key in done:
            continue
        documents = _render(archive, settings, pupil.pupil_id, since=since, today=today)
        if not documents:
            continue
        if pdf is not None:
            warnings: list[str] = []
            pdf.convert(documents, warnings)
            for warning in warnings:
                logger.warning("UPN %s: %s", pupil.upn, warning)
        yield Due(key, pupil.upn, day, documents)


@dataclass(frozen=True)
class AlreadyIssued:
    """A pupil whose report for this school year is already in the ``issued`` table."""

    upn: str
    on: date  # the day it was issued for: the report day for the round, the day asked for by hand
    name: str = ""  # for the message to the user; the log names pupils by UPN only


@dataclass
class OnRequest:
    """What ``senforms annual-report`` did: the files written, and the pupils whose report for this
    school year had been issued already (by the round or an earlier request)."""

    written: list[Path]
    already: list[AlreadyIssued]
    again: bool = False  # the issued reports were written again on purpose (--again)
    copies: bool = False  # written to a folder of the user's choosing (-o): copies, nothing recorded


def write_annual_reports(settings: Settings, *, upn: str | None = None, folder: Path | None = None) -> list[Path]:
    """``annual_reports_on_request`` without ``again``: the files written."""
    return annual_reports_on_request(settings, upn=upn, folder=folder).written


def annual_reports_on_request(
    settings: Settings, *, upn: str | None = None, folder: Path | None = None, again: bool = False
) -> OnRequest:
    """``senforms annual-report``: write the reports now, whatever the day, for every pupil on
    SEN support (or the one with ``upn``), covering 1 September to today. Into ``folder`` when
    given, else into the outbox's parents folder, where each copy is also kept in the archive.

    Reports written into the outbox are the school's reports for the year: each is recorded as
    issued (``report_key``, the key the producer uses), so the daily round does not send the
    same report again on the configured day. A report already issued this school year (by the
    round, or by an earlier run of this command) is not written into the outbox again unless
    ``again`` asks for it: parents would otherwise get a second copy from an office that ran the
    command not knowing the round had sent them. Those pupils are listed in ``already``.
    Reports written into ``folder`` are a copy for the school, written for every pupil as asked,
    and record nothing: the round still issues the reports on their day."""
    today = settings.today()
    since = school_year_start(today)
    prefix = f"annual-report:{since.year}:"
    archive = Archive(settings.database_url)
    pdf = PdfLetters(settings)
    result = OnRequest([], [], again=again and folder is None, copies=folder is not None)
    try:
        with archive.reading() as session:
            if upn is not None:
                upn = _typed_upn(upn)  # "h801 2000 01001" as the other commands take it
            pupils = _on_support(session, today, upn)
            if upn is not None and not pupils:
                known = session.scalar(select(t.Pupil.id).where(or_(t.Pupil.upn == upn, t.Pupil.former_upn == upn)))
                if known is None:
                    raise NoSuchPupilError(
                        f"There is no pupil with UPN {upn} in the archive.",
                        advice="Check the UPN against the school's records; 'senforms register' lists the "
                        "pupils on SEN support.",
                    )
                raise NotOnSenSupportError(
                    f"The pupil with UPN {upn} is not on SEN support on {today:%d/%m/%Y}, so there is no annual "
                    "report to write."
                )
            issued = {
                key: for_date or at.date()
                for key, for_date, at in session.execute(
                    select(t.Issued.key, t.Issued.for_date, t.Issued.issued_at).where(t.Issued.key.startswith(prefix))
                ).all()
            }
        base = folder if folder is not None else settings.outbox
        for pupil in pupils:
            on = issued.get(prefix + pupil.upn)
            if on is not None:
                result.already.append(AlreadyIssued(pupil.upn, on, pupil.name))
                if folder is None and not again:
                    continue
            documents = _render(archive, settings, pupil.pupil_id, since=since, today=today)
            warnings: list[str] = []
            pdf.convert(documents, warnings)
            for warning in warnings:
                logger.warning("UPN %s: %s", pupil.upn, warning)
            where = pupil_folder(pupil.legal_surname, pupil.legal_forename, pupil.upn)
            kept: list[tuple[Rendered, str]] = []
            for doc in documents:
                target = base / doc.audience / where / f"{today.isoformat()} {safe_name(doc.title)}{doc.suffix}"
                path = write_atomic(target, doc.content, stage=staging(base) if folder is None else None)
                result.written.append(path)
                kept.append((doc, path.relative_to(base).as_posix()))
            if folder is None and kept:
                _keep(archive, settings.outbox, pupil, kept, report_key(today, pupil.upn), today, again=on is not None)
    finally:
        pdf.close()
        archive.close()
    return result


def _keep(
    archive: Archive,
    outbox: Path,
    pupil: _OnSupport,
    kept: list[tuple[Rendered, str]],
    key: str,
    today: date,
    *,
    again: bool = False,
) -> None:
    """Every copy in the outbox is kept in the archive too, as every letter is; and the report
    is recorded as issued for the school year, in the same transaction, unless the round (or an
    earlier request) issued it already."""
    try:
        _archive_copies(archive, outbox, pupil, kept, key, today, again=again)
    except ArchiveError as exc:
        if not isinstance(exc.__cause__, IntegrityError):
            raise
        # A round issued the same report a moment ago: keep the copies, the key is its.
        _archive_copies(archive, outbox, pupil, kept, None, today, again=again)


def _archive_copies(
    archive: Archive,
    outbox: Path,
    pupil: _OnSupport,
    kept: list[tuple[Rendered, str]],
    key: str | None,
    today: date,
    *,
    again: bool = False,
) -> None:
    how = "written again on request (--again)" if again else "written on request"
    with archive.session() as session:
        at = now()
        for doc, path in kept:
            session.add(document_row(doc, path, pupil_id=pupil.pupil_id, form_id=None, delivered_at=at))
            log(session, "annual report", f"{how}: {path.rsplit('/', 1)[-1]}", upn=pupil.upn)
        if key is not None and session.scalar(select(t.Issued.id).where(t.Issued.key == key)) is None:
            session.add(t.Issued(key=key, pupil_id=pupil.pupil_id, issued_at=at, for_date=today))
            log(session, "issued", f"{key}: written on request", upn=pupil.upn)
        # On the office's list of the day's letters, as the round's copies are.
        write_letters_lists(session, outbox, [(path, at) for doc, path in kept if doc.audience == Audience.PARENTS.value])


def _typed_upn(upn: str) -> str:
    """A UPN as typed on the command line, in the archive's form; a plain error if it is none."""
    from pydantic_core import PydanticCustomError

    from senforms.values import parse_upn, upn_problem

    try:
        return parse_upn(upn)
    except PydanticCustomError as exc:
        raise NoSuchPupilError(
            upn_problem(upn, exc),
            advice="Check the UPN against the school's records: 13 characters, like H801200001001.",
        ) from None
