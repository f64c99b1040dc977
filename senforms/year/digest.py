"""The SENCO's weekly digest: a short Word document in ``outbox/senco/``, issued by the first
daily round of each ISO week. It lists reviews due in the next four weeks, overdue reviews,
pupils on SEN support whose parents have been met fewer than three times this school year
(Code 6.65) with the dates of the meetings that counted, and the forms set aside this week and why.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.archive.store import Archive
from senforms.config import Settings
from senforms.deliver import SET_ASIDE_ON_RE
from senforms.documents import Due, Rendered
from senforms.letters import Audience
from senforms.values import school_year_start
from senforms.year.reviews import OpenReview, due_list

#: Meetings with parents a year (Code of Practice 6.65: "at least three times each year").
MEETINGS_A_YEAR = 3
FONT = "Arial"


#: Rows shown in each of the digest's tables, the first (most urgent) ones: a digest is read in a
#: few minutes, and a trust's 50,000 pupils made a 54,000-row table that took 37 s to write and
#: that no one would read. The rest are counted, with where to find them.
DIGEST_ROWS = 60


def digest_key(today: date) -> str:
    year, week, _ = today.isocalendar()
    return f"digest:{year}-W{week:02d}"


@dataclass(frozen=True)
class FewMeetings:
    upn: str
    name: str
    year_group: str
    met_on: list[date]  # the meetings that counted, this school year up to today


def few_meetings(session: Session, today: date) -> list[FewMeetings]:
    """Pupils on SEN support now (provision K) whose parents have been met fewer than three
    times since 1 September; every form of the cycle and every parent meeting note counts.
    A pupil who has left (``left_on`` today or earlier) is left out; one whose leaving date is
    recorded ahead is still at the school and still counted."""
    start = school_year_start(today)
    pupils = session.execute(
        select(t.Pupil)
        .join(t.SenStatus, t.SenStatus.pupil_id == t.Pupil.id)
        .where(
            t.SenStatus.provision == "K",
            t.SenStatus.end_date.is_(None),
            or_(t.Pupil.left_on.is_(None), t.Pupil.left_on > today),
        )
        .order_by(t.Pupil.year_group, t.Pupil.legal_surname, t.Pupil.upn)
    ).scalars().unique()
    met: dict[int, list[date]] = {}
    for pupil_id, held_on in session.execute(
        select(t.Meeting.pupil_id, t.Meeting.held_on)
        .where(t.Meeting.held_on >= start, t.Meeting.held_on <= today)
        .order_by(t.Meeting.held_on)
    ):
        met.setdefault(pupil_id, []).append(held_on)
    out = []
    for pupil in pupils:
        dates = sorted(set(met.get(pupil.id, [])))
        if len(dates) < MEETINGS_A_YEAR:
            name = f"{pupil.preferred_name or pupil.legal_forename} {pupil.preferred_surname or pupil.legal_surname}"
            out.append(FewMeetings(pupil.upn, name, pupil.year_group, dates))
    return out


@dataclass(frozen=True)
class SetAside:
    name: str
    on: date
    why: str


def set_aside_since(problems: Path, since: date, until: date | None = None) -> list[SetAside]:
    """Files set aside from ``since`` to ``until`` (both included), from the notes beside them
    in ``problems/`` (``deliver.set_aside`` writes ``<file>.txt``: what is wrong, then "What to
    do", then the day it was set aside). A note that names its day (``SET_ASIDE_ON``) is dated
    by it, which is ``settings.today()`` when it was set aside, so ``--today`` sees the week a
    school would; an older note without it, by its file time."""
    out = []
    try:
        notes = sorted(problems.glob("*.txt"))
    except OSError:
        return []
    for note in notes:
        try:
            text = note.read_text(encoding="utf-8", errors="replace")
            stamped = SET_ASIDE_ON_RE.findall(text)
            on = (
                datetime.strptime(stamped[-1], "%d/%m/%Y").date()
                if stamped
                else datetime.fromtimestamp(note.stat().st_mtime).date()
            )
        except (OSError, ValueError):
            continue
        if on < since or (until is not None and on > until):
            continue
        why = text.split("\n\n")[0].strip()
        why = why if len(why) <= 300 else why[:297].rstrip() + "..."
        out.append(SetAside(note.name[: -len(".txt")], on, why))
    return sorted(out, key=lambda s: (s.on, s.name))


@dataclass(frozen=True)
class Digest:
    today: date
    upcoming: list[OpenReview]
    overdue: list[OpenReview]
    few: list[FewMeetings]
    aside: list[SetAside]


def gather(session: Session, settings: Settings, today: date) -> Digest:
    upcoming, overdue = due_list(session, today, weeks=4)
    monday = today - timedelta(days=today.weekday())
    return Digest(today, upcoming, overdue, few_meetings(session, today), set_aside_since(settings.problems, monday, today))


def _uk(d: date) -> str:
    return f"{d.day} {d:%B %Y}"


def digest_docx(digest: Digest, school: str = "") -> bytes:
    """The digest as a Word document: A4, one font, a heading and four short sections."""
    import docx
    from docx.oxml.ns import qn
    from docx.shared import Mm, Pt

    doc = docx.Document()
    for section in doc.sections:
        section.page_width, section.page_height = Mm(210), Mm(297)
        section.left_margin = section.right_margin = section.top_margin = section.bottom_margin = Mm(20)
    # One font everywhere: every style named Arial, and the theme fonts (which Word prefers over
    # a named font, and which the default template's headings use) taken out.
    for style in doc.styles:
        if getattr(style, "font", None) is not None:
            style.element.get_or_add_rPr().get_or_add_rFonts()
    for fonts in doc.styles.element.iter(qn("w:rFonts")):
        for name in [a for a in fonts.attrib if a.endswith(("Theme", "theme"))]:
            del fonts.attrib[name]
        for attribute in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
            fonts.set(qn(attribute), FONT)
    for language in doc.styles.element.iter(qn("w:lang")):
        language.set(qn("w:val"), "en-GB")  # British spelling for Word's checker
    doc.styles["Normal"].font.size = Pt(11)
    year, week, _ = digest.today.isocalendar()
    doc.add_heading(f"SEN support: the week of {_uk(digest.today - timedelta(days=digest.today.weekday()))}", 1)
    doc.add_paragraph(f"{school + ', ' if school else ''}week {week} of {year}. Written by senforms on {_uk(digest.today)}.")

    def table(header: list[str], rows: list[list[str]], rest: str) -> None:
        grid = doc.add_table(rows=1, cols=len(header))
        grid.style = "Table Grid"
        for cell, text in zip(grid.rows[0].cells, header, strict=True):
            cell.text = text
            cell.paragraphs[0].runs[0].bold = True
        for row in rows[:DIGEST_ROWS]:
            for cell, text in zip(grid.add_row().cells, row, strict=True):
                cell.text = text
        if len(rows) > DIGEST_ROWS:
            doc.add_paragraph(f"And {len(rows) - DIGEST_ROWS:,} more, not shown here: {rest}")

    doc.add_heading("Reviews due in the next four weeks", 2)
    if digest.upcoming:
        table(
            ["UPN", "Pupil", "Year", "Review date"],
            [[r.upn, r.name, r.year_group, _uk(r.review_date)] for r in digest.upcoming],
            "senforms due lists them all.",
        )
    else:
        doc.add_paragraph("No reviews are due in the next four weeks.")
    doc.add_heading("Overdue reviews", 2)
    if digest.overdue:
        doc.add_paragraph("The review date has passed and no review record has been received.")
        table(
            ["UPN", "Pupil", "Year", "Review date", "Days overdue"],
            [[r.upn, r.name, r.year_group, _uk(r.review_date), str(r.days_overdue)] for r in digest.overdue],
            "senforms due lists them all.",
        )
    else:
        doc.add_paragraph("No reviews are overdue.")
    doc.add_heading("Parents met fewer than three times this school year", 2)
    if digest.few:
        doc.add_paragraph(
            f"Since {_uk(school_year_start(digest.today))}. Schools should meet parents at least three times a "
            "year (Code of Practice 6.65). Early discussions, plan meetings, reviews and parent meeting notes count."
        )
        table(
            ["UPN", "Pupil", "Year", "Meetings", "Dates"],
            [
                [f.upn, f.name, f.year_group, str(len(f.met_on)), ", ".join(_uk(d) for d in f.met_on) or "none"]
                for f in digest.few
            ],
            "the SEND register in the senco folder shows every pupil's meetings this school year.",
        )
    else:
        doc.add_paragraph("Every pupil on SEN support has met with their parents at least three times this school year.")
    doc.add_heading("Forms set aside this week", 2)
    if digest.aside:
        doc.add_paragraph("These are in the problems folder, each with a note saying what to do.")
        table(
            ["File", "Set aside on", "Why"],
            [[s.name, _uk(s.on), s.why] for s in digest.aside],
            "each is in the problems folder with its note.",
        )
    else:
        doc.add_paragraph("No forms were set aside this week.")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def weekly_digest(archive: Archive, settings: Settings, today: date) -> Iterator[Due]:
    """The producer: the digest, once a week (the first round of each ISO week issues it)."""
    key = digest_key(today)
    with archive.reading() as session:
        if session.scalar(select(t.Issued.id).where(t.Issued.key == key)) is not None:
            return
        digest = gather(session, settings, today)
    year, week, _ = today.isocalendar()
    content = digest_docx(digest, settings.school_name)
    title = f"Weekly digest {year}-W{week:02d}"
    yield Due(key, None, today, [Rendered(Audience.SENCO, title, "digest", content, ".docx")])
