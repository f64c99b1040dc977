"""The provision map (Code of Practice 6.76-6.77): every provision the school made in a period,
additional to and different from its usual curriculum, with how many pupils had it, the staff
hours and cost it takes, and how often the outcomes it served were achieved, so a SENCO can keep
the effective interventions and drop the rest.

Provision is grouped by what was provided, compared without case or extra spaces ("Phonics
group" and "phonics  group" are one). Hours come from the "How often, how long" answers
(``frequency``); an answer that cannot be read is counted in the flags, never guessed.

**Scale**: everything is counted in three aggregate queries (a 50,000-pupil archive takes a few
seconds), never pupil by pupil; Python only reads each distinct frequency text once.

**Weeks and averages**: a provision counts for the days of the period it ran (from its start date,
or its plan's date, to its cycle's review, or the end of the period). Hours a week and cost a week
are averages over the period, so one that ran for half the period counts for half; the total cost
is the weekly cost times the weeks it ran. Weeks are calendar weeks, holidays included.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, Integer, and_, case, cast, distinct, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from senforms.archive import tables as t
from senforms.archive.store import Archive
from senforms.config import Settings
from senforms.documents import Due, Rendered
from senforms.errors import SenformsError
from senforms.letters import Audience
from senforms.reports import printed
from senforms.reports.charts import bar_chart
from senforms.reports.frequency import parse_frequency, parse_group_size
from senforms.values import parse_uk_date, school_year_start

TITLE = "Provision map"

#: When each English school term ends and starts (day, month), to find "the term just ended":
#: autumn ends around 20 December, spring around Easter (which moves, so 1 April), summer around
#: 20 July. Constants rather than a setting: a map a few days early or late changes nothing.
TERM_ENDS = {"autumn": (20, 12), "spring": (1, 4), "summer": (20, 7)}
TERM_STARTS = {"autumn": (1, 9), "spring": (1, 1), "summer": (15, 4)}


def parse_day(text: str, option: str) -> date:
    try:
        day = parse_uk_date(text)
    except ValueError:
        day = None
    if day is None:
        raise SenformsError(
            f"{option} is {text!r}, which is not a date senforms can read.",
            advice=f"Write the date like 30/11/2026 or 2026-11-30 after {option}.",
        )
    return day


@dataclass
class Line:
    """One provision across the school."""

    what: str  # as most often written
    pupils: int = 0
    rows: int = 0
    staff_hours_a_week: float = 0.0
    pupil_hours_a_week: float = 0.0
    weekly_cost: Decimal = Decimal(0)
    total_cost: Decimal = Decimal(0)
    ratings: int = 0
    achieved: int = 0
    partly: int = 0
    unread: list[str] = field(default_factory=list)  # rows whose hours could not be worked out
    no_cost: int = 0

    @property
    def achieved_share(self) -> float | None:
        return None if not self.ratings else self.achieved / self.ratings


@dataclass
class ProvisionMap:
    start: date
    end: date
    school: str
    lines: list[Line]

    @property
    def weeks(self) -> float:
        return ((self.end - self.start).days + 1) / 7

    @property
    def unread(self) -> list[str]:
        return [f"{line.what}: {problem}" for line in self.lines for problem in line.unread]


def _norm(column: Any) -> ColumnElement[str]:
    """The provision's words compared without case or extra spaces, in SQL (both databases):
    tabs and line breaks become spaces, runs of spaces are folded (up to 16 at a time), and the
    ends trimmed."""
    value = func.replace(func.replace(func.replace(column, "\t", " "), "\r", " "), "\n", " ")
    for _ in range(4):
        value = func.replace(value, "  ", " ")
    return func.lower(func.trim(value))


def _days(session: Session, later: Any, earlier: Any) -> ColumnElement[float]:
    """Whole days from ``earlier`` to ``later``, both dates, in the archive's SQL."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Float)
    return cast(later - earlier, Integer)


def _latest(a: Any, b: Any) -> Any:
    return case((a > b, a), else_=b)


def _earliest(a: Any, b: Any) -> Any:
    return case((a < b, a), else_=b)


