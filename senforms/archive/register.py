"""The SEND register: every pupil now on SEN support, with the census codes of their needs, their
current plan, their next review and their meetings with parents; and the school census check.

The whole register is read with one column query (no ORM objects: about 50 us a row less), so
writing it for 50,000 pupils takes well under the 5 s the issue allows. It is written to the
outbox as CSV and XLSX by ``write_register`` under a lock, so two watchers never put an older
register over a newer one.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from sqlalchemy import and_, bindparam, case, func, or_, select, text, update
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.rules import ON_REGISTER  # K SEN support, E EHC plan (N, no SEN, is not on it)
from senforms.values import school_year_start

#: Where the living copies of the register sit in the outbox.
REGISTER_PATH = "senco/SEND register.csv"
REGISTER_XLSX_PATH = "senco/SEND register.xlsx"

#: The school census need codes and the Code of Practice's broad area of each. Data, not logic:
#: the census adds codes (a Down syndrome category from January 2025), so a school can extend it.
BROAD_AREAS: dict[str, str] = {
    "SLCN": "Communication and interaction",
    "ASD": "Communication and interaction",
    "SPLD": "Cognition and learning",
    "MLD": "Cognition and learning",
    "SLD": "Cognition and learning",
    "PMLD": "Cognition and learning",
    "SEMH": "Social, emotional and mental health",
    "HI": "Sensory and/or physical",
    "VI": "Sensory and/or physical",
    "MSI": "Sensory and/or physical",
    "PD": "Sensory and/or physical",
    "OTH": "Other",
    "NSA": "No specialist assessment",
}

HEADER = [
    "UPN",
    "Legal surname",
    "Legal first name",
    "Preferred first name",
    "Preferred surname",
    "Year",
    "Class",
    "SEN provision",
    "Primary need",
    "Secondary need",
    "Broad area of need",
    "Date added",
    "Plan cycle",
    "Plan date",
    "Next review",
    "Last meeting with parents",
    "Meetings this school year",
]
#: Columns holding dates (written as real dates in the XLSX, ISO dates in the CSV).
DATE_COLUMNS = frozenset({"Date added", "Plan date", "Next review", "Last meeting with parents"})
#: Widths in the XLSX, in characters.
WIDTHS = [15, 18, 16, 16, 16, 6, 8, 10, 10, 10, 34, 12, 8, 12, 12, 14, 12]


@dataclass(frozen=True)
class Row:
    upn: str
    legal_surname: str
    legal_forename: str
    preferred_name: str | None
    preferred_surname: str | None
    year_group: str
    class_name: str | None
    provision: str
    primary_need: str | None
    secondary_need: str | None
    since: date
    cycle: int | None
    plan_date: date | None
    next_review: date | None
    last_meeting: date | None
    meetings_this_year: int

    @property
    def broad_area(self) -> str:
        return BROAD_AREAS.get((self.primary_need or "").strip().upper(), "")

    def cells(self) -> list[object]:
        return [
            self.upn,
            self.legal_surname,
            self.legal_forename,
            self.preferred_name or "",
            self.preferred_surname or "",
            self.year_group,
            self.class_name or "",
            self.provision,
            self.primary_need or "",
            self.secondary_need or "",
            self.broad_area,
            self.since,
            self.cycle if self.cycle is not None else "",
            self.plan_date,
            self.next_review,
            self.last_meeting,
            self.meetings_this_year,
        ]


def school_year(today: date) -> tuple[date, date]:
    """The school year holding ``today``: 1 September to 31 August."""
    start = school_year_start(today)
    return start, date(start.year + 1, 8, 31)


def register_rows(session: Session, today: date, *, pupil_id: int | None = None) -> list[Row]:
    """The register as of ``today``, sorted by legal surname and first name: one statement."""
    start, end = school_year(today)
    latest = (
        select(t.Cycle.pupil_id, func.max(t.Cycle.number).label("number"))
        .where(t.Cycle.plan_date.is_not(None))
        .group_by(t.Cycle.pupil_id)
        .subquery()
    )
    meetings = (
        select(
            t.Meeting.pupil_id,
            # The last meeting held by today (a note may be dated a few days ahead).
            func.max(case((t.Meeting.held_on <= today, t.Meeting.held_on), else_=None)).label("last"),
            # Held this school year, by today (the year's end is never before today).
            func.sum(case((and_(t.Meeting.held_on >= start, t.Meeting.held_on <= min(end, today)), 1), else_=0)).label(
                "count"
            ),
        )
        .group_by(t.Meeting.pupil_id)
        .subquery()
    )
    p, s, c = t.Pupil, t.SenStatus, t.Cycle
    query = (
        select(
            p.upn,
            p.legal_surname,
            p.legal_forename,
            p.preferred_name,
            p.preferred_surname,
            p.year_group,
            p.class_name,
            s.provision,
            s.primary_need,
            s.secondary_need,
            s.start_date,
            c.number,
            c.plan_date,
            case((c.reviewed_on.is_(None), c.review_due), else_=None),
            meetings.c.last,
            meetings.c.count,
        )
        .join(s, s.pupil_id == p.id)
        .outerjoin(latest, latest.c.pupil_id == p.id)
        .outerjoin(c, and_(c.pupil_id == p.id, c.number == latest.c.number))
        .outerjoin(meetings, meetings.c.pupil_id == p.id)
        .where(s.end_date.is_(None), s.provision.in_(ON_REGISTER))
        # A pupil who has left the school is no longer on its register.
        .where(or_(p.left_on.is_(None), p.left_on > today))
        .order_by(p.legal_surname, p.legal_forename, p.upn)
    )
    if pupil_id is not None:
        query = query.where(p.id == pupil_id)
    return [Row(*r[:15], meetings_this_year=int(r[15] or 0)) for r in session.execute(query)]  # type: ignore[arg-type, misc]


# --- the school census check --------------------------------------------------------------------


def census_problems(row: Row) -> list[str]:
    """What the school census would refuse in this pupil's row, in plain words (empty: none)."""
    problems = []
    primary = (row.primary_need or "").strip().upper()
    secondary = [n.strip().upper() for n in (row.secondary_need or "").replace(";", ",").split(",") if n.strip()]
    kind = "SEN support (K)" if row.provision == "K" else "an EHC plan (E)"
    if not primary:
        problems.append(f"has {kind} but no primary need; the census needs a need code")
    elif primary not in BROAD_AREAS:
        problems.append(f"has primary need {row.primary_need!r}, which is not a census need code")
    if len(secondary) > 1:
        problems.append(f"has {len(secondary)} secondary needs ({', '.join(secondary)}); the census takes at most one")
    for need in secondary:
        if need not in BROAD_AREAS:
            problems.append(f"has secondary need {need!r}, which is not a census need code")
    if secondary and not primary:
        problems.append("has a secondary need but no primary need")
    if primary and primary in secondary:
        problems.append(f"has {primary} as both primary and secondary need; the secondary must be different")
    if "NSA" in [primary, *secondary] and row.provision != "K":
        problems.append(f"has need NSA with {kind}; NSA is allowed only with SEN support (K)")
    return problems


