"""Everything held about one pupil as one zip: for the next school (Code of Practice 6.57) or a
parent's subject access request.

The zip holds every form received, byte for byte as it arrived and under its own file name (made
safe for Windows), corrected ones included; every document senforms wrote, as it was sent; an
index (``index.csv``: what each file is, its date, who it was for, its SHA-256); a summary of the
record in plain English (``Summary.txt``); and the record as JSON (``record.json``, the shape of
``senforms pupil UPN --json``). It is written atomically and readable by its owner only, as the
archive is, and each export is noted in the event log under the pupil's UPN.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.archive.store import Archive, log
from senforms.config import Settings
from senforms.deliver import safe_file_name, write_atomic
from senforms.errors import count
from senforms.reports.record import PupilRecord, find_pupil_row, read_record, record_json_text, record_lines
from senforms.values import format_uk_date

#: Special-category data about a child: the zip is its owner's alone, whatever the umask.
EXPORT_MODE = 0o600

_AUDIENCE = {"parents": "Parents", "senco": "SENCO", "staff": "Staff"}


@dataclass(frozen=True)
class Export:
    upn: str
    data: bytes
    forms: int
    documents: int


@dataclass(frozen=True)
class Exported:
    path: Path
    upn: str
    forms: int
    documents: int
    size: int


def _stamp(value: datetime) -> tuple[int, int, int, int, int, int]:
    return (max(value.year, 1980), value.month, value.day, value.hour, value.minute, value.second)


def _suffix(name: str, data: bytes) -> str:
    """A file's extension from its name, else from its first bytes (so it opens in the right program)."""
    suffix = PurePosixPath(name).suffix
    if 1 < len(suffix) <= 6:
        return ""
    return ".pdf" if data.startswith(b"%PDF") else ".docx" if data.startswith(b"PK") else ""


def _summary(record: PupilRecord, forms: int, documents: int) -> str:
    lines = [
        f"The SEN record of {record.name}, UPN {record.upn}",
        f"Exported on {format_uk_date(record.as_of)} by senforms.",
        "",
        "What is in this file:",
        f"- Forms: {count(forms, 'form')} as the school received them, including any that were later "
        "corrected (the index says which).",
        f"- Documents: {count(documents, 'document')} the school sent to the pupil's parents, staff and SENCO.",
        "- index.csv: one line for each file, saying what it is, its date and who it was for.",
        "- record.json: the same record for another school's computer system.",
        "",
        "This is special category personal data about a child. Keep it secure and share it only with the "
        "people it is meant for.",
        "",
    ]
    lines += record_lines(record)
    # Windows line ends throughout, answers of several lines included, for Notepad on any version.
    return ("\n".join(lines) + "\n").replace("\r\n", "\n").replace("\n", "\r\n")


def build_export(session: Session, upn: str, settings: Settings) -> Export:
    """The zip's bytes for the pupil with ``upn``. Reads only; the caller logs the export."""
    record = read_record(session, upn, settings=settings)
    pupil = find_pupil_row(session, record.upn)
    forms = session.execute(
        select(
            t.ReceivedForm.id,
            t.ReceivedForm.kind,
            t.ReceivedForm.meeting_date,
            t.ReceivedForm.received_at,
            t.ReceivedForm.original_name,
            t.ReceivedForm.original,
            t.ReceivedForm.superseded_by_id,
        )
        .where(t.ReceivedForm.pupil_id == pupil.id)
        .order_by(t.ReceivedForm.meeting_date, t.ReceivedForm.id)
    ).all()
    documents = session.execute(
        select(t.Document.id, t.Document.audience, t.Document.title, t.Document.path, t.Document.content)
        .where(t.Document.pupil_id == pupil.id)
        .order_by(t.Document.created_at, t.Document.id)
    ).all()
    infos = {f.id: f for f in record.forms}
    docs = {d.id: d for d in record.documents}
    index = io.StringIO()
    writer = csv.writer(index, lineterminator="\r\n")
    writer.writerow(["File", "What it is", "Date", "For", "Received or written", "Notes", "SHA-256"])
    buffer = io.BytesIO()
    used: set[str] = set()

    def unique(name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        candidate, n = name, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
        used.add(candidate.lower())
        return candidate

    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for n, f in enumerate(forms, 1):
            info = infos[f.id]
            own = safe_file_name(f.original_name or "form", 100)
            name = unique(f"Forms/{n:02d} {own}{_suffix(own, f.original)}")
            entry = zipfile.ZipInfo(name, _stamp(f.received_at))
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, f.original)
            notes = []
            if info.corrects:
                notes.append("a correction of an earlier form, which it replaces")
            if not info.current:
                notes.append("replaced by a corrected form; kept as received")
            if info.decision_label:
                notes.append(f"decision: {info.decision_label}")
            writer.writerow(
                [
                    name,
                    f"Form received: {info.title}" + (f", cycle {info.cycle}" if info.cycle else ""),
                    format_uk_date(f.meeting_date),
                    "the pupil's record",
                    format_uk_date(f.received_at.date()),
                    "; ".join(notes),
                    hashlib.sha256(f.original).hexdigest(),
                ]
            )
        for d in documents:
            info_d = docs[d.id]
            folder = _AUDIENCE.get(d.audience, safe_file_name(d.audience, 20))
            own = safe_file_name(PurePosixPath(d.path).name or d.title, 120)
            name = unique(f"Documents/{folder}/{own}{_suffix(own, d.content)}")
            entry = zipfile.ZipInfo(name, _stamp(info_d.created_at))
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, d.content)
            sent = info_d.delivered_at or info_d.created_at
            writer.writerow(
                [
                    name,
                    f"Document: {d.title}",
                    format_uk_date(info_d.created_at.date()),
                    {"parents": "parents", "senco": "the SENCO", "staff": "staff"}.get(d.audience, d.audience),
                    format_uk_date(sent.date()),
                    "corrected copy" if info_d.corrected else "",
                    hashlib.sha256(d.content).hexdigest(),
                ]
            )
        # Excel opens a CSV as UTF-8 only with the byte-order mark.
        archive.writestr("index.csv", "\ufeff" + index.getvalue())
        archive.writestr("Summary.txt", "\ufeff" + _summary(record, len(forms), len(documents)))
        archive.writestr("record.json", record_json_text(record) + "\n")
    return Export(record.upn, buffer.getvalue(), len(forms), len(documents))


def export_in_home(settings: Settings, upn: str, output: Path) -> Exported:
    """Write the pupil's export to ``output`` (never over an existing file: a free name like
    ``file (2).zip`` instead) and note it in the event log."""
    archive = Archive(settings.database_url)
    try:
        with archive.reading() as session:
            export = build_export(session, upn, settings)
        written = write_atomic(output, export.data, mode=EXPORT_MODE)
        with archive.session() as session:
            # The event names the pupil by UPN only; the file's name may well carry the child's name.
            log(
                session,
                "exported",
                f"export written: {count(export.forms, 'form')}, {count(export.documents, 'document')}, "
                f"SHA-256 {hashlib.sha256(export.data).hexdigest()}",
                upn=export.upn,
            )
    finally:
        archive.close()
    return Exported(written, export.upn, export.forms, export.documents, len(export.data))
