"""The pupil roll: a school information system's export, read and brought into the archive
(``senforms pupils import``).

Three parts, each usable alone:

* ``read_roll``: the CSV file's bytes to ``RollPupil`` rows and ``RowError``s (a bad row never
  stops the others); a file that cannot be a roll at all raises ``RollFileError``;
* ``apply_roll``: the rows against the archive, in one transaction: pupils added, updated,
  held back for the SENCO to confirm, or missing from the roll; with ``check`` nothing is
  written;
* ``rolled_pupil``: a form's pupil with the roll's current details (year group, class,
  preferred name, contacts), which the pipeline gives the letters and pre-filled forms it
  writes.

Who a pupil is (UPN, legal name, date of birth) is never changed by the roll: a difference is
listed with the ``senforms pupil fix`` command that makes it, for a person who has checked.

Column names. The three systems English schools mostly use export a roll as CSV with headers a
person can rename, so headers are matched by meaning, case and spaces, underscores and
punctuation ignored ("Date of Birth", "DOB", "date_of_birth" are one column). What was matched
and where it came from (the search corpus, November 2026):

* SIMS (Capita/ESS) reports and "student list" exports: "UPN", "Legal Surname", "Legal
  Forename", "Preferred Surname", "Preferred Forename", "Date of Birth" or "DOB", "Year" /
  "NC Year" / "Year Taught In", "Reg Group"; contacts as "Contact 1 Name", "Contact 1
  Relationship", "Contact 1 Address", "Contact 1 Email", "Contact 1 Telephone", and "Priority 1
  Contact" style headers from the contact priority the school sets; "Parental Responsibility".
  SIMS integrations document "Home Address", "Home Telephone", "Mobile Telephone", "Personal
  Email Address".
* Arbor: "Legal first name", "Legal last name", "Preferred first name" (its API calls these
  Forename / KnownAsFirstName / KnownAsLastName), "Year group", "Registration form"; guardians
  with a priority and a relationship.
* Bromcom: "Legal First Name", "Legal Last Name", "Preferred First Name", "Preferred Last Name"
  (ParentPay's notes on the Bromcom API: PreferredFirstName / PreferredLastName over FirstName /
  LastName), "Year Group", "Tutor Group" (its access-arrangement import uses exactly these
  two), contacts with "Relationship", "parental responsibility", highest-priority e-mail and
  phone (SchoolCloud's notes on what it reads from Bromcom).

Plain "Surname" / "Forename" / "First Name" are taken as the legal names only when no "Legal"
column is present: in SIMS and Bromcom exports they are the legal names, and a roll without a
legal column has nothing better. Columns not recognised are listed, never guessed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from senforms import kinds
from senforms.archive import tables as t
from senforms.archive.register import write_register
from senforms.archive.store import Archive, _fix_command, contact_filled, lock_pupil, log, now
from senforms.config import Settings
from senforms.errors import ExitCode, SenformsError
from senforms.values import (
    accent_only,
    clean_text,
    format_uk_date,
    name_difference,
    parse_uk_date,
    parse_upn,
    same_name,
    tidy_name,
)


class RollFileError(SenformsError):
    """The file cannot be read as a roll at all (not CSV, no UPN column, empty)."""

    exit_code = ExitCode.unreadable_file
    advice = (
        "Export the roll again from the school's information system as a CSV file with a header row "
        "(UPN, legal surname, legal forename, date of birth, year group at least), then run the command again."
    )


# --- columns ---------------------------------------------------------------------------------


def column_key(header: str) -> str:
    """A header as it is matched: case folded, everything but letters and digits dropped."""
    return re.sub(r"[^0-9a-z]", "", header.casefold())


#: Pupil columns by meaning, each with the keys (see ``column_key``) it is known by, best first.
PUPIL_COLUMNS: dict[str, tuple[str, ...]] = {
    "upn": ("upn", "uniquepupilnumber", "pupilupn", "studentupn"),
    "legal_surname": ("legalsurname", "legallastname", "legalfamilyname", "surname", "lastname", "familyname"),
    "legal_forename": ("legalforename", "legalfirstname", "legalgivenname", "forename", "firstname", "givenname"),
    "preferred_forename": (
        "preferredforename",
        "preferredfirstname",
        "knownasfirstname",
        "knownasforename",
        "chosenforename",
        "chosenfirstname",
        "preferredname",
        "knownas",
    ),
    "preferred_surname": (
        "preferredsurname",
        "preferredlastname",
        "knownaslastname",
        "knownassurname",
        "chosensurname",
        "chosenlastname",
    ),
    "date_of_birth": ("dateofbirth", "dob", "birthdate", "born"),
    "year_group": ("yeargroup", "ncyear", "ncyearactual", "yeartaughtin", "curriculumyear", "year", "yr"),
    "class_name": (
        "reggroup",
        "registrationgroup",
        "reg",  # SIMS's own short heading for the registration group
        "registrationform",
        "regform",
        "formgroup",
        "tutorgroup",
        "form",
        "classname",
        "class",
    ),
    "address": ("homeaddress", "address", "pupiladdress", "studentaddress", "fulladdress"),
    "email": ("homeemail", "email", "emailaddress", "personalemailaddress"),
    "phone": ("hometelephone", "homephone", "telephone", "phone", "telephonenumber"),
}
#: Address parts, joined in this order into one address of several lines.
ADDRESS_PARTS = (
    "flat",
    "housename",
    "housenumber",
    "housenameornumber",
    "addressline1",
    "street",
    "addressline2",
    "locality",
    "addressline3",
    "town",
    "addressline4",
    "county",
    "postcode",
)
REQUIRED = ("upn", "legal_surname", "legal_forename", "date_of_birth", "year_group")
LABELS = {
    "upn": "UPN",
    "legal_surname": "legal surname",
    "legal_forename": "legal forename",
    "date_of_birth": "date of birth",
    "year_group": "year group",
}

# Contacts: "Contact 1 Name", "Priority 1 Contact", "Priority 1 contact relationship",
# "Contact1_Email", "Parent 2 Telephone", "Guardian 1 Mobile", "Priority Contact 1 Name".
_CONTACT = re.compile(
    r"^(?:contact|priority|prioritycontact|parent|carer|guardian|parentcarer)(\d{1,2})(?:contact)?([a-z0-9]*)$"
)
CONTACT_PARTS: dict[str, tuple[str, ...]] = {
    "name": ("", "name", "fullname", "contactname"),
    "title": ("title",),
    "forename": ("forename", "firstname", "givenname"),
    "surname": ("surname", "lastname", "familyname"),
    "relationship": ("relationship", "relation", "relationshiptopupil", "relationshiptostudent", "relationshiptype"),
    "address": ("address", "homeaddress", "fulladdress"),
    "email": ("email", "emailaddress", "homeemail", "personalemail", "personalemailaddress"),
    "phone": (
        "telephone",
        "phone",
        "mobile",
        "mobilephone",
        "mobiletelephone",
        "tel",
        "phonenumber",
        "hometelephone",
        "homephone",
        "worktelephone",
    ),
    "responsibility": ("parentalresponsibility", "pr", "hasparentalresponsibility", "responsibility"),
}
_CONTACT_PART = {key: part for part, keys in CONTACT_PARTS.items() for key in keys}


@dataclass(frozen=True)
class Columns:
    """Which column of the file holds what: indexes into each row."""

    pupil: dict[str, int]
    address_parts: list[int]
    contacts: dict[int, dict[str, list[int]]]  # contact number -> part -> column indexes
    headers: list[str]
    unused: list[str]


def match_columns(headers: Sequence[str]) -> Columns:
    keys = [column_key(h) for h in headers]
    used: set[int] = set()
    pupil: dict[str, int] = {}
    contacts: dict[int, dict[str, list[int]]] = {}
    for i, key in enumerate(keys):
        # "Primary Contact Name", "Secondary Contact Email": contacts 1 and 2.
        key = re.sub(r"^(primary|main|first)contact", "contact1", key)
        key = re.sub(r"^(secondary|second)contact", "contact2", key)
        if m := _CONTACT.match(key):
            part = _CONTACT_PART.get(m[2])
            if part is None and m[2].startswith("address"):
                part = "address"
            if part is not None:
                contacts.setdefault(int(m[1]), {}).setdefault(part, []).append(i)
                used.add(i)
    for meaning, known in PUPIL_COLUMNS.items():
        for key in known:  # best name first: "Legal Surname" wins over "Surname"
            if key in keys and keys.index(key) not in used:
                pupil[meaning] = keys.index(key)
                used.add(pupil[meaning])
                break
    address_parts = []
    for part in ADDRESS_PARTS:
        for i, key in enumerate(keys):
            if i not in used and (key == part or key == "home" + part or key == "address" + part):
                address_parts.append(i)
                used.add(i)
    unused = [headers[i] for i in range(len(headers)) if i not in used and keys[i]]
    return Columns(pupil, address_parts, dict(sorted(contacts.items())), list(headers), unused)


# --- reading the file --------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"Line {self.line}" + (f", column '{self.column}'" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class RollContact:
    name: str
    relationship: str | None = None
    address: str | None = None
    email: str | None = None
    phone: str | None = None
    responsibility: bool | None = None  # None: the file does not say


@dataclass(frozen=True)
class RollPupil:
    line: int
    upn: str
    legal_forename: str
    legal_surname: str
    preferred_forename: str | None
    preferred_surname: str | None
    date_of_birth: date
    year_group: str  # a ``kinds.YearGroup`` value
    class_name: str | None
    contacts: tuple[RollContact, ...] = ()
    # The optional columns the file has: a roll exported without (say) a class column leaves
    # every pupil's class as it was, rather than clearing it.
    present: frozenset[str] = frozenset()


@dataclass
class Roll:
    pupils: list[RollPupil] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    encoding: str = "utf-8"
    delimiter: str = ","
    unused: list[str] = field(default_factory=list)


_SAVE_AS_CSV = (
    'Open it in Excel, choose File > Save As and the type "CSV UTF-8 (Comma delimited)", '
    "then import the .csv file that makes."
)


def _office_file(data: bytes) -> str | None:
    """What an Office file given as the roll is ("an Excel workbook"), by its first bytes rather
    than its name (a workbook renamed .csv is still a workbook); None for anything else."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        # Excel 97-2003 (.xls), or Word 97-2003 (.doc), which names its main stream "WordDocument".
        return "a Word document" if "WordDocument".encode("utf-16-le") in data else "an Excel workbook"
    if data.startswith(b"PK\x03\x04"):
        # A ZIP package: .xlsx and .docx (and OpenDocument files) are ZIP files of XML.
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, ValueError, OSError):
            names = []
        if any(n.startswith("word/") for n in names):
            return "a Word document"
        if any(n.startswith("xl/") for n in names):
            return "an Excel workbook"
        return "an Excel or Word file (or another packed file)"
    return None