def census_lines(rows: Sequence[Row]) -> list[str]:
    """One plain line per problem, naming the pupil by UPN and name (this is the SENCO's list)."""
    return [
        f"{row.upn} {row.legal_surname}, {row.legal_forename} (year {row.year_group}): {problem}."
        for row in rows
        for problem in census_problems(row)
    ]


# --- the files ------------------------------------------------------------------------------------


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else value


def csv_bytes(rows: Sequence[Row]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows([_csv_cell(v) for v in row.cells()] for row in rows)
    # Excel opens a UTF-8 CSV correctly only with a byte-order mark.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def xlsx_bytes(rows: Sequence[Row], today: date) -> bytes:
    """Two sheets: the register (frozen header row, set widths, dates as Excel dates shown
    dd/mm/yyyy) and the census check.

    Written as SpreadsheetML directly rather than through openpyxl, which (write-only mode
    included) needs 5-9 s for 50,000 rows on these machines, more than the issue's 5 s for the
    whole register; this takes about a tenth of that. tests/test_register.py opens the result
    with openpyxl to check it."""
    problems = [
        [row.upn, f"{row.legal_surname}, {row.legal_forename}", row.year_group, problem]
        for row in rows
        for problem in census_problems(row)
    ] or [["", "", "", f"No census problems on {today:%d/%m/%Y}."]]
    register = _sheet(HEADER, WIDTHS, (row.cells() for row in rows))
    census = _sheet(["UPN", "Name", "Year", "Census problem"], [15, 30, 8, 90], problems)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as book:
        for name, part in _XLSX_PARTS.items():
            book.writestr(name, part)
        book.writestr("xl/worksheets/sheet1.xml", register)
        book.writestr("xl/worksheets/sheet2.xml", census)
    return out.getvalue()


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_XLSX_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/worksheets/sheet2.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    "</Types>",
    "_rels/.rels": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="{_PKG}">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
    '<sheet name="SEND register" sheetId="1" r:id="rId1"/><sheet name="Census check" sheetId="2" r:id="rId2"/>'
    "</sheets></workbook>",
    "xl/_rels/workbook.xml.rels": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    f'<Relationships xmlns="{_PKG}">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/worksheet" Target="worksheets/sheet2.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/styles" Target="styles.xml"/></Relationships>',
    # Cell styles: 0 plain, 1 a date shown dd/mm/yyyy, 2 bold (the header row).
    "xl/styles.xml": f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><styleSheet xmlns="{_MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill>'
    "</fills>"
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>",
}
#: Characters XML 1.0 cannot carry (a form's answers may hold them); dropped from cells.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_EXCEL_EPOCH = date(1899, 12, 30)