def gather(session: Session, start: date, end: date, school: str = "") -> ProvisionMap:
    """The map for the period from ``start`` to ``end`` (both included)."""
    key = _norm(t.Provision.what).label("key")
    began = func.coalesce(t.Provision.start_date, t.Cycle.plan_date)
    stopped = func.coalesce(t.Cycle.reviewed_on, literal(end, Date))
    first, last = _latest(began, literal(start, Date)), _earliest(stopped, literal(end, Date))
    days = (_days(session, last, first) + 1).label("days")
    running = and_(began.is_not(None), began <= end, stopped >= start)
    # 1. Rows by provision, frequency and group size: days run, and cost.
    rows = session.execute(
        select(
            key,
            t.Provision.frequency,
            t.Provision.group_size,
            func.min(t.Provision.what).label("shown"),
            func.count().label("rows"),
            func.sum(days).label("days"),
            func.sum(t.Provision.weekly_cost * days).label("cost_days"),
            func.sum(case((t.Provision.weekly_cost.is_(None), 1), else_=0)).label("no_cost"),
        )
        .join(t.Cycle, t.Cycle.id == t.Provision.cycle_id)
        .where(running)
        .group_by(key, t.Provision.frequency, t.Provision.group_size)
    ).all()
    # 2. Pupils by provision.
    pupils: dict[str, int] = {
        row[0]: row[1]
        for row in session.execute(
            select(key, func.count(distinct(t.Cycle.pupil_id)))
            .join(t.Cycle, t.Cycle.id == t.Provision.cycle_id)
            .where(running)
            .group_by(key)
        )
    }
    # 3. Ratings of the outcomes in the cycles each provision served.
    ratings = {
        r.key: r
        for r in session.execute(
            select(
                key,
                func.count(distinct(t.OutcomeRating.id)).label("all"),
                func.count(distinct(case((t.OutcomeRating.rating == "achieved", t.OutcomeRating.id)))).label("achieved"),
                func.count(distinct(case((t.OutcomeRating.rating == "partly", t.OutcomeRating.id)))).label("partly"),
            )
            .join(t.Cycle, t.Cycle.id == t.Provision.cycle_id)
            .join(t.Outcome, t.Outcome.cycle_id == t.Cycle.id)
            .join(t.OutcomeRating, t.OutcomeRating.outcome_id == t.Outcome.id)
            .where(running)
            .group_by(key)
        )
    }
    weeks = ((end - start).days + 1) / 7
    lines: dict[str, Line] = {}
    spelled: dict[str, dict[str, int]] = {}
    for row in rows:
        line = lines.setdefault(row.key, Line(row.shown))
        spelled.setdefault(row.key, {}).setdefault(row.shown, 0)
        spelled[row.key][row.shown] += row.rows
        line.rows += row.rows
        line.no_cost += int(row.no_cost or 0)
        run_weeks = float(row.days or 0) / 7
        if row.cost_days is not None:
            total = (Decimal(str(row.cost_days)) / 7).quantize(Decimal("0.01"))
            line.total_cost += total
        frequency = parse_frequency(row.frequency)
        if frequency.minutes_a_week is None:
            line.unread.append(f'"{row.frequency or ""}" ({row.rows} pupils\' rows): {frequency.problem}')
            continue
        hours = frequency.minutes_a_week / 60
        line.pupil_hours_a_week += hours * run_weeks / weeks
        group = parse_group_size(row.group_size)
        if group is None:
            # One adult per pupil unless the plan says otherwise; said, so it can be checked.
            line.unread.append(f'group size "{row.group_size or ""}" not read, counted as 1:1 ({row.rows} rows)')
            group = 1
        line.staff_hours_a_week += hours / group * run_weeks / weeks
    for k, line in lines.items():
        line.what = max(spelled[k].items(), key=lambda item: (item[1], item[0]))[0]
        line.pupils = pupils.get(k, 0)
        line.weekly_cost = (line.total_cost / Decimal(str(weeks))).quantize(Decimal("0.01"))
        if (r := ratings.get(k)) is not None:
            line.ratings, line.achieved, line.partly = r.all, r.achieved, r.partly
    ordered = sorted(lines.values(), key=lambda line: (-line.total_cost, line.what.lower()))
    return ProvisionMap(start, end, school, ordered)


def build_map(settings: Settings, start: date, end: date) -> ProvisionMap:
    archive = Archive(settings.database_url)
    try:
        with archive.reading() as session:
            return gather(session, start, end, settings.school_name)
    finally:
        archive.close()


# --- as a spreadsheet and as a document ----------------------------------------------------------

_HEADER = [
    "Provision",
    "Pupils",
    "Staff hours a week",
    "Pupil hours a week",
    "Cost a week (£)",
    "Total cost (£)",
    "Outcome ratings",
    "Achieved",
    "Partly achieved",
    "Share achieved",
    "To check",
]


def _cells(line: Line) -> list[Any]:
    notes = list(line.unread)
    if line.no_cost:
        notes.append(f"{line.no_cost} rows give no weekly cost")
    return [
        line.what,
        line.pupils,
        round(line.staff_hours_a_week, 2),
        round(line.pupil_hours_a_week, 2),
        float(line.weekly_cost),
        float(line.total_cost),
        line.ratings,
        line.achieved,
        line.partly,
        None if line.achieved_share is None else round(line.achieved_share, 4),
        "; ".join(notes),
    ]


