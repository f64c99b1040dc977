"""The pipeline: one form in; the pupil's record updated; the next documents out.

``Pipeline.process_file`` reads like the recipe it is: read, validate, check identity, file in
the archive, decide what comes next, render, deliver. The order of writes is what makes a crash
harmless: everything about a form (its record and its rendered documents) is committed to the
archive in one transaction, and only then are the documents copied to the outbox, each marked
delivered once written. Processing the same file again after a crash at any point finds the
form by its content hash and finishes the delivery, so there is one set of records and one set
of documents, whatever happened.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from senforms import forms, rules
from senforms.archive import tables as t
from senforms.archive.store import (
    Archive,
    History,
    current_form,
    current_forms,
    find_pupil,
    history,
    log,
    now,
    save_pupil,
)
from senforms.config import Settings, write_default_settings
from senforms.context import letter_context
from senforms.deliver import clear_staging, pupil_folder, safe_name, set_aside, staging, write_atomic
from senforms.errors import ExitCode, OfficeError, SenformsError
from senforms.kinds import KINDS, EarlyDiscussion, FormModel, ReviewRecord, SupportPlan
from senforms.layout import fold_label
from senforms.office import MISSING_MESSAGE, ConversionFailed, Office, office_available
from senforms.read import RawForm
from senforms.validate import validate

logger = logging.getLogger("senforms")

Form = EarlyDiscussion | SupportPlan | ReviewRecord
REGISTER = "senco/SEND register.csv"


@dataclass
class Processed:
    kind: str
    upn: str
    status: str  # "processed", "already processed" or "corrected"
    documents: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Rendered:
    audience: str
    title: str
    template: str
    content: bytes
    suffix: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Pipeline:
    def __init__(self, settings: Settings, *, today: Callable[[], date] = date.today) -> None:
        self.settings = settings
        self.archive = Archive(settings.database_url)
        clear_staging(settings.outbox)
        self.today = today
        # Plain sentences for whoever starts senforms (the watcher and `process` print them).
        self.notices: list[str] = []
        self.pdf_forms = settings.document_format == "pdf"
        self.pdf_letters = self.pdf_forms and office_available()
        if self.pdf_forms and not self.pdf_letters:
            self.notices.append(MISSING_MESSAGE)
        self._office: Office | None = None
        self._warnings: list[str] = []
        # Called with the name of each step as it completes; tests use it to interrupt
        # processing at every point and prove that nothing is lost or doubled.
        self.checkpoint: Callable[[str], None] = lambda step: None

    def close(self) -> None:
        if self._office is not None:
            self._office.close()
        self.archive.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the recipe ------------------------------------------------------------------------

    def process_file(self, path: Path, *, name: str | None = None) -> Processed:
        """Process one form file. Never moves or deletes ``path``; raises ``SenformsError``."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SenformsError(f"{path.name} cannot be opened: {exc.strerror or exc}") from exc
        return self.process_bytes(data, name=name or path.name)

    def process_bytes(self, data: bytes, *, name: str) -> Processed:
        """Read, validate, check identity, file, decide, render, deliver: the whole recipe."""
        digest = sha256(data)
        known = self._known(digest)
        if known is not None:
            return known
        raw = forms.read(data, name=name, settings=self.settings)
        model, warnings = validate(raw)
        self._warnings = warnings
        self.checkpoint("read")
        try:
            form_id, corrected = self._file(raw, model, data, digest, name)
        except IntegrityError:
            # Another watcher filed the same bytes a moment ago.
            return self._known(digest) or Processed(raw.kind.slug, model.pupil.upn, "already processed")  # type: ignore[attr-defined]
        self.checkpoint("committed")
        written = self._deliver(form_id)
        status = "corrected" if corrected else "processed"
        logger.info("%s %s for UPN %s: %d documents", status, raw.kind.slug, model.pupil.upn, len(written))  # type: ignore[attr-defined]
        return Processed(raw.kind.slug, model.pupil.upn, status, written, self._warnings)  # type: ignore[attr-defined]

    def _known(self, digest: str) -> Processed | None:
        """A form already received: finish its delivery if a crash interrupted it."""
        with self.archive.session() as session:
            row = session.scalar(select(t.ReceivedForm).where(t.ReceivedForm.content_hash == digest))
            if row is None:
                return None
            form_id, kind, state = row.id, row.kind, row.state
            upn = session.get(t.Pupil, row.pupil_id).upn  # type: ignore[union-attr]
        if state == "done":
            return Processed(kind, upn, "already processed")
        return Processed(kind, upn, "processed", self._deliver(form_id))

    # --- archive -------------------------------------------------------------------------------

    def _file(self, raw: RawForm, model: BaseModel, data: bytes, digest: str, name: str) -> tuple[int, bool]:
        kind = raw.kind
        form: Form = model  # type: ignore[assignment]
        meeting: date = getattr(form, kind.meeting_date)
        with self.archive.session() as session:
            pupil = save_pupil(session, find_pupil(session, form.pupil, kind.slug), form.pupil)
            # The same pupil, form and meeting date: this form corrects that one.
            previous = current_form(session, pupil.id, kind.slug, meeting)
            earlier = current_forms(session, pupil.id)
            past = history(earlier, excluding=previous.id if previous else None)
            row = t.ReceivedForm(
                content_hash=digest,
                pupil_id=pupil.id,
                kind=kind.slug,
                version=raw.version,
                meeting_date=meeting,
                original_name=name[:400],
                received_at=now(),
                original=data,
                data=model.model_dump_json(),
                read_by=raw.method,
                state="delivering",
            )
            session.add(row)
            session.flush()
            if previous is not None:
                previous.superseded_by_id = row.id
                log(
                    session,
                    "superseded",
                    f"{kind.slug} of {meeting} corrected by form {row.id}",
                    upn=pupil.upn,
                    form_id=previous.id,
                )
            log(
                session,
                "received",
                # The file name is kept with the form, not here: office staff often name files after
                # the pupil, and the log names pupils by UPN only.
                f"{kind.slug} of {meeting} (read by {raw.method})",
                upn=pupil.upn,
                form_id=row.id,
            )
            now_current = [(r, m) for r, m in earlier if r is not previous] + [(row, form)]
            register_changed = rebuild_record(session, pupil, now_current)
            decided = rules.what_next(form, past)
            if decided.flags:
                described = [o.description for o in getattr(form, "outcomes", [])]
                numbers = ", ".join(str(described.index(f.description) + 1) for f in decided.flags)
                log(
                    session,
                    "flagged",
                    f"outcome {numbers} not achieved at two reviews in a row",
                    upn=pupil.upn,
                    form_id=row.id,
                )
            rendered = self._render(form, decided, past, corrected=previous is not None)
            if register_changed:
                rendered.append(_Rendered(rules.SENCO, "SEND register", "register", register_csv(session), ".csv"))
            self._plan_delivery(session, row, pupil, rendered, corrected=previous is not None)
            self.checkpoint("filed")
            return row.id, previous is not None

    # --- render ----------------------------------------------------------------------------

    def _render(self, form: Form, decided: rules.Next, past: History, *, corrected: bool) -> list[_Rendered]:
        from senforms.render import letter_template, render_docx

        out = []
        today = self.today()
        for doc in decided.documents:
            if isinstance(doc, rules.Prefilled):
                content = forms.blank_form(self.settings, doc.kind, values=doc.values, pdf=self.pdf_forms)
                suffix = ".pdf" if self.pdf_forms else ".docx"
                out.append(_Rendered(doc.audience, doc.title, f"form:{doc.kind}", content, suffix))
                continue
            context = letter_context(
                self.settings,
                form,
                history=past.with_form(form),
                flags=decided.flags,
                corrected=corrected,
                today=today,
                with_cycles=doc.template == "evidence-summary",
            )
            content = render_docx(letter_template(self.settings, doc.template), context)
            out.append(
                _Rendered(
                    doc.audience, doc.title + (" (corrected)" if corrected else ""), doc.template, content, ".docx"
                )
            )
        if self.pdf_letters:
            self._to_pdf([r for r in out if r.suffix == ".docx"])
        return out

    def _to_pdf(self, letters: list[_Rendered]) -> None:
        """Convert a form's letters to PDF in one batch through one running LibreOffice. If
        LibreOffice fails, the letters stay Word documents: a parent still gets their letter."""
        if not letters:
            return
        with tempfile.TemporaryDirectory(prefix="senforms-pdf-") as tmp:
            sources = []
            for i, letter in enumerate(letters):
                sources.append(Path(tmp) / f"{i}.docx")
                sources[-1].write_bytes(letter.content)
            try:
                if self._office is None:
                    self._office = Office(timeout=self.settings.seconds_per_file)
                    self._office.start()
                pdfs = self._office.convert(sources, Path(tmp) / "pdf")
            except ConversionFailed as exc:
                pdfs = [Path(tmp) / "pdf" / f"{s.stem}.pdf" for s in sources]
                self._warnings.append(
                    f"{len(exc.failed)} letters could not be made into PDFs and are Word documents instead"
                )
            except OfficeError as exc:
                self._warnings.append(f"Letters are Word documents, not PDFs: {exc.message}")
                return
            for letter, pdf in zip(letters, pdfs, strict=True):
                if pdf.exists():
                    letter.content, letter.suffix = pdf.read_bytes(), ".pdf"

    # --- deliver ---------------------------------------------------------------------------

    def _plan_delivery(
        self, session: Session, form: t.ReceivedForm, pupil: t.Pupil, rendered: Iterable[_Rendered], *, corrected: bool
    ) -> None:
        """Choose each document's place in the outbox now, inside the archive transaction, so a
        crash during delivery is finished by writing to exactly the same names."""
        today = self.today().isoformat()
        folder = pupil_folder(pupil.legal_surname, pupil.legal_forename, pupil.upn)
        taken = set(session.scalars(select(t.Document.path).where(t.Document.pupil_id == pupil.id)).all())
        for doc in rendered:
            if doc.template == "register":
                path = REGISTER
            else:
                base = f"{doc.audience}/{folder}/{today} {safe_name(doc.title)}"
                path, n = f"{base}{doc.suffix}", 1
                while path in taken or (self.settings.outbox / path).exists():
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

    def _deliver(self, form_id: int) -> list[Path]:
        written: list[Path] = []
        with self.archive.session() as session:
            pending = session.scalars(
                select(t.Document)
                .where(t.Document.form_id == form_id, t.Document.delivered_at.is_(None))
                .order_by(t.Document.id)
            ).all()
            jobs = [(d.id, d.path, d.content, d.content_hash) for d in pending if d.template != "register"]
            registers = [d.id for d in pending if d.template == "register"]
            if registers:
                # The register is the one living file in the outbox: rewritten from the archive as
                # it is now (never from a stored copy, so finishing an old form's delivery cannot
                # bring back an older register). Every version is kept in the archive.
                write_atomic(
                    self.settings.outbox / REGISTER,
                    register_csv(session),
                    overwrite=True,
                    stage=staging(self.settings.outbox),
                )
                written.append(self.settings.outbox / REGISTER)
        delivered: dict[int, str] = {}
        for doc_id, relative, content, digest in jobs:
            target = self.settings.outbox / relative
            # Already there from a run that crashed before marking it: the hash proves it.
            if not (target.exists() and sha256(target.read_bytes()) == digest):
                target = write_atomic(target, content, stage=staging(self.settings.outbox))
            delivered[doc_id] = target.relative_to(self.settings.outbox).as_posix()
            written.append(target)
            self.checkpoint("wrote")
        delivered |= dict.fromkeys(registers, REGISTER)
        with self.archive.session() as session:
            for doc_id, relative in delivered.items():
                doc = session.get(t.Document, doc_id)
                assert doc is not None
                doc.delivered_at, doc.path = now(), relative
            form = session.get(t.ReceivedForm, form_id)
            assert form is not None
            form.state = "done"
            upn = session.get(t.Pupil, form.pupil_id).upn  # type: ignore[union-attr]
            log(session, "delivered", f"{len(delivered)} documents to the outbox", upn=upn, form_id=form_id)
            self.checkpoint("marked")
        return written