def _cell(ref: str, value: object, style: int = 0) -> str:
    """One cell with its reference (A2), as Excel writes them; an empty cell is left out."""
    if value is None or value == "":
        return ""
    if isinstance(value, date):
        return f'<c r="{ref}" s="1"><v>{(value - _EXCEL_EPOCH).days}</v></c>'
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<c r="{ref}"><v>{value}</v></c>'
    text = _NOT_XML.sub("", str(value))
    space = ' xml:space="preserve"' if text != text.strip() else ""
    shown = f' s="{style}"' if style else ""
    return f'<c r="{ref}" t="inlineStr"{shown}><is><t{space}>{xml_escape(text)}</t></is></c>'


def _sheet(header: list[str], widths: list[int], rows: Iterable[Sequence[object]]) -> str:
    letters = [chr(65 + i) if i < 26 else "A" + chr(65 + i - 26) for i in range(max(len(header), len(widths)))]
    cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>' for i, w in enumerate(widths, start=1))
    parts = [
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{_MAIN}">'
        '<sheetViews><sheetView workbookViewId="0">'
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        f"<cols>{cols}</cols><sheetData>",
        '<row r="1">' + "".join(_cell(f"{c}1", name, 2) for c, name in zip(letters, header, strict=False)) + "</row>",
    ]
    parts += [
        f'<row r="{n}">' + "".join(_cell(f"{c}{n}", v) for c, v in zip(letters, row, strict=False)) + "</row>"
        for n, row in enumerate(rows, start=2)
    ]
    parts.append("</sheetData></worksheet>")
    return "".join(parts)


def register_csv(session: Session, today: date) -> bytes:
    """The SEND register as CSV, as of ``today`` (``settings.today()``)."""
    return csv_bytes(register_rows(session, today))


# --- the living copy in the outbox ------------------------------------------------------------


def lock_register(session: Session) -> None:
    """Hold the right to write the outbox's register until the transaction ends. On SQLite a
    write as the transaction's first statement takes the database's write lock; on PostgreSQL an
    advisory lock. Whoever holds it reads the archive after taking it, so the register written
    last is always the newest: two watchers never put an older register over a newer one."""
    if session.get_bind().dialect.name == "sqlite":
        documents = t.table(t.Document)
        session.execute(update(documents).where(documents.c.id == -1).values(id=documents.c.id))
    elif session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7311)"))


def pending_versions(session: Session) -> list[int]:
    """Register versions (documents) filed but not yet written to the outbox."""
    return list(
        session.scalars(
            select(t.Document.id).where(t.Document.template == "register", t.Document.delivered_at.is_(None))
        )
    )


def write_register(
    session: Session,
    outbox: Path,
    today: date,
    *,
    only_if_present: bool = False,
    write: Callable[..., Path] | None = None,
) -> list[Row]:
    """Write the outbox's register (CSV and XLSX) from the archive as it is now, and mark every
    register version filed so far delivered. Runs inside the caller's transaction, which must
    commit for the marks to stand; a crash before that leaves them unmarked, and the next run
    writes the register again, from the archive, never from a stored copy."""
    from senforms.archive.store import now
    from senforms.deliver import staging, write_atomic

    write = write or write_atomic

    lock_register(session)
    # The versions are read before the register: any version seen here is in the rows below.
    versions = pending_versions(session)
    if only_if_present and not (outbox / REGISTER_PATH).exists():
        return []
    rows = register_rows(session, today)
    stage = staging(outbox)
    write(outbox / REGISTER_XLSX_PATH, xlsx_bytes(rows, today), overwrite=True, stage=stage)
    write(outbox / REGISTER_PATH, csv_bytes(rows), overwrite=True, stage=stage)
    if versions:
        session.execute(update(t.Document).where(t.Document.id.in_(versions)).values(delivered_at=now()))
    return rows