def map_xlsx(result: ProvisionMap) -> bytes:
    """The map as a spreadsheet (openpyxl): one row per provision, numbers as numbers."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Provision map"
    sheet.append([f"{TITLE} {result.start:%d/%m/%Y} to {result.end:%d/%m/%Y}" + (f", {result.school}" if result.school else "")])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([f"{result.weeks:.1f} weeks. Hours and cost a week are averages over the period."])
    sheet.append(_HEADER)
    for cell in sheet[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for line in result.lines:
        sheet.append(_cells(line))
    for row in sheet.iter_rows(min_row=4):
        row[4].number_format = row[5].number_format = "£#,##0.00"
        row[9].number_format = "0%"
        row[0].alignment = row[10].alignment = Alignment(wrap_text=True, vertical="top")
    widths = [40, 8, 10, 10, 11, 12, 10, 9, 9, 9, 60]
    for i, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "B4"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _share(line: Line) -> str:
    return "no ratings" if line.achieved_share is None else f"{line.achieved_share:.0%}"


def map_docx(result: ProvisionMap, written: date) -> bytes:
    """The map as a readable Word document, landscape A4, with a chart of cost and success."""
    doc = printed.new_document(f"{TITLE} {result.start:%d/%m/%Y} to {result.end:%d/%m/%Y}", written, landscape=True)
    doc.add_paragraph(TITLE, style="Title")
    doc.add_paragraph(
        f"{result.school + ': p' if result.school else 'P'}rovision additional to and different from the usual "
        f"curriculum, {result.start:%d/%m/%Y} to {result.end:%d/%m/%Y} ({result.weeks:.1f} weeks). SEND Code of "
        "Practice 2015, 6.76-6.77."
    )
    total = sum((line.total_cost for line in result.lines), Decimal(0))
    doc.add_paragraph(
        f"{len(result.lines)} provisions; total cost £{total:,.2f}; "
        f"{sum(line.staff_hours_a_week for line in result.lines):.1f} staff hours a week on average. Hours and "
        "cost a week are averages over the period: a provision that ran for half of it counts for half. "
        "Share achieved: of the ratings given at review to the outcomes in the plans that included the "
        "provision, how many were Achieved."
    )
    if result.lines:
        top = result.lines[:15]
        printed.picture(
            doc,
            bar_chart([line.what for line in top], [float(line.total_cost) for line in top], title="Total cost by provision", axis="£"),
            20,
            "The costliest provisions in the period.",
        )
        rated = [line for line in result.lines if line.achieved_share is not None][:15]
        if rated:
            printed.picture(
                doc,
                bar_chart(
                    [line.what for line in rated],
                    [100 * (line.achieved_share or 0) for line in rated],
                    title="Share of outcome ratings Achieved",
                    axis="% of ratings",
                ),
                20,
                "How often the outcomes each provision served were achieved.",
            )
    doc.add_paragraph("Every provision", style="Heading 1")
    printed.table(
        doc,
        ["Provision", "Pupils", "Staff hours a week", "Cost a week", "Total cost", "Ratings", "Achieved", "Share", "To check"],
        [
            [
                line.what,
                str(line.pupils),
                f"{line.staff_hours_a_week:.1f}",
                f"£{line.weekly_cost:,.2f}",
                f"£{line.total_cost:,.2f}",
                str(line.ratings),
                str(line.achieved),
                _share(line),
                "; ".join(line.unread + ([f"{line.no_cost} rows give no weekly cost"] if line.no_cost else [])),
            ]
            for line in result.lines
        ],
        widths=[6, 1.5, 2, 2.2, 2.4, 1.7, 1.8, 1.6, 6.5],
    )
    if not result.lines:
        doc.add_paragraph("No provision is recorded for this period.")
    return printed.to_bytes(doc)


# --- the end of each term -------------------------------------------------------------------------


def term_just_ended(today: date, ends: dict[str, tuple[int, int]] = TERM_ENDS) -> tuple[str, date, date] | None:
    """The term that ended most recently on or before ``today``, if within the last 8 weeks, as
    (name like "2026-27-autumn", first day, last day)."""
    best: tuple[date, str] | None = None
    for name, (day, month) in ends.items():
        for year in (today.year - 1, today.year):
            end = date(year, month, day)
            if end <= today and (best is None or end > best[0]):
                best = (end, name)
    if best is None or (today - best[0]).days > 56:
        return None
    end, name = best
    d, m = TERM_STARTS[name]
    start = date(end.year, m, d)
    school_year = school_year_start(end).year
    return f"{school_year}-{(school_year + 1) % 100:02d}-{name}", start, end


def provision_maps(archive: Archive, settings: Settings, today: date) -> Iterator[Due]:
    """A producer for the daily round: the map of the term just ended, once per term, for the
    SENCO (keyed ``provision-map:<term>``, so the round issues it once however often it runs)."""
    ended = term_just_ended(today)
    if ended is None:
        return
    term, start, end = ended
    with archive.reading() as session:
        result = gather(session, start, end, settings.school_name)
    year, name = term.rsplit("-", 1)
    title = f"{TITLE}, {name} term {year}"
    documents = [
        Rendered(Audience.SENCO, title, "report:provision-map", map_xlsx(result), ".xlsx"),
        Rendered(Audience.SENCO, title, "report:provision-map", map_docx(result, today), ".docx"),
    ]
    yield Due(f"provision-map:{term}", None, end, documents)