# --- the record: derived from the current forms ------------------------------------------------


def rebuild_record(session: Session, pupil: t.Pupil, forms: list[tuple[t.ReceivedForm, FormModel]]) -> bool:
    """Rebuild the pupil's SEN status, cycles, outcomes and provision from their current forms,
    oldest first. Deriving the record rather than patching it is what lets a corrected form
    simply replace the one it corrects. ``forms`` are the current forms with their models, as
    ``current_forms`` gives them. Returns whether the SEN register changed."""
    before = _status_key(session, pupil.id)
    for row in session.scalars(select(t.SenStatus).where(t.SenStatus.pupil_id == pupil.id)):
        session.delete(row)
    for row in session.scalars(select(t.Cycle).where(t.Cycle.pupil_id == pupil.id)):
        session.delete(row)
    session.flush()
    status: t.SenStatus | None = None
    cycles: dict[int, t.Cycle] = {}
    for row, form in sorted(forms, key=lambda f: (f[0].meeting_date, f[0].id)):
        current = (
            None
            if status is None
            else rules.Status(status.provision, status.primary_need, status.secondary_need, status.start_date)
        )
        change = rules.register_status(form, current)  # type: ignore[arg-type]
        if change is not None:
            if status is not None:
                status.end_date = change.since
            status = t.SenStatus(
                pupil_id=pupil.id,
                form_id=row.id,
                provision=change.provision,
                primary_need=change.primary_need,
                secondary_need=change.secondary_need,
                start_date=change.since,
            )
            session.add(status)
        if isinstance(form, SupportPlan):
            cycle = cycles.setdefault(form.cycle, t.Cycle(pupil_id=pupil.id, number=form.cycle))
            cycle.plan_form_id, cycle.plan_date, cycle.review_due = row.id, form.plan_date, form.review_date
            cycle.outcomes = [
                t.Outcome(position=i, description=o.description, success_criteria=o.success_criteria)
                for i, o in enumerate(form.outcomes)
            ]
            cycle.provision = [
                t.Provision(
                    position=i,
                    what=p.what,
                    who=p.who,
                    group_size=p.group_size,
                    frequency=p.frequency,
                    start_date=p.start_date,
                    weekly_cost=p.weekly_cost,
                )
                for i, p in enumerate(form.provision)
            ]
        elif isinstance(form, ReviewRecord):
            cycle = cycles.setdefault(form.cycle, t.Cycle(pupil_id=pupil.id, number=form.cycle))
            cycle.review_form_id, cycle.reviewed_on, cycle.decision = row.id, form.review_date, form.decision.value
            _rate(cycle, form, row.id)
        if isinstance(form, SupportPlan | ReviewRecord):
            session.add(cycle)
    session.flush()
    return _status_key(session, pupil.id) != before


