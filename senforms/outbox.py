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
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from senforms.archive import register
from senforms.archive import tables as t
from senforms.archive.roll import rolled_pupil
from senforms.archive.store import Archive, as_utc, load_form, log, now
from senforms.context import recipients
from senforms.deliver import pupil_folder, safe_name, staging, write_atomic
from senforms.documents import Rendered, household_title
from senforms.letters import Audience


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the statements of every form's delivery, built once ------------------------------------------
# Building a statement costs SQLAlchemy more than running it does (118 us against 14 for the
# documents' select on SQLite), and a form runs these every time: they are built here, once, with
# their values as parameters. Plain tables, not the ORM: delivery holds no objects of these rows.

_FORMS, _DOCUMENTS, _PUPILS = t.table(t.ReceivedForm), t.table(t.Document), t.table(t.Pupil)
# The form's row locked for the delivery and marked done in the same statement (the delivery's
# transaction is rolled back if any document cannot be written), with the UPN for the log: a
# write first, which on SQLite takes the write lock. No row back: the form is done already
# (another run finished it while this one waited for the lock).
_LOCK_FORM = (
    update(_FORMS)
    .where(_FORMS.c.id == bindparam("form_id"), _FORMS.c.state != "done")
    .values(state="done")
    .returning(select(_PUPILS.c.upn).where(_PUPILS.c.id == _FORMS.c.pupil_id).scalar_subquery())
)
# Every document of the form, without its bytes: for a delivery finished later (after a crash or
# a full disk); the run that filed the form hands them over (``deliver``'s ``planned``). Their
# bytes are then read by ``_CONTENTS``.
_FORM_DOCUMENTS = (
    select(
        _DOCUMENTS.c.id,
        _DOCUMENTS.c.path,
        _DOCUMENTS.c.content_hash,
        _DOCUMENTS.c.template,
        _DOCUMENTS.c.audience,
        _DOCUMENTS.c.created_at,
        _DOCUMENTS.c.delivered_at,
    )
    .where(_DOCUMENTS.c.form_id == bindparam("form_id"))
    .order_by(_DOCUMENTS.c.id)
)
_CONTENTS = select(_DOCUMENTS.c.id, _DOCUMENTS.c.content).where(_DOCUMENTS.c.id.in_(bindparam("ids", expanding=True)))
_DELIVERED = (
    update(_DOCUMENTS)
    .where(_DOCUMENTS.c.id.in_(bindparam("ids", expanding=True)))
    .values(delivered_at=bindparam("at"))
)
# With each new row's id, by its path (a form's documents each have their own): the delivery that
# follows needs nothing else of them, so it does not read them back. Not in the order given, which
# SQLite can only promise one row per statement.
_INSERT_DOCUMENTS = insert(_DOCUMENTS).returning(_DOCUMENTS.c.path, _DOCUMENTS.c.id)
_PUPILS_PATHS = select(_DOCUMENTS.c.path).where(_DOCUMENTS.c.pupil_id == bindparam("pupil_id"))


@dataclass(frozen=True)
class Planned:
    """A filed document as its form's delivery needs it, with its bytes: handed over by the run
    that filed it, or read back from the archive (``_FORM_DOCUMENTS``, then ``_CONTENTS``)."""

    id: int
    path: str
    content_hash: str
    template: str
    audience: str
    created_at: datetime
    content: bytes
    delivered_at: datetime | None = None


def plan_delivery(
    session: Session,
    outbox: Path,
    form_id: int,
    pupil: t.Pupil,
    rendered: Iterable[Rendered],
    *,
    corrected: bool,
    today: date,
    new_pupil: bool = False,
) -> list[Planned]:
    """Choose each document's place in the outbox and file it in the archive, undelivered, in
    one statement (the ORM would insert them one by one on SQLite to learn each id).

    Returns the documents as filed, with their bytes, for ``deliver`` to write without reading
    them back from the archive."""
    placed = _placed(session, outbox, pupil, rendered, today=today, filed_before=not new_pupil)
    if not placed:
        return []
    at = now()
    rows = [
        _document_values(doc, path, pupil_id=_owner(doc, pupil.id), form_id=form_id, corrected=corrected, created_at=at)
        for doc, path in placed
    ]
    ids: dict[str, int] = {path: id for path, id in session.execute(_INSERT_DOCUMENTS, rows)}
    assert len(ids) == len(rows), "two of a form's documents were given the same place"
    return [
        Planned(ids[path], path, str(row["content_hash"]), doc.template, doc.audience, at, doc.content)
        for row, (doc, path) in zip(rows, placed, strict=True)
    ]


