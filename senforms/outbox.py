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
from datetime import date
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.archive.register import REGISTER_PATH, register_csv
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


def deliver(archive: Archive, outbox: Path, form_id: int, checkpoint: Callable[[str], None]) -> list[Path]:
    """Write a filed form's undelivered documents to the outbox, then mark them delivered and the
    form done. Safe to run again after a crash at any point: a document already written is
    recognised by its hash and not written twice."""
    written: list[Path] = []
    with archive.session() as session:
        pending = session.execute(
            select(t.Document.id, t.Document.path, t.Document.content, t.Document.content_hash, t.Document.template)
            .where(t.Document.form_id == form_id, t.Document.delivered_at.is_(None))
            .order_by(t.Document.id)
        ).all()
        jobs = [(d.id, d.path, d.content, d.content_hash) for d in pending if d.template != "register"]
        registers = [d.id for d in pending if d.template == "register"]
        if registers:
            # The register is the one living file in the outbox: rewritten from the archive as
            # it is now (never from a stored copy, so finishing an old form's delivery cannot
            # bring back an older register). Every version is kept in the archive.
            write_atomic(outbox / REGISTER_PATH, register_csv(session), overwrite=True, stage=staging(outbox))
            written.append(outbox / REGISTER_PATH)
    delivered: dict[int, str] = {}
    for doc_id, relative, content, digest in jobs:
        target = outbox / relative
        # Already there from a run that crashed before marking it: the hash proves it.
        if not (target.exists() and sha256(target.read_bytes()) == digest):
            target = write_atomic(target, content, stage=staging(outbox))
        delivered[doc_id] = target.relative_to(outbox).as_posix()
        written.append(target)
        checkpoint("wrote")
    delivered |= dict.fromkeys(registers, REGISTER_PATH)
    with archive.session() as session:
        at = now()
        moved = {doc_id: path for doc_id, path in delivered.items() if path != _planned(pending, doc_id)}
        # One statement marks every document delivered; only a document written under another
        # name than planned (a file of that name appeared meanwhile) needs its own.
        session.execute(update(t.Document).where(t.Document.id.in_(list(delivered))).values(delivered_at=at))
        for doc_id, path in moved.items():
            session.execute(update(t.Document).where(t.Document.id == doc_id).values(path=path))
        form = session.get(t.ReceivedForm, form_id)
        assert form is not None
        form.state = "done"
        upn = session.scalar(select(t.Pupil.upn).where(t.Pupil.id == form.pupil_id))
        log(session, "delivered", f"{len(delivered)} documents to the outbox", upn=upn, form_id=form_id)
        checkpoint("marked")
    return written


def _planned(pending: Iterable[object], doc_id: int) -> str | None:
    for row in pending:
        if row.id == doc_id:  # type: ignore[attr-defined]
            return str(row.path)  # type: ignore[attr-defined]
    return None
