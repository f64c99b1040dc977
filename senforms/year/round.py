"""The daily round: documents owed on a date rather than for a form (a review record two weeks
before the review, the SENCO's weekly digest, annual reports, a term's provision map).

Each *producer* in ``PRODUCERS`` is a plain function ``(archive, settings, today) -> Iterable[Due]``
that says what is owed today. For each ``Due`` whose key is not yet in the archive's ``issued``
table, the round files its documents and the ``issued`` row in one short transaction, then
writes the files to the outbox (``outbox.write_documents``, as a form's delivery does).

The order of writes is what makes it safe, as for forms: a crash after filing and before writing
leaves documents with ``delivered_at`` empty, which the next round writes first. The ``issued``
key is unique, so a second round (run again, a restarted watcher, two watchers at once) that
tries to file the same thing is refused by the archive and simply moves on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.archive.register import REGISTER_PATH
from senforms.archive.store import Archive, log, now
from senforms.config import Settings
from senforms.documents import Due, PdfLetters
from senforms.errors import ArchiveError, ArchiveUnavailableError
from senforms.outbox import mark_delivered, plan_documents, write_documents, write_letters_lists, write_register
from senforms.reports.provision_map import provision_maps
from senforms.values import school_year_start
from senforms.year.annual import annual_reports
from senforms.year.digest import weekly_digest
from senforms.year.reviews import reviews_due

logger = logging.getLogger("senforms")

Producer = Callable[[Archive, Settings, date], Iterable[Due]]


def annual_reports_as_set(archive: Archive, settings: Settings, today: date) -> Iterator[Due]:
    """The annual reports (6.64) as the school's letters are made: PDFs through one LibreOffice
    when senforms.toml asks for PDF letters, Word documents otherwise."""
    pdf = PdfLetters(settings) if settings.document_format == "pdf" else None
    try:
        yield from annual_reports(archive, settings, today, pdf=pdf)
    finally:
        if pdf is not None:
            pdf.close()


#: What the round issues, in order. A plain sequence: each producer is added here by name.
#: Review records (6.52) and the digest first: they are owed every week; the annual reports
#: (6.64) and the term's provision map (6.76) come on their days.
PRODUCERS: list[Producer] = [reviews_due, weekly_digest, annual_reports_as_set, provision_maps]


@dataclass
class RoundReport:
    issued: list[str] = field(default_factory=list)  # keys filed by this round
    written: list[Path] = field(default_factory=list)  # files this round wrote to the outbox
    #: Why documents are filed but not yet in the outbox (full disk, read-only outbox); the next
    #: round writes them.
    waiting: str | None = None
    failed: list[str] = field(default_factory=list)  # producers that failed, and why
    #: Parent letters written by this round (outbox path, when filed), for the office's list.
    letters: list[tuple[str, datetime]] = field(default_factory=list)


def run_round(
    settings: Settings,
    *,
    archive: Archive | None = None,
    today: date | None = None,
    producers: Sequence[Producer] | None = None,
    checkpoint: Callable[[str], None] = lambda step: None,
) -> RoundReport:
    """Run the round once for ``today`` (default ``settings.today()``). Raises
    ``ArchiveUnavailableError`` when the archive cannot be reached; an outbox that cannot be
    written to is reported in ``waiting``, never raised: what is filed is written next time.
    ``checkpoint`` is called after each step ("filed", "wrote"), so tests can cut it short."""
    own = archive is None
    archive = archive or Archive(settings.database_url)
    today = today or settings.today()
    report = RoundReport()
    try:
        _deliver(archive, settings.outbox, report, checkpoint)
        for producer in PRODUCERS if producers is None else producers:
            name = getattr(producer, "__name__", repr(producer))
            try:
                for due in producer(archive, settings, today):
                    if _file(archive, settings, due, today):
                        report.issued.append(due.key)
                        logger.info("Issued %s%s", due.key, f" for UPN {due.upn}" if due.upn else "")
                        checkpoint("filed")
                        _deliver(archive, settings.outbox, report, checkpoint)
            except ArchiveUnavailableError:
                raise
            except Exception as exc:
                # One producer's failure (a damaged template, a bad row) must not hold up the others.
                logger.exception("The daily round's %s failed; the others carry on.", name)
                report.failed.append(f"{name}: {exc}")
        _write_letters_lists(archive, settings.outbox, report)
        _register_of_this_school_year(archive, settings.outbox, today, report)
    finally:
        if own:
            archive.close()
    return report


def _write_letters_lists(archive: Archive, outbox: Path, report: RoundReport) -> None:
    letters = [(path, filed) for path, filed in report.letters if path.startswith("parents/")]
    if letters:
        _written(archive, report, lambda session: write_letters_lists(session, outbox, letters))


def _register_of_this_school_year(archive: Archive, outbox: Path, today: date, report: RoundReport) -> None:
    """The SEND register's "Meetings this school year" counts from 1 September, as of the day
    the register is written. One last written in an earlier school year is written again by the
    round, so that from the first day of the new year it does not show last year's meetings as
    this year's until the next form comes. Written only then: every form and every start of the
    watcher write it anyway."""
    try:
        written = date.fromtimestamp((outbox / REGISTER_PATH).stat().st_mtime)
    except OSError:
        return  # none yet (the watcher writes it whole when it starts), or the share is away
    if written >= school_year_start(today):
        return
    if _written(archive, report, lambda session: write_register(session, outbox, today)):
        report.written.append(outbox / REGISTER_PATH)
        logger.info("The SEND register written again for the school year starting %s.", school_year_start(today))


def _written(archive: Archive, report: RoundReport, write: Callable[[Session], object]) -> bool:
    """``write`` done in one transaction. An outbox that cannot be written to is noted in
    ``report.waiting`` and returns False: the next round tries again."""
    try:
        with archive.session() as session:
            write(session)
    except OSError as exc:
        report.waiting = report.waiting or exc.strerror or str(exc)
        return False
    return True


def _file(archive: Archive, settings: Settings, due: Due, today: date) -> bool:
    """File the Due's documents and its ``issued`` row together; False when it was issued
    already (by an earlier round, or by another round a moment ago) or its pupil is unknown."""
    try:
        with archive.session() as session:
            if session.scalar(select(t.Issued.id).where(t.Issued.key == due.key)) is not None:
                return False
            pupil = None
            if due.upn is not None:
                pupil = session.scalar(select(t.Pupil).where(t.Pupil.upn == due.upn))
                if pupil is None:
                    logger.warning("Not issued %s: no pupil with UPN %s in the archive.", due.key, due.upn)
                    return False
            session.add(
                t.Issued(
                    key=due.key,
                    pupil_id=pupil.id if pupil is not None else None,
                    issued_at=now(),
                    for_date=due.for_date,
                )
            )
            # The unique key is the guard: a second round filing the same thing fails here.
            session.flush()
            rows = plan_documents(session, settings.outbox, pupil, due.documents, form_id=None, today=today)
            log(session, "issued", f"{due.key}: {len(rows)} documents", upn=due.upn)
    except ArchiveError as exc:
        if isinstance(exc.__cause__, IntegrityError):
            logger.info("Not issued %s: another round issued it a moment ago.", due.key)
            return False
        raise
    return True


def _deliver(archive: Archive, outbox: Path, report: RoundReport, checkpoint: Callable[[str], None]) -> None:
    """Write every document issued by date and not yet in the outbox, then mark them delivered.

    The first statement is a write on those rows, which takes their locks (on SQLite, the
    database's write lock), so two rounds take turns and the second finds nothing left to write.
    An ``OSError`` rolls the transaction back and leaves them for the next round."""
    pending_rows = (t.Document.form_id.is_(None), t.Document.delivered_at.is_(None))
    with archive.reading() as session:
        # Most rounds have nothing to finish: a read, rather than a write that takes a lock.
        if session.scalar(select(t.Document.id).where(*pending_rows).limit(1)) is None:
            return
    try:
        with archive.session() as session:
            session.execute(update(t.Document).where(*pending_rows).values(delivered_at=t.Document.delivered_at))
            pending = session.execute(
                select(
                    t.Document.id,
                    t.Document.path,
                    t.Document.content,
                    t.Document.content_hash,
                    t.Document.created_at,
                    t.Pupil.upn,
                )
                .outerjoin(t.Pupil, t.Pupil.id == t.Document.pupil_id)
                .where(*pending_rows)
                .order_by(t.Document.id)
            ).all()
            if not pending:
                return
            delivered = write_documents(outbox, pending, checkpoint)
            mark_delivered(session, pending, delivered)
            # For the office's list of the day's letters to parents, written once at the end of
            # the round (the annual report goes to every family at once: rewriting the list after
            # each of 50,000 reports would make the day quadratic).
            report.letters += [(delivered[row.id], row.created_at) for row in pending if row.id in delivered]
            for upn in sorted({row.upn for row in pending if row.upn}):
                log(session, "delivered", "documents issued by date, to the outbox", upn=upn)
            report.written += [outbox / path for path in delivered.values()]
    except OSError as exc:
        report.waiting = exc.strerror or str(exc)
        logger.warning("Documents of the daily round are filed and wait for the outbox: %s", report.waiting)