def plan_documents(
    session: Session,
    outbox: Path,
    pupil: t.Pupil | None,
    rendered: Iterable[Rendered],
    *,
    form_id: int | None,
    today: date,
    corrected: bool = False,
) -> list[t.Document]:
    """File documents in the archive, undelivered, each with its place in the outbox chosen now:
    a form's documents (``form_id``), or documents issued by date (``form_id`` None, from the
    daily round). A pupil's go in ``<audience>/<pupil's folder>/``; a school-wide document
    (``pupil`` None, the SENCO's digest) straight in ``<audience>/``. Returns the new rows."""
    rows = []
    for doc, path in _placed(session, outbox, pupil, rendered, today=today):
        pupil_id = pupil.id if pupil is not None else None
        row = document_row(doc, path, pupil_id=_owner(doc, pupil_id), form_id=form_id, corrected=corrected)
        session.add(row)
        rows.append(row)
    return rows


def _owner(doc: Rendered, pupil_id: int | None) -> int | None:
    """The pupil a document is filed under: none for a register version, which is the school's."""
    return None if doc.template == "register" else pupil_id


def _placed(
    session: Session,
    outbox: Path,
    pupil: t.Pupil | None,
    rendered: Iterable[Rendered],
    *,
    today: date,
    filed_before: bool = True,
) -> list[tuple[Rendered, str]]:
    """Each document with its place in the outbox (outbox-relative): a free name in the pupil's
    folder, never one the archive or the outbox already has. ``filed_before`` False: a pupil
    created in this transaction, who has no documents in the archive to look up."""
    folder = pupil_folder(pupil.legal_surname, pupil.legal_forename, pupil.upn) if pupil is not None else None
    pupil_id = pupil.id if pupil is not None else None
    taken: set[str] = set()
    if filed_before and pupil_id is not None:
        taken = set(session.scalars(_PUPILS_PATHS, {"pupil_id": pupil_id}))
    elif filed_before:  # the school's own documents (the SENCO's digest)
        taken = set(session.scalars(select(t.Document.path).where(t.Document.pupil_id.is_(None))))
    placed = []
    for doc in rendered:
        if doc.template == "register":
            path = register.REGISTER_PATH
        else:
            where = f"{doc.audience}/{folder}" if folder is not None else doc.audience
            base = f"{where}/{today.isoformat()} {safe_name(doc.title)}"
            path, n = f"{base}{doc.suffix}", 1
            while path in taken or (outbox / path).exists():
                n += 1
                path = f"{base} ({n}){doc.suffix}"
            taken.add(path)
        placed.append((doc, path))
    return placed


def document_row(
    doc: Rendered,
    path: str,
    *,
    pupil_id: int | None,
    form_id: int | None,
    corrected: bool = False,
    delivered_at: datetime | None = None,
) -> t.Document:
    """The archive's copy of one document at its place in the outbox (``path``, outbox-relative)."""
    at = delivered_at or now()
    return t.Document(
        **_document_values(
            doc, path, pupil_id=pupil_id, form_id=form_id, corrected=corrected, created_at=at, delivered_at=delivered_at
        )
    )


def _document_values(
    doc: Rendered,
    path: str,
    *,
    pupil_id: int | None,
    form_id: int | None,
    corrected: bool,
    created_at: datetime,
    delivered_at: datetime | None = None,
) -> dict[str, object]:
    return {
        "pupil_id": pupil_id,
        "form_id": form_id,
        "audience": doc.audience,
        "title": doc.title,
        "template": doc.template,
        "path": path,
        "content_hash": sha256(doc.content),
        "content": doc.content,
        "corrected": corrected,
        "created_at": created_at,
        "delivered_at": delivered_at,
    }


@dataclass(frozen=True)
class Delivered:
    paths: list[Path]  # every document of the form, where it is in the outbox
    now: bool  # written by this call; False when another run had already delivered the form
    # The form changed the register and the outbox's register was left for ``write_register``
    # (``register_now=False``): its version stays undelivered in the archive until then.
    register_pending: bool = False
    # The parent letters this call wrote (outbox path, when filed), for the office's list of
    # letters to send (``write_letters_lists``), which the caller brings up to date after.
    letters: list[tuple[str, datetime]] = field(default_factory=list)