# --- one pupil's change, kept in the archive as a register version ------------------------------

#: The columns of a stored register version (unchanged since issue 9.7, so old versions read alike).
CHANGE_HEADER = ["UPN", "Surname", "First name", "Year", "Class", "SEN provision", "Primary need", "Secondary need", "Since"]


# Built once, as every register-changing form runs one or both (building a statement costs
# SQLAlchemy more than running it: see ``store``).
_ON_REGISTER_NOW = (
    select(t.Pupil, t.SenStatus)
    .join(t.SenStatus, t.SenStatus.pupil_id == t.Pupil.id)
    .where(
        t.Pupil.id == bindparam("pupil_id"), t.SenStatus.end_date.is_(None), t.SenStatus.provision.in_(ON_REGISTER)
    )
)
_LAST_ENDED = (
    select(t.Pupil, t.SenStatus)
    .join(t.SenStatus, t.SenStatus.pupil_id == t.Pupil.id)
    .where(t.Pupil.id == bindparam("pupil_id"), t.SenStatus.end_date.is_not(None))
    .order_by(t.SenStatus.end_date.desc(), t.SenStatus.id.desc())
)


def register_change_csv(session: Session, pupil_id: int) -> bytes:
    """What one decision changed in the register: the pupil's row as it is now, or, when the
    pupil has left SEN support, their row with provision "N" and the date they left.

    This is what the archive keeps for each register version (a few hundred bytes), not a copy
    of the whole register: copies grew with the school (122 MB of a 463 MB archive after 2,000
    forms, issue 9.7). The whole register is always derived from the SEN status rows
    (``register_rows``), which keep every version with its start and end dates."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CHANGE_HEADER)
    current = session.execute(_ON_REGISTER_NOW, {"pupil_id": pupil_id}).first()
    ended = None if current is not None else session.execute(_LAST_ENDED, {"pupil_id": pupil_id}).first()
    if current is not None:
        pupil, status = current
        writer.writerow(
            [
                pupil.upn,
                pupil.legal_surname,
                pupil.legal_forename,
                pupil.year_group,
                pupil.class_name or "",
                status.provision,
                status.primary_need or "",
                status.secondary_need or "",
                status.start_date.isoformat(),
            ]
        )
    elif ended is not None:
        pupil, status = ended
        writer.writerow(
            [
                pupil.upn,
                pupil.legal_surname,
                pupil.legal_forename,
                pupil.year_group,
                pupil.class_name or "",
                "N",
                "",
                "",
                status.end_date.isoformat() if status.end_date else "",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- `senforms register` ------------------------------------------------------------------------


@dataclass(frozen=True)
class Register:
    rows: list[Row]
    census: list[str]  # one plain line per census problem
    today: date

    def summary(self) -> list[str]:
        counts = {code: sum(1 for r in self.rows if r.provision == code) for code in ON_REGISTER}
        from senforms.errors import count

        lines = [
            f"SEND register on {self.today:%d/%m/%Y}: {count(len(self.rows), 'pupil')} "
            f"({counts['K']} on SEN support (K), {counts['E']} with an EHC plan (E))."
        ]
        if self.census:
            lines.append(f"Census check: {count(len(self.census), 'problem')} to put right before the school census:")
            lines += [f"  {line}" for line in self.census]
        else:
            lines.append("Census check: no problems; every pupil's need codes pass the school census rules.")
        return lines


def read_register(database_url: str, today: date) -> Register:
    """The register and its census check, read from the archive (nothing is written)."""
    from senforms.archive.store import Archive

    archive = Archive(database_url)
    try:
        with archive.reading() as session:
            rows = register_rows(session, today)
    finally:
        archive.close()
    return Register(rows, census_lines(rows), today)


def save_register(register: Register, target: Path) -> Path:
    """Write the register to ``target``: XLSX or CSV by its suffix."""
    from senforms.deliver import write_atomic
    from senforms.errors import SenformsError

    suffix = target.suffix.lower()
    if suffix == ".xlsx":
        data = xlsx_bytes(register.rows, register.today)
    elif suffix == ".csv":
        data = csv_bytes(register.rows)
    else:
        raise SenformsError(
            f"{target.name}: the register can be written as .xlsx (Excel) or .csv only.",
            advice="Give a file name ending .xlsx or .csv, like -o register.xlsx.",
        )
    try:
        return write_atomic(target, data, overwrite=True)
    except OSError as exc:
        raise SenformsError(
            f"{target} cannot be written: {exc.strerror or exc}.",
            advice="Check that the folder exists and that the file is not open in Excel, then run the command again.",
        ) from exc
