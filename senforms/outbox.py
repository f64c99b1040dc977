"""The outbox: where each document goes, and putting it there.

Documents are sorted by audience, then pupil:
``outbox/parents/Hart Amelia (H801200001001)/2026-11-22 Formal notification of SEN support.docx``.
A document's place is chosen when it is filed, inside the archive's transaction, so a delivery
cut off by a crash is finished by writing to exactly the same names. Nothing is ever overwritten
except the SEND register, the one living file, which always shows the register as it is now.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.archive.register import REGISTER_PATH, register_csv
from senforms.archive.store import Archive, load_form, log, now
from senforms.context import recipients
from senforms.deliver import pupil_folder, safe_name, staging, write_atomic
from senforms.documents import Rendered, household_title
from senforms.letters import Audience


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_delivery(
    session: Session,
    outbox: Path,
    form: t.ReceivedForm,
    pupil: t.Pupil,
    rendered: Iterable[Rendered],
    *,
    corrected: bool,
    today: date,
) -> None:
    """Choose each document's place in the outbox and file it in the archive, undelivered."""
    folder = pupil_folder(pupil.legal_surname, pupil.legal_forename, pupil.upn)
    taken = set(session.scalars(select(t.Document.path).where(t.Document.pupil_id == pupil.id)).all())
    for doc in rendered:
        if doc.template == "register":
            path = REGISTER_PATH
        else:
            base = f"{doc.audience}/{folder}/{today.isoformat()} {safe_name(doc.title)}"
            path, n = f"{base}{doc.suffix}", 1
            while path in taken or (outbox / path).exists():
                n += 1
                path = f"{base} ({n}){doc.suffix}"
            taken.add(path)
        session.add(
            t.Document(
                pupil_id=None if doc.template == "register" else pupil.id,
                form_id=form.id,
                audience=doc.audience,
                title=doc.title,
                template=doc.template,
                path=path,
                content_hash=sha256(doc.content),
                content=doc.content,
                corrected=corrected,
                created_at=now(),
            )
        )


@dataclass(frozen=True)
class Delivered:
    paths: list[Path]  # every document of the form, where it is in the outbox
    now: bool  # written by this call; False when another run had already delivered the form


def deliver(archive: Archive, outbox: Path, form_id: int, checkpoint: Callable[[str], None]) -> Delivered:
    """Write a filed form's undelivered documents to the outbox, then mark them delivered and the
    form done. Safe to run again after a crash at any point: a document already written is
    recognised by its hash and not written twice.

    The form's row is locked for the whole delivery (its first statement is a write, which on
    SQLite takes the database's write lock), so two runs finishing the same form take turns and
    the second finds nothing left to write: no letter is ever written twice as "name (2)". The
    lock is held only while a few files are written. An ``OSError`` from the outbox (full disk,
    read-only, permissions) rolls the transaction back and leaves the form to be finished later;
    the caller turns it into ``DeliveryPendingError``."""
    with archive.session() as session:
        session.execute(update(t.ReceivedForm).where(t.ReceivedForm.id == form_id).values(state=t.ReceivedForm.state))
        form = session.get(t.ReceivedForm, form_id)
        assert form is not None
        if form.state == "done":
            return Delivered(_paths(session, outbox, form_id), now=False)
        pending = session.execute(
            select(
                t.Document.id,
                t.Document.path,
                t.Document.content,
                t.Document.content_hash,
                t.Document.template,
                t.Document.audience,
            )
            .where(t.Document.form_id == form_id, t.Document.delivered_at.is_(None))
            .order_by(t.Document.id)
        ).all()
        registers = [d.id for d in pending if d.template == "register"]
        delivered: dict[int, str] = {}
        if registers:
            # The register is the one living file in the outbox: rewritten from the archive as
            # it is now (never from a stored copy, so finishing an old form's delivery cannot
            # bring back an older register).
            write_atomic(outbox / REGISTER_PATH, register_csv(session), overwrite=True, stage=staging(outbox))
            delivered |= dict.fromkeys(registers, REGISTER_PATH)
        for doc in pending:
            if doc.template == "register":
                continue
            target = outbox / doc.path
            # Already there from a run that crashed before marking it: the hash proves it.
            if not (target.exists() and sha256(target.read_bytes()) == doc.content_hash):
                target = write_atomic(target, doc.content, stage=staging(outbox))
            delivered[doc.id] = target.relative_to(outbox).as_posix()
            checkpoint("wrote")
        at = now()
        # One statement marks every document delivered; only a document written under another
        # name than planned (a file of that name appeared meanwhile) needs its own.
        if delivered:
            session.execute(update(t.Document).where(t.Document.id.in_(list(delivered))).values(delivered_at=at))
        for doc in pending:
            if delivered.get(doc.id, doc.path) != doc.path:
                session.execute(update(t.Document).where(t.Document.id == doc.id).values(path=delivered[doc.id]))
        # The office's list of the day's letters to parents, rewritten whole from the archive.
        days = {m.group(1) for d in pending if d.audience == Audience.PARENTS.value and (m := _DAY.search(d.path))}
        for day in sorted(days):
            path = letters_to_send_path(day)
            write_atomic(outbox / path, letters_to_send(session, day), overwrite=True, stage=staging(outbox))
        form.state = "done"
        upn = session.scalar(select(t.Pupil.upn).where(t.Pupil.id == form.pupil_id))
        log(session, "delivered", f"{len(delivered)} documents to the outbox", upn=upn, form_id=form_id)
        checkpoint("marked")
        return Delivered(_paths(session, outbox, form_id), now=True)