def deliver(
    archive: Archive,
    outbox: Path,
    form_id: int,
    checkpoint: Callable[[str], None],
    *,
    today: date | None = None,
    register_now: bool = True,
    planned: Sequence[Planned] | None = None,
) -> Delivered:
    """Write a filed form's undelivered documents to the outbox, then mark them delivered and the
    form done. Safe to run again after a crash at any point: a document already written is
    recognised by its hash and not written twice.

    The form's row is locked for the whole delivery (its first statement is a write, which on
    SQLite takes the write lock), so two runs finishing the same form take turns and the second
    finds it done, with nothing left to write: no letter is ever written twice as "name (2)". The
    lock is held only while a few files are written. An ``OSError`` from the outbox (full disk,
    read-only, permissions) rolls the transaction back and leaves the form to be finished later;
    the caller turns it into ``DeliveryPendingError``.

    ``planned``: the form's documents as ``plan_delivery`` filed them, given by the run that
    filed the form, which delivers it straight after: none of them can have been delivered yet
    while the form is not done (only its own delivery writes a form's documents, and it marks the
    form done in the same transaction), so they are not read back from the archive. Without it
    (a delivery finished after a crash or a full disk), they are read.

    The register is the one document whose cost grows with the school (it is the whole register,
    written again). With ``register_now=False`` it is left for the caller to write once for a
    batch of forms (``write_register``): the form's register version stays undelivered in the
    archive, which is what tells a later run, even after a crash, that the outbox's register is
    behind the archive.

    The office's list of letters to send is not written here: a list the office has open in
    Excel (which Windows will not let anyone replace) must not hold up the letters themselves.
    The letters written are returned for the caller to list (``write_letters_lists``); one left
    off by a crash is put back by ``recent_letters`` at the next start.

    The delivery's commit does not wait for the disk (``durable=False``): each document is
    synced before it is put in place, and a delivery a power cut undoes is done again from the
    filed form, finding its documents already there by their hash."""
    with archive.session(durable=False) as session:
        locked = session.execute(_LOCK_FORM, {"form_id": form_id}).first()
        if locked is None:
            done = session.execute(_FORM_DOCUMENTS, {"form_id": form_id}).all()
            return Delivered(_outbox_paths(outbox, [d.path for d in done]), now=False)
        upn = locked[0]
        documents: Sequence[Any] = (
            planned if planned is not None else session.execute(_FORM_DOCUMENTS, {"form_id": form_id}).all()
        )
        pending = [d for d in documents if d.delivered_at is None]
        registers = [d.id for d in pending if d.template == "register"]
        if registers and register_now:
            # The register is the one living file in the outbox: rewritten from the archive as
            # it is now (never from a stored copy, so finishing an old form's delivery cannot
            # bring back an older register). This marks every register version delivered.
            write_register(session, outbox, today or date.today())
        to_write = _with_contents(session, [d for d in pending if d.template != "register"])
        delivered = write_documents(outbox, to_write, checkpoint)
        mark_delivered(session, pending, delivered)
        written = len(delivered) + (len(registers) if register_now else 0)
        log(session, "delivered", f"{written} documents to the outbox", upn=upn, form_id=form_id)
        checkpoint("marked")
        return Delivered(
            _outbox_paths(outbox, [delivered.get(d.id, d.path) for d in documents]),
            now=True,
            register_pending=bool(registers) and not register_now,
            letters=[(delivered[d.id], d.created_at) for d in pending if d.audience == Audience.PARENTS.value and d.id in delivered],
        )


def _with_contents(session: Session, pending: Sequence[Any]) -> Sequence[Planned]:
    """The documents to write with their bytes: as planned (``Planned`` has them), else read
    from the archive."""
    missing = [d.id for d in pending if not isinstance(d, Planned)]
    if not missing:
        return pending
    stored = {row.id: row.content for row in session.execute(_CONTENTS, {"ids": missing})}
    return [
        d
        if isinstance(d, Planned)
        else Planned(d.id, d.path, d.content_hash, d.template, d.audience, d.created_at, stored[d.id], d.delivered_at)
        for d in pending
    ]


def write_register(session: Session, outbox: Path, today: date) -> None:
    """The outbox's SEND register (CSV and XLSX) written from the archive as it is now, under the
    register's lock, every register version filed so far marked delivered (``register.write_register``)."""
    register.write_register(session, outbox, today, write=write_atomic)


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


#: A letter dated ``day`` was filed within this long of the others dated that day.
_FILED_WITHIN = timedelta(days=2)