def decode(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was in: UTF-8 with or without a BOM (Arbor,
    Bromcom, Excel's "CSV UTF-8"), UTF-16 with a BOM (Excel's "Unicode text"), else Windows-1252
    (SIMS and Excel's plain "CSV" on a Windows computer in England). Raises ``RollFileError`` for
    an Excel or Word file, whose bytes would otherwise read as junk "column names"."""
    if (what := _office_file(data)) is not None:
        advice = _SAVE_AS_CSV
        if what == "a Word document":
            advice = (
                "Export the roll from the school's information system as a CSV file; or, if the list is a table "
                "in this document, copy the table into Excel. " + _SAVE_AS_CSV
            )
        raise RollFileError(f"The roll file is {what}, not a CSV file: senforms reads the roll as CSV.", advice=advice)
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "UTF-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "UTF-16"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        # Windows-1252 leaves five bytes undefined; no real roll has them, and a replacement
        # character shows a person where the file is odd rather than refusing the whole file.
        return data.decode("cp1252", errors="replace"), "Windows-1252"


def _delimiter(text: str) -> str:
    """Comma, or semicolon (Excel in a locale with a decimal comma), or tab: whichever the
    header line has most of, outside quotes."""
    header = re.sub(r'"[^"]*"', "", text.split("\n", 1)[0])
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _year_group(raw: str) -> str | None:
    """A year group as the systems write it ("Year 4", "Y4", "Yr 4", "NC Year 4", "4", "R",
    "Rec", "Reception", "N1", "N2", "Nursery") to a ``kinds.YearGroup`` value."""
    text = column_key(raw)
    text = re.sub(r"^(?:ncyear|nc|year|yr|y)(?=\d)", "", text)
    if text in ("r", "rec", "reception", "yr", "yearr", "ncyearr"):
        return "R"
    if re.fullmatch(r"n[12]?|nursery[12]?|nur|fs1|ey", text):
        return "N"
    if text.isdigit() and 1 <= int(text) <= 13:
        return str(int(text))
    return None


def _year(value: str) -> kinds.YearGroup:
    """A stored year group value ("4", "R") as its choice, for its label."""
    return kinds.YearGroup(value)  # type: ignore[call-arg]  # Enum lookup by value, not a new member


_YES = frozenset({"yes", "y", "true", "1", "t", "x"})
_NO = frozenset({"no", "n", "false", "0", "f"})


def _joined(lines: Iterable[str]) -> str | None:
    parts = [" ".join(clean_text(p).replace(",", ", ").split()).strip(" ,") for p in lines]
    text = "\n".join(p for p in parts if p)
    return text or None


def _address(raw: str) -> str | None:
    """An address cell: lines may be separated by new lines or by commas (SIMS joins them with
    commas in one cell); kept as lines, as letters print them."""
    if not raw.strip():
        return None
    return _joined(re.split(r"\s*[\n,]\s*", raw.strip()))


def read_roll(data: bytes) -> Roll:
    """Every row of the roll, checked: good rows as ``RollPupil``, each problem as a
    ``RowError`` naming the line and column. Raises ``RollFileError`` if the file has no header
    a roll could have."""
    text, encoding = decode(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise RollFileError("The roll file is empty.")
    skipped = 0
    if m := re.match(r"sep=(.)\n", text):
        # Excel writes (and honours) a first line "sep=;" naming the separator.
        delimiter, text, skipped = m[1], text[m.end() :], 1
    else:
        delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        headers = next(reader)
    except csv.Error as exc:
        raise RollFileError(f"The roll file is not a CSV file senforms can read ({exc}).") from exc
    columns = match_columns([clean_text(h).strip() for h in headers])
    missing = [LABELS[m] for m in REQUIRED if m not in columns.pupil]
    if missing:
        found = ", ".join(f"'{h}'" for h in columns.headers if h) or "none"
        raise RollFileError(
            f"The roll file has no column for the pupils' {', '.join(missing)}. Its columns are: {found}.",
            advice="Export the roll again with those columns included (any of the usual names works, like "
            "'Legal Surname', 'Date of Birth' or 'DOB', 'Year' or 'NC Year'), then run the command again.",
        )
    roll = Roll(encoding=encoding, delimiter=delimiter, unused=columns.unused)
    seen: dict[str, int] = {}
    while True:
        # The line a record starts on, as a text editor numbers the file: the line after the last
        # one read (an address in quotes may run over several lines).
        start = reader.line_num + 1 + skipped
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            roll.errors.append(RowError(start, None, f"this line cannot be read as CSV ({exc})"))
            break
        line = start
        if not any(c.strip() for c in cells):
            continue
        cells += [""] * (len(columns.headers) - len(cells))
        pupil, errors = _row(line, cells, columns)
        if pupil is not None and pupil.upn in seen:
            errors.append(
                RowError(
                    line,
                    columns.headers[columns.pupil["upn"]],
                    f"UPN {pupil.upn} is also on line {seen[pupil.upn]}; a pupil is on the roll once",
                )
            )
            pupil = None
        roll.errors += errors
        if pupil is not None:
            seen[pupil.upn] = line
            roll.pupils.append(pupil)
    return roll


def _row(line: int, cells: list[str], columns: Columns) -> tuple[RollPupil | None, list[RowError]]:
    errors: list[RowError] = []

    def cell(meaning: str) -> str:
        i = columns.pupil.get(meaning)
        return clean_text(cells[i]).strip() if i is not None else ""

    def header(meaning: str) -> str:
        return columns.headers[columns.pupil[meaning]]

    upn = ""
    try:
        upn = parse_upn(cell("upn"))
    except PydanticCustomError as exc:
        message = exc.message()
        errors.append(RowError(line, header("upn"), "is blank" if message == "this must be filled in" else message))
    names = {}
    for meaning in ("legal_forename", "legal_surname"):
        names[meaning] = tidy_name(cell(meaning))
        if not names[meaning]:
            errors.append(RowError(line, header(meaning), "is blank"))
    born: date | None = None
    raw = cell("date_of_birth")
    try:
        born = parse_uk_date(raw)
        if born is None:
            errors.append(RowError(line, header("date_of_birth"), "is blank"))
    except PydanticCustomError as exc:
        reason = (
            "is not a real date"
            if exc.message().endswith("is not a real date")
            else ("is not a date senforms can read; it should look like 14/02/2016")
        )
        errors.append(RowError(line, header("date_of_birth"), f"'{raw}' {reason}"))
    year = _year_group(cell("year_group"))
    if year is None:
        raw = cell("year_group")
        errors.append(
            RowError(
                line,
                header("year_group"),
                "is blank" if not raw else f"'{raw}' is not a year group (Nursery, Reception or Year 1 to 13)",
            )
        )
    contacts, contact_errors = _contacts(
        line, cells, columns, _address(cell("address")) or _joined(clean_text(cells[i]) for i in columns.address_parts)
    )
    errors += contact_errors
    if errors or born is None or year is None:
        return None, errors
    preferred = tidy_name(cell("preferred_forename")) or None
    preferred_surname = tidy_name(cell("preferred_surname")) or None
    return (
        RollPupil(
            line=line,
            upn=upn,
            legal_forename=names["legal_forename"],
            legal_surname=names["legal_surname"],
            preferred_forename=preferred,
            preferred_surname=preferred_surname,
            date_of_birth=born,
            year_group=year,
            class_name=cell("class_name") or None,
            contacts=tuple(contacts),
            present=frozenset(columns.pupil),
        ),
        errors,
    )


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _contacts(
    line: int, cells: list[str], columns: Columns, home: str | None
) -> tuple[list[RollContact], list[RowError]]:
    """The row's contacts in priority order. A contact with no address of their own is taken to
    live at the pupil's home address, as the systems export a contact's address only when it
    differs (or not at all)."""
    out: list[RollContact] = []
    errors: list[RowError] = []
    for _number, parts in columns.contacts.items():

        def value(part: str, parts: dict[str, list[int]] = parts) -> str:
            return next((clean_text(cells[i]).strip() for i in parts.get(part, []) if cells[i].strip()), "")

        name = value("name") or " ".join(p for p in (value("title"), value("forename"), value("surname")) if p)
        name = tidy_name(name)
        if not name:
            continue
        email = value("email") or None
        if email and not _EMAIL.match(email):
            column = columns.headers[next(i for i in parts["email"] if cells[i].strip())]
            errors.append(RowError(line, column, f"'{email}' is not an e-mail address"))
            email = None
        pr = value("responsibility").casefold()
        out.append(
            RollContact(
                name=name,
                relationship=value("relationship") or None,
                address=_address(value("address")) or home,
                email=email,
                phone=value("phone") or None,
                responsibility=True if pr in _YES else False if pr in _NO else None,
            )
        )
    return out, errors


# --- who letters go to ------------------------------------------------------------------------

#: Relationships that make a contact someone letters about SEN support go to, when the file does
#: not say who has parental responsibility (SIMS and Bromcom: "Mother", "Father", "Parent",
#: "Carer", "Step-mother", "Foster Carer", "Guardian"; Arbor: "Legal Guardian").
_PARENTISH = re.compile(
    r"^(?:step[- ]?|foster |adoptive |birth )?(?:mother|father|parent|mum|dad)\b|\bcarer\b|\bguardian\b",
    re.IGNORECASE,
)  # anchored, so a grandmother or grandparent is not taken for a parent

#: The forms and letters have room for two parents or carers.
MAX_RECIPIENTS = 2


def recipients(contacts: Sequence[RollContact]) -> list[RollContact]:
    """The contacts letters go to, in the school's priority order: those with parental
    responsibility when the file says; else those whose relationship is a parent's or carer's;
    else the first contacts. At most two, as on the forms."""
    chosen = [c for c in contacts if c.responsibility]
    if not chosen and not any(c.responsibility is not None for c in contacts):
        chosen = [c for c in contacts if c.relationship and _PARENTISH.search(c.relationship)]
    if not chosen:
        chosen = list(contacts)
    return chosen[:MAX_RECIPIENTS]


# --- the roll against the archive ---------------------------------------------------------------


@dataclass(frozen=True)
class Confirm:
    """A difference in who a pupil is, held back for the SENCO: the roll's row is not applied."""

    upn: str
    differences: list[str]
    command: str

    def __str__(self) -> str:
        return f"UPN {self.upn}: " + "; ".join(self.differences) + f". If the roll is right, run: {self.command}"


@dataclass
class RollReport:
    added: list[tuple[str, str]] = field(default_factory=list)  # (UPN, name)
    updated: dict[str, list[str]] = field(default_factory=dict)  # UPN -> what changed, for the SENCO
    unchanged: int = 0
    to_confirm: list[Confirm] = field(default_factory=list)
    not_on_roll: list[tuple[str, str]] = field(default_factory=list)  # (UPN, name)
    # On the roll, but recorded as having left (``senforms pupil UPN --left``): an older export, or
    # a child who came back. Never "up to date": a person checks. (UPN, name, the day they left)
    left_but_on_roll: list[tuple[str, str, date]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ","
    checked_only: bool = False

    @property
    def ok(self) -> bool:
        """Every row of the roll was read and applied (listing pupils to confirm or missing from
        the roll is information, not failure; a row held back for confirmation is not applied)."""
        return not self.errors and not self.to_confirm


def _differences(row: t.Pupil, pupil: RollPupil) -> tuple[list[str], list[tuple[str, str]]]:
    differences: list[str] = []
    fixes: list[tuple[str, str]] = []
    for label, option, in_roll, in_archive in (
        ("legal surname", "--legal-surname", pupil.legal_surname, row.legal_surname),
        ("legal forename", "--legal-forename", pupil.legal_forename, row.legal_forename),
    ):
        if not same_name(in_roll, in_archive):
            text = f"{label} '{in_roll}' on the roll, '{in_archive}' in the archive"
            if accent_only(in_roll, in_archive) and (explained := name_difference(in_roll, in_archive)):
                text += f" ({explained})"
            differences.append(text)
            fixes.append((option, in_roll))
    if row.date_of_birth != pupil.date_of_birth:
        differences.append(
            f"date of birth {format_uk_date(pupil.date_of_birth)} on the roll, "
            f"{format_uk_date(row.date_of_birth)} in the archive"
        )
        fixes.append(("--date-of-birth", format_uk_date(pupil.date_of_birth)))
    return differences, fixes


def _contacts_now(row: t.Pupil) -> list[tuple[str, str | None, str | None, str | None, str | None]]:
    return [(p.name, p.relation, p.address, p.email, p.phone) for p in row.parents]


@dataclass(frozen=True)
class Change:
    """One detail the roll changed: ``shown`` to the SENCO with its values, ``logged`` in the
    event log without names (the log names pupils by UPN only)."""

    shown: str
    logged: str


def _update(row: t.Pupil, pupil: RollPupil, when: datetime) -> list[Change]:
    """Bring the archive's pupil up to the roll's details (not who they are); returns what changed."""
    changes: list[Change] = []
    year = _year(pupil.year_group)
    if row.year_group != pupil.year_group:
        old = _year(row.year_group).label if row.year_group else "none"
        text = f"year group {old} -> {year.label}"
        changes.append(Change(text, text))
        row.year_group = pupil.year_group
    if "class_name" in pupil.present and (row.class_name or None) != pupil.class_name:
        text = f"class {row.class_name or 'none'} -> {pupil.class_name or 'none'}"
        changes.append(Change(text, text))
        row.class_name = pupil.class_name
    for label, attr, value, column in (
        ("preferred forename", "preferred_name", pupil.preferred_forename, "preferred_forename"),
        ("preferred surname", "preferred_surname", pupil.preferred_surname, "preferred_surname"),
    ):
        if column in pupil.present and (getattr(row, attr) or None) != value:
            old = getattr(row, attr) or "none"
            changes.append(Change(f"{label} {old} -> {value or 'none'}", f"{label} changed"))
            setattr(row, attr, value)
    if pupil.contacts:
        chosen = recipients(pupil.contacts)
        wanted = [(c.name, c.relationship, c.address, c.email, c.phone) for c in chosen]
        if wanted != _contacts_now(row):
            # How a parent likes to be contacted is asked on the forms, not on the roll: kept.
            preferred = {p.name.casefold(): p.preferred_contact for p in row.parents}
            row.parents = [
                t.Parent(
                    position=i,
                    name=c.name,
                    relation=c.relationship,
                    address=c.address,
                    email=c.email,
                    phone=c.phone,
                    preferred_contact=preferred.get(c.name.casefold()),
                )
                for i, c in enumerate(chosen)
            ]
            who = ", ".join(f"{c.name} ({c.relationship})" if c.relationship else c.name for c in chosen)
            changes.append(Change(f"contacts now {who}", "contacts updated"))
    if changes or row.roll_updated_at is None:
        row.updated_at = when
    row.roll_updated_at = when
    return changes


def _new(pupil: RollPupil, when: datetime) -> t.Pupil:
    row = t.Pupil(
        upn=pupil.upn,
        legal_forename=pupil.legal_forename,
        legal_surname=pupil.legal_surname,
        date_of_birth=pupil.date_of_birth,
        year_group=pupil.year_group,
        class_name=pupil.class_name,
        created_at=when,
        updated_at=when,
    )
    _update(row, pupil, when)
    return row


def apply_roll(session: Session, roll: Roll, *, check: bool = False) -> RollReport:
    """The roll against the archive, in the caller's transaction. With ``check`` the session's
    changes are rolled back before returning, so ``--check`` reports exactly what an import
    would do and changes nothing."""
    report = RollReport(
        errors=list(roll.errors),
        unused_columns=roll.unused,
        encoding=roll.encoding,
        delimiter=roll.delimiter,
        checked_only=check,
    )
    # New pupils are created under the same lock the pipeline takes, so a form filed at the same
    # moment for a child the roll is adding waits rather than creating the child twice.
    lock_pupil(session, None)
    rows = session.scalars(select(t.Pupil).options(selectinload(t.Pupil.parents))).all()
    by_upn = {r.upn: r for r in rows}
    by_former = {r.former_upn: r for r in rows if r.former_upn}
    by_birthday: dict[date, list[t.Pupil]] = {}
    for r in rows:
        by_birthday.setdefault(r.date_of_birth, []).append(r)
    when = now()
    on_roll: set[int] = set()
    for pupil in roll.pupils:
        row = by_upn.get(pupil.upn) or by_former.get(pupil.upn)
        if row is None:
            # The same child under another UPN (a temporary UPN since replaced in the school's
            # system): never a second record; a person says they are one child.
            twin = next(
                (
                    r
                    for r in by_birthday.get(pupil.date_of_birth, [])
                    if same_name(r.legal_surname, pupil.legal_surname)
                    and same_name(r.legal_forename, pupil.legal_forename)
                ),
                None,
            )
            if twin is not None:
                on_roll.add(twin.id)
                report.to_confirm.append(
                    Confirm(
                        pupil.upn,
                        [
                            f"the archive has a pupil with this name and date of birth under UPN {twin.upn} "
                            "(a temporary or mistyped UPN?)"
                        ],
                        f"senforms pupil fix {twin.upn} --upn {pupil.upn}",
                    )
                )
                continue
            row = _new(pupil, when)
            session.add(row)
            report.added.append(
                (pupil.upn, f"{pupil.preferred_forename or pupil.legal_forename} {pupil.legal_surname}")
            )
            log(session, "roll", "added from the roll", upn=pupil.upn)
            continue
        on_roll.add(row.id)
        differences, fixes = _differences(row, pupil)
        if differences:
            report.to_confirm.append(Confirm(row.upn, differences, _fix_command(row.upn, fixes)))
            continue
        changes = _update(row, pupil, when)
        if changes:
            report.updated[row.upn] = [c.shown for c in changes]
            log(session, "roll", "updated from the roll: " + "; ".join(c.logged for c in changes), upn=row.upn)
        elif row.left_on is None:
            report.unchanged += 1
        if row.left_on is not None:
            name = f"{row.preferred_name or row.legal_forename} {row.legal_surname}"
            report.left_but_on_roll.append((row.upn, name, row.left_on))
    report.not_on_roll = sorted(
        (r.upn, f"{r.preferred_name or r.legal_forename} {r.legal_surname}")
        for r in rows
        if r.id not in on_roll and r.left_on is None
    )
    if check:
        session.rollback()
    else:
        session.flush()
    return report


def import_roll(settings: Settings, path: Path, *, check: bool = False) -> RollReport:
    """``senforms pupils import``: read the file, apply it to the home folder's archive."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RollFileError(
            f"The roll file {path} cannot be opened: {exc.strerror or exc}.",
            advice="Check the file's name and folder (or close it in Excel), then run the command again.",
        ) from exc
    roll = read_roll(data)
    archive = Archive(settings.database_url)
    try:
        if check:
            with archive.trial() as session:
                return apply_roll(session, roll, check=True)
        with archive.session() as session:
            report = apply_roll(session, roll)
        if report.updated or report.added:
            # The SEND register in the outbox shows year groups and classes: its living copy is
            # written again, as ``senforms pupil fix`` does (under the register's lock, in a
            # transaction of its own).
            with archive.session() as session:
                write_register(session, settings.outbox, settings.today(), only_if_present=True)
        return report
    finally:
        archive.close()


# --- the roll's details on what the pipeline writes -----------------------------------------------


def rolled_pupil(row: t.Pupil | None, pupil: kinds.Pupil) -> kinds.Pupil:
    """The form's pupil with the roll's current details, for the letters and pre-filled forms
    written from the form: year group, class, preferred name and the contacts letters go to.
    Who the pupil is comes from the form (``find_pupil`` has checked it against the archive).
    A pupil the roll has never named (``roll_updated_at`` None) is the form's pupil, unchanged."""
    if row is None or row.roll_updated_at is None:
        return pupil
    update: dict[str, object] = {"year_group": _year(row.year_group)}
    if row.class_name:
        update["class_name"] = row.class_name
    if row.preferred_name:
        update["preferred_name"] = row.preferred_name
    if row.parents:
        # Contacts a form would not accept (saved by an older senforms, say): the letters go to
        # the parents the form names rather than nowhere. What the roll left empty for a contact
        # (how they like to be contacted, most often) is the form's answer for the same person,
        # as ``save_pupil`` keeps it.
        with contextlib.suppress(ValidationError):
            update["parents"] = [
                kinds.Parent(name=p.name, relationship=p.relation, **contact_filled(p, pupil.parents))
                for p in row.parents[:MAX_RECIPIENTS]
            ]
    return pupil.model_copy(update=update)


def form_pupil(row: t.Pupil) -> dict[str, object]:
    """The pupil section of a new form as the archive knows the pupil: the roll's details when
    the roll has named them, else those of their last form. ``senforms blank KIND --upn`` puts
    it in the form, so the form reaches the SENCO with the right child's UPN, legal name and
    date of birth already typed, rather than copied by hand from another file."""
    values: dict[str, object] = {
        "upn": row.upn,
        "legal_forename": row.legal_forename,
        "legal_surname": row.legal_surname,
        "preferred_name": row.preferred_name,
        "date_of_birth": row.date_of_birth,
        "year_group": row.year_group,
        "class_name": row.class_name,
        "parents": [
            {
                key: value
                for key, value in {
                    "name": p.name,
                    "relationship": p.relation,
                    "address": p.address,
                    "email": p.email,
                    "phone": p.phone,
                    "preferred_contact": p.preferred_contact,
                }.items()
                if value
            }
            for p in row.parents[:MAX_RECIPIENTS]
        ],
    }
    return {key: value for key, value in values.items() if value not in (None, "", [])}