# --- the office's list of letters to post or e-mail -------------------------------------------------

LETTERS_TO_SEND_HEADER = [
    "Recipient",
    "Address",
    "E-mail",
    "Preferred contact",
    "UPN",
    "Child",
    "Letter",
    "File",
]
_DAY = re.compile(r"/(\d{4}-\d{2}-\d{2}) [^/]*$")


def letters_to_send_path(day: str) -> str:
    return f"{Audience.PARENTS.value}/Letters to send {day}.csv"


def letters_to_send(session: Session, day: str) -> bytes:
    """Every parent letter delivered for ``day`` (the date its file name starts with), one row
    each with the household it is addressed to, so the office can mail-merge envelopes or
    e-mails in one go. Built from the archive each time, so finishing a delivery after a crash
    writes the same list."""
    rows = session.execute(
        select(
            t.Document.title,
            t.Document.path,
            t.Document.form_id,
            t.Pupil.upn,
            t.Pupil.legal_forename,
            t.Pupil.preferred_name,
            t.Pupil.legal_surname,
        )
        .join(t.Pupil, t.Pupil.id == t.Document.pupil_id)
        .where(
            t.Document.audience == Audience.PARENTS.value,
            t.Document.delivered_at.is_not(None),
            t.Document.path.like(f"{Audience.PARENTS.value}/%/{day} %"),
        )
        .order_by(t.Document.id)
    ).all()
    households: dict[int, list[dict[str, str]]] = {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(LETTERS_TO_SEND_HEADER)
    for row in rows:
        if row.form_id is not None and row.form_id not in households:
            form = session.get(t.ReceivedForm, row.form_id)
            pupil = getattr(load_form(form), "pupil", None) if form is not None else None
            households[row.form_id] = recipients(pupil) if pupil is not None else []
        found = households.get(row.form_id, []) if row.form_id is not None else []
        # A household's own copy ends with its names; a letter to one household is that household's.
        to = next(
            (h for h in found if household_title("", h["names"]) in row.title), found[0] if len(found) == 1 else None
        )
        writer.writerow(
            [
                to["names"] if to else "",
                ", ".join(to["address"].splitlines()) if to else "",
                to["email"] if to else "",
                to["preferred_contact"] if to else "",
                row.upn,
                f"{row.preferred_name or row.legal_forename} {row.legal_surname}",
                row.title,
                row.path,
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _paths(session: Session, outbox: Path, form_id: int) -> list[Path]:
    rows = session.scalars(select(t.Document.path).where(t.Document.form_id == form_id).order_by(t.Document.id))
    return [outbox / path for path in rows]