def letters_to_send(
    session: Session,
    day: str,
    *,
    filed_around: tuple[datetime, datetime] | None = None,
    only: Collection[str] | None = None,
) -> bytes:
    """Every parent letter delivered for ``day`` (the date its file name starts with), one row
    each with the household it is addressed to, so the office can mail-merge envelopes or
    e-mails in one go. Built from the archive each time, so finishing a delivery after a crash
    writes the same list.

    ``filed_around``: when the letters being delivered were filed. Letters dated one day were
    filed within a day or so of each other (the date is the day they were filed), so the search
    is kept to documents filed within ``_FILED_WITHIN`` of those, through the index on
    ``created_at``: otherwise every form's delivery read every document the school ever sent
    (7 ms a form at 50,000 pupils, growing with the archive)."""
    query = select(
        t.Document.title,
        t.Document.path,
        t.Document.form_id,
        t.Document.pupil_id,
        t.Pupil.upn,
        t.Pupil.legal_forename,
        t.Pupil.preferred_name,
        t.Pupil.legal_surname,
    )
    if filed_around is not None:
        query = query.where(
            t.Document.created_at >= filed_around[0] - _FILED_WITHIN,
            t.Document.created_at <= filed_around[1] + _FILED_WITHIN,
        )
    if only is not None:  # just these letters (outbox paths), to add to a list already written
        query = query.where(t.Document.path.in_(list(only)))
    rows = session.execute(
        query.join(t.Pupil, t.Pupil.id == t.Document.pupil_id)
        .where(
            t.Document.audience == Audience.PARENTS.value,
            t.Document.delivered_at.is_not(None),
            t.Document.path.like(f"{Audience.PARENTS.value}/%/{day} %"),
        )
        .order_by(t.Document.id)
    ).all()
    households: dict[tuple[str, int], list[dict[str, str]]] = {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(LETTERS_TO_SEND_HEADER)
    for row in rows:
        # A form's letters go to the households of that form; a letter issued by date (the
        # annual report) to those of the pupil's latest form.
        key = ("form", row.form_id) if row.form_id is not None else ("pupil", row.pupil_id)
        if key not in households:
            form = (
                session.get(t.ReceivedForm, row.form_id)
                if row.form_id is not None
                else session.scalars(
                    select(t.ReceivedForm)
                    .where(t.ReceivedForm.pupil_id == row.pupil_id)
                    .order_by(t.ReceivedForm.id.desc())
                    .limit(1)
                ).first()
            )
            pupil = getattr(load_form(form), "pupil", None) if form is not None else None
            # The letter went to the roll's contacts when the roll names the pupil (a form filled
            # without the parents' details, as the roll has them): the list must say the same.
            if pupil is not None:
                pupil = rolled_pupil(session.get(t.Pupil, row.pupil_id), pupil)
            households[key] = recipients(pupil) if pupil is not None else []
        found = households[key]
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


def write_letters_lists(session: Session, outbox: Path, letters: Iterable[tuple[str, datetime]]) -> None:
    """Bring the office's list of letters to send up to date for each day the parent letters just
    delivered are dated. ``letters``: (outbox-relative path, when it was filed) of each. Used
    after a form's delivery (``Pipeline``: once a batch), by the daily round (the annual report
    goes to every family at once) and at start (``recent_letters``).

    The day's first delivery (or one after the list was deleted) builds the list whole from the
    archive; later ones add their own letters' rows to it, skipping any already listed (a
    delivery finished again after a crash), and any of the day's delivered letters the list
    lacks (``_delivered_paths``). Rebuilding it whole each time made every form of a 2,000-form
    batch slower than the one before."""
    days: dict[str, list[tuple[str, datetime]]] = {}
    for path, filed in letters:
        if m := _DAY.search("/" + path):
            # Times from the archive and from a delivery just made come together here.
            days.setdefault(m.group(1), []).append((path, as_utc(filed)))
    if days:
        # The list is read, added to and replaced: two watchers doing that at once would each
        # drop the other's rows. The lock of the outbox's living files (the register's) makes
        # them take turns.
        register.lock_register(session)
    for day, these in sorted(days.items()):
        target = outbox / letters_to_send_path(day)
        around = (min(f for _, f in these), max(f for _, f in these))
        try:
            listed = target.read_bytes()
        except FileNotFoundError:
            listed = b""
        if not listed.startswith("\ufeff".encode() + ",".join(LETTERS_TO_SEND_HEADER).encode()):
            write_atomic(target, letters_to_send(session, day, filed_around=around), overwrite=True, stage=staging(outbox))
            continue
        already = {row[-1] for row in csv.reader(io.StringIO(listed.decode("utf-8-sig"))) if row}
        new = [p for p, _ in these if p not in already]
        missing = _delivered_paths(session, day, around) - already - set(new) if new else set()
        if not new:
            continue
        fresh = letters_to_send(session, day, filed_around=around, only=[*new, *sorted(missing)])
        rows = fresh.decode("utf-8-sig").splitlines(keepends=True)[1:]  # without its header
        if rows:
            text = listed.decode("utf-8-sig")
            text += "" if text.endswith(("\n", "\r")) else "\r\n"
            write_atomic(target, ("\ufeff" + text + "".join(rows)).encode("utf-8"), overwrite=True, stage=staging(outbox))


def _delivered_paths(session: Session, day: str, around: tuple[datetime, datetime]) -> set[str]:
    """The outbox paths of the parent letters dated ``day`` that are delivered, filed around
    ``around``: the letters the day's list should hold. A letter delivered while the list could
    not be written (the office had it open in Excel, the daily round's write failed) is put back
    by the day's next delivery rather than left off until someone deletes the list. Paths only,
    through the index on ``created_at``: no households are worked out for letters already listed."""
    return set(
        session.scalars(
            select(t.Document.path).where(
                t.Document.created_at >= around[0] - _FILED_WITHIN,
                t.Document.created_at <= around[1] + _FILED_WITHIN,
                t.Document.audience == Audience.PARENTS.value,
                t.Document.delivered_at.is_not(None),
                t.Document.path.like(f"{Audience.PARENTS.value}/%/{day} %"),
            )
        )
    )


def recent_letters(session: Session, *, within: timedelta = _FILED_WITHIN) -> list[tuple[str, datetime]]:
    """The parent letters delivered in the last ``within`` (outbox path, when filed): what the
    lists of those days must hold. Given to ``write_letters_lists`` at start, it puts back any
    letter a crash left off its list (killed after the delivery, before the list was written);
    a list that already holds them all is read and left alone."""
    rows = session.execute(
        select(t.Document.path, t.Document.created_at).where(
            t.Document.created_at >= now() - within,
            t.Document.audience == Audience.PARENTS.value,
            t.Document.delivered_at.is_not(None),
        )
    ).all()
    return [(row.path, row.created_at) for row in rows]


class Pending(Protocol):
    """A filed document not yet in the outbox: what ``write_documents`` needs of its row."""

    @property
    def id(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_hash(self) -> str: ...


def write_documents(outbox: Path, pending: Iterable[Pending], checkpoint: Callable[[str], None]) -> dict[int, str]:
    """Write filed documents to their planned places; returns each one's path as written.

    A document already there from a run that crashed before marking it delivered is recognised
    by its hash and not written twice; a file of that name that is someone else's is never
    replaced (``write_atomic`` picks the next free name). An ``OSError`` (full disk, read-only
    outbox) goes to the caller, whose transaction is rolled back, leaving the documents to be
    finished later. Shared by a form's delivery and the daily round's."""
    delivered: dict[int, str] = {}
    for doc in pending:
        target = outbox / doc.path
        if not (target.exists() and sha256(target.read_bytes()) == doc.content_hash):
            target = write_atomic(target, doc.content, stage=staging(outbox))
        delivered[doc.id] = target.relative_to(outbox).as_posix()
        checkpoint("wrote")
    return delivered


def mark_delivered(session: Session, pending: Iterable[Pending], delivered: dict[int, str]) -> None:
    """Mark written documents delivered. One statement for all; only a document written under
    another name than planned (a file of that name appeared meanwhile) needs its own."""
    if delivered:
        session.execute(_DELIVERED, {"ids": list(delivered), "at": now()})
    for doc in pending:
        if delivered.get(doc.id, doc.path) != doc.path:
            session.execute(update(_DOCUMENTS).where(_DOCUMENTS.c.id == doc.id).values(path=delivered[doc.id]))


def _outbox_paths(outbox: Path, paths: Iterable[str]) -> list[Path]:
    """A form's documents in the outbox, in the order they were filed."""
    found = []
    for path in paths:
        found.append(outbox / path)
        if path == register.REGISTER_PATH:  # the register's living copy is written in both formats
            found.append(outbox / register.REGISTER_XLSX_PATH)
    return found