def _rate(cycle: t.Cycle, review: ReviewRecord, form_id: int) -> None:
    outcomes = {fold_label(o.description): o for o in cycle.outcomes}
    for item in review.outcomes:
        outcome = outcomes.get(fold_label(item.description))
        if outcome is None:
            # Rated at review but not on the plan (the plan was not sent to senforms).
            outcome = t.Outcome(position=len(cycle.outcomes), description=item.description)
            cycle.outcomes.append(outcome)
            outcomes[fold_label(item.description)] = outcome
        outcome.ratings.append(
            t.OutcomeRating(
                review_form_id=form_id, reviewed_on=review.review_date, rating=item.rating.value, evidence=item.evidence
            )
        )
    provision = {fold_label(p.what): p for p in cycle.provision}
    for item in review.provision:
        if (row := provision.get(fold_label(item.what))) is not None:
            row.impact = item.impact


def _status_key(session: Session, pupil_id: int) -> tuple[str, str | None, str | None] | None:
    row = session.scalar(
        select(t.SenStatus)
        .where(t.SenStatus.pupil_id == pupil_id, t.SenStatus.end_date.is_(None))
        .order_by(t.SenStatus.id.desc())
    )
    return None if row is None else (row.provision, row.primary_need, row.secondary_need)


def register_csv(session: Session) -> bytes:
    """The SEND register: every pupil now on SEN support, with census codes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["UPN", "Surname", "First name", "Year", "Class", "SEN provision", "Primary need", "Secondary need", "Since"]
    )
    rows = session.execute(
        select(t.Pupil, t.SenStatus)
        .join(t.SenStatus, t.SenStatus.pupil_id == t.Pupil.id)
        .where(t.SenStatus.end_date.is_(None), t.SenStatus.provision == "K")
        .order_by(t.Pupil.legal_surname, t.Pupil.legal_forename)
    ).all()
    for pupil, status in rows:
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
    # Excel opens a UTF-8 CSV correctly only with a byte-order mark.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- many files, for `senforms process` ----------------------------------------------------------


@dataclass
class Report:
    processed: list[tuple[Path, Processed]] = field(default_factory=list)
    set_aside: list[tuple[Path, Path, SenformsError]] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.ok if not self.set_aside else ExitCode.some_files_failed


def process_files(paths: Iterable[Path], settings: Settings, *, notify: Callable[[str], None] = logger.info) -> Report:
    """Process each file; a file with a problem is moved to ``problems/`` beside a note."""
    report = Report()
    with Pipeline(settings) as pipeline:
        for notice in pipeline.notices:
            notify(notice)
        for path in paths:
            try:
                report.processed.append((path, pipeline.process_file(path)))
            except SenformsError as exc:
                target = set_aside(path, settings.problems, exc.note())
                report.set_aside.append((path, target, exc))
    return report


def init_home(settings: Settings) -> list[str]:
    """Create the home folder's layout; return what was done, in plain words."""
    done = []
    for folder in (settings.inbox, settings.outbox, settings.problems, settings.templates / "forms"):
        if not folder.exists():
            folder.mkdir(parents=True)
            done.append(f"Created {folder}")
    config = settings.home / "senforms.toml"
    if not config.exists():
        write_default_settings(settings.home)
        done.append(f"Wrote {config}: open it and fill in the school's details")
    Archive(settings.database_url).close()
    blanks = settings.outbox / "blank forms"
    for slug, kind in KINDS.items():
        target = blanks / f"{kind.title}.docx"
        if not target.exists():
            write_atomic(target, forms.blank_form(settings, slug), overwrite=True)
            done.append(f"Wrote a blank {kind.title} to {target}")
    return done
