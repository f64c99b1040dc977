"""The outbox: where each document goes, and putting it there.

Documents are sorted by audience, then pupil:
``outbox/parents/Hart Amelia (H801200001001)/2026-11-22 Formal notification of SEN support.docx``.
A document's place is chosen when it is filed, inside the archive's transaction, so a delivery
cut off by a crash is finished by writing to exactly the same names. Nothing is ever overwritten
except the SEND register, the one living file, which always shows the register as it is now.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from senforms.archive import register
from senforms.archive import tables as t
from senforms.archive.store import Archive, log, now
from senforms.deliver import pupil_folder, safe_name, staging, write_atomic
from senforms.documents import Rendered


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
            path = register.REGISTER_PATH
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
    # The form changed the register and the outbox's register was left for ``write_register``
    # (``register_now=False``): its version stays undelivered in the archive until then.
    register_pending: bool = False


def deliver(
    archive: Archive,
    outbox: Path,
    form_id: int,
    checkpoint: Callable[[str], None],
    *,
    today: date | None = None,
    register_now: bool = True,
) -> Delivered:
    """Write a filed form's undelivered documents to the outbox, then mark them delivered and the
    form done. Safe to run again after a crash at any point: a document already written is
    recognised by its hash and not written twice.

    The form's row is locked for the whole delivery (its first statement is a write, which on
    SQLite takes the database's write lock), so two runs finishing the same form take turns and
    the second finds nothing left to write: no letter is ever written twice as "name (2)". The
    lock is held only while a few files are written. An ``OSError`` from the outbox (full disk,
    read-only, permissions) rolls the transaction back and leaves the form to be finished later;
    the caller turns it into ``DeliveryPendingError``.

    The register is the one document whose cost grows with the school (it is the whole register,
    written again). With ``register_now=False`` it is left for the caller to write once for a
    batch of forms (``write_register``): the form's register version stays undelivered in the
    archive, which is what tells a later run, even after a crash, that the outbox's register is
    behind the archive."""
    with archive.session() as session:
        session.execute(
            update(t.ReceivedForm).where(t.ReceivedForm.id == form_id).values(state=t.ReceivedForm.state)
        )
        form = session.get(t.ReceivedForm, form_id)
        assert form is not None
        if form.state == "done":
            return Delivered(_paths(session, outbox, form_id), now=False)
        pending = session.execute(
            select(t.Document.id, t.Document.path, t.Document.content, t.Document.content_hash, t.Document.template)
            .where(t.Document.form_id == form_id, t.Document.delivered_at.is_(None))
            .order_by(t.Document.id)
        ).all()
        registers = [d.id for d in pending if d.template == "register"]
        delivered: dict[int, str] = {}
        if registers and register_now:
            # The register is the one living file in the outbox: rewritten from the archive as
            # it is now (never from a stored copy, so finishing an old form's delivery cannot
            # bring back an older register). This marks every register version delivered.
            write_register(session, outbox, today or date.today())
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
        form.state = "done"
        upn = session.scalar(select(t.Pupil.upn).where(t.Pupil.id == form.pupil_id))
        written = len(delivered) + (len(registers) if register_now else 0)
        log(session, "delivered", f"{written} documents to the outbox", upn=upn, form_id=form_id)
        checkpoint("marked")
        return Delivered(_paths(session, outbox, form_id), now=True, register_pending=bool(registers) and not register_now)


def write_register(session: Session, outbox: Path, today: date) -> None:
    """The outbox's SEND register (CSV and XLSX) written from the archive as it is now, under the
    register's lock, every register version filed so far marked delivered (``register.write_register``)."""
    register.write_register(session, outbox, today, write=write_atomic)


def _paths(session: Session, outbox: Path, form_id: int) -> list[Path]:
    rows = session.scalars(select(t.Document.path).where(t.Document.form_id == form_id).order_by(t.Document.id))
    paths = []
    for path in rows:
        paths.append(outbox / path)
        if path == register.REGISTER_PATH:  # the register's living copy is written in both formats
            paths.append(outbox / register.REGISTER_XLSX_PATH)
    return paths


