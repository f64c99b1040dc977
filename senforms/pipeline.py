"""The pipeline: one form in; the pupil's record updated; the next documents out.

``Pipeline.process_bytes`` runs the steps top to bottom, each a plain function:

1. **read**: the file's answers, validated into the model of its kind (``forms``);
2. **identify**: the archive's pupil for the form, their history, and the form it corrects;
3. **decide**: what comes next under the graduated approach (``rules``);
4. **render**: letters, pre-filled forms, PDFs (``documents``), outside any transaction, so
   another watcher filing another pupil never waits for a render;
5. **file**: one short transaction that locks the pupil, checks that nothing changed since
   step 2 (else steps 2-4 run again), files the form, rebuilds the record (``archive.record``)
   and plans each document's place in the outbox;
6. **deliver**: the documents written to the outbox (``outbox``), each marked delivered.

The order of writes is what makes a crash harmless: everything about a form is committed in
step 5, and only then written out. Processing the same file again after a crash at any point
finds the form by its content hash and finishes the delivery, so there is one set of records and
one set of documents, whatever happened.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from senforms import forms, layout, rules
from senforms.archive import tables as t
from senforms.archive.record import extend_record, rebuild_record
from senforms.archive.register import REGISTER_PATH, REGISTER_XLSX_PATH, register_change_csv
from senforms.archive.roll import rolled_pupil
from senforms.archive.store import (
    Archive,
    current_forms,
    find_pupil,
    find_pupil_locked,
    history,
    log,
    now,
    save_pupil,
)
from senforms.config import Settings
from senforms.context import correction_lines
from senforms.deliver import clear_staging, set_aside
from senforms.documents import PdfLetters, Rendered, render_documents
from senforms.errors import (
    ArchiveConnectionLostError,
    ArchiveError,
    ArchiveUnavailableError,
    CycleError,
    DeliveryPendingError,
    ExitCode,
    FormInvalidError,
    NoSuchPupilError,
    Problem,
    SenformsError,
)
from senforms.history import History
from senforms.kinds import (
    EarlyDiscussion,
    EndReason,
    FormKind,
    FormModel,
    Pupil,
    ReviewDecision,
    ReviewRecord,
    SupportPlan,
    kind_of,
)
from senforms.letters import Audience
from senforms.outbox import Delivered, Planned, deliver, plan_delivery, recent_letters, sha256, write_letters_lists
from senforms.read import RawForm
from senforms.reports import charts, evidence
from senforms.validate import validate

logger = logging.getLogger("senforms")

#: How often steps 2-5 are run again when another watcher changed the pupil's record meanwhile.
ATTEMPTS = 5


@dataclass
class Processed:
    kind: str
    upn: str
    status: str  # "processed", "already processed" or "corrected"
    documents: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def made(documents: Iterable[Path | str]) -> str:
    """What a form produced, as office staff count it: "5 documents, and the SEND register
    updated". The register (CSV and XLSX) is the outbox's one living file for the whole school,
    not a letter or form made for this one, so it is named rather than counted."""
    register = {REGISTER_PATH, REGISTER_XLSX_PATH}
    produced, register_updated = 0, False
    for doc in documents:
        path = Path(doc).as_posix()
        if any(path == r or path.endswith("/" + r) for r in register):
            register_updated = True
        else:
            produced += 1
    said = "no documents" if produced == 0 else f"{produced} document" + ("" if produced == 1 else "s")
    return said + (", and the SEND register updated" if register_updated else "")


# --- the steps ---------------------------------------------------------------------------------


def read(data: bytes, name: str, settings: Settings) -> tuple[RawForm, FormModel, list[str]]:
    """Step 1: what the form says, validated; raises a ``SenformsError`` naming every problem."""
    raw = forms.read(data, name=name, settings=settings)
    model, warnings = validate(raw)
    assert isinstance(model, FormModel)
    return raw, model, warnings


@dataclass(frozen=True)
class Identified:
    """Step 2's answer: who the form is about, and the pupil's record as it stood."""

    pupil_id: int | None  # None: a new pupil
    corrects: int | None  # the id of the form this one corrects (same pupil, kind and meeting date)
    current: tuple[int, ...]  # the ids of the pupil's current forms: what step 5 checks is unchanged
    past: History  # the pupil's current forms, less the one corrected
    previous: FormModel | None = None  # the answers of the form this one would correct
    previous_done: bool = True  # whether that form's documents were all delivered
    # The form's pupil with the school roll's current details (year group, class, preferred name,
    # contacts), for what is written from the form; None when the roll has never named the pupil.
    roll: Pupil | None = None
    # The latest meeting among the current forms: a form dated before it was typed up late.
    latest: date | None = None

    def as_written(self, form: FormModel) -> FormModel:
        """The form as the documents written from it see it: with the roll's details of the
        pupil, if the roll has them. The form itself is filed as it came."""
        return form if self.roll is None else form.model_copy(update={"pupil": self.roll})

    def same_answers(self, form: FormModel) -> bool:
        """The form says what the one on record says: a re-save (Word rewrites its document
        properties on every save) or a copy, not a correction. Compared as validated answers, so
        a UPN typed with spaces or a date typed another way is the same answer."""
        return self.previous is not None and self.previous.model_dump(mode="json") == form.model_dump(mode="json")


def identify(session: Session, form: FormModel, kind: FormKind) -> Identified:
    """Step 2. Never a guess: ``find_pupil`` raises ``IdentityConflictError`` on any doubt."""
    pupil = find_pupil(session, form.pupil, kind.slug)  # type: ignore[attr-defined]
    if pupil is None:
        return Identified(None, None, (), History())
    meeting: date = getattr(form, kind.meeting_date)
    earlier = current_forms(session, pupil.id)
    # The form this one corrects: the current one of the same kind for the same meeting.
    previous = next((row for row, _ in earlier if row.kind == kind.slug and row.meeting_date == meeting), None)
    corrects = previous.id if previous is not None else None
    return Identified(
        pupil.id,
        corrects,
        tuple(r.id for r, _ in earlier),
        history(earlier, excluding=corrects),
        previous=next((m for r, m in earlier if r.id == corrects), None),
        previous_done=previous is None or previous.state == "done",
        roll=rolled_pupil(pupil, form.pupil) if pupil.roll_updated_at is not None else None,  # type: ignore[attr-defined]
        latest=max((row.meeting_date for row, _ in earlier), default=None),
    )


def _stage(form: FormModel) -> int:
    """Where a form stands in the graduated approach: early discussion 0, plan of cycle n 2n-1,
    review of cycle n 2n. Meetings with parents stand outside the cycle (-1)."""
    if isinstance(form, SupportPlan):
        return 2 * form.cycle - 1
    if isinstance(form, ReviewRecord):
        return 2 * form.cycle
    if isinstance(form, EarlyDiscussion):
        return 0
    return -1


def moved_on(doc: rules.Prefilled, past: History) -> bool:
    """A pre-filled form for a step the pupil's record has already passed: a corrected plan of
    cycle 1 must not give the SENCO a second review record when cycle 1's review (or cycle 2's
    plan) is already filed."""
    if doc.kind == "early-discussion":
        later = [f for f in past.early if str(f.meeting_date) >= str(doc.values.get("meeting_date", ""))]
        return bool(later) or any(_stage(f) > 0 for f in past.forms)
    cycle = int(doc.values.get("cycle", 1))
    stage = 2 * cycle - 1 if doc.kind == "support-plan" else 2 * cycle
    return any(_stage(f) >= stage for f in past.forms)


#: A meeting dated further ahead than this has not happened yet: a typing slip to confirm.
FUTURE_DAYS = 30


def check_date(form: FormModel, kind: FormKind, today: date) -> None:
    """The form's meeting (or plan, or review) has happened: a date more than ``FUTURE_DAYS``
    ahead is a problem to put right, not a letter thanking parents for a meeting still to come."""
    meeting: date = getattr(form, kind.meeting_date)
    if (meeting - today).days > FUTURE_DAYS:
        label = layout.fields(kind)[kind.meeting_date].label
        shown = f"{meeting:%d/%m/%Y}"
        raise FormInvalidError(
            [
                Problem(
                    label,
                    f"{shown} is more than {FUTURE_DAYS} days after today ({today:%d/%m/%Y}); a form is "
                    "filled in at or after the meeting. Check the year and the month",
                    kind.meeting_date,
                )
            ],
            kind_title=kind.title,
        )


def check_cycle(form: FormModel, kind: FormKind, past: History) -> None:
    """A form out of its place in the pupil's cycle is set aside (``CycleError``), before any
    letter is written from it."""
    if isinstance(form, EarlyDiscussion):
        _early_discussion_in_place(form, past)
    elif isinstance(form, ReviewRecord):
        _review_in_place(form, past)


def _on_register_as(past: History, day: date, provisions: tuple[str, ...]) -> rules.Status | None:
    """The pupil's place on the register on ``day`` if it is one of ``provisions``."""
    status = rules.status_on(past, day)
    return status if status is not None and status.provision in provisions else None


def _early_discussion_in_place(note: EarlyDiscussion, past: History) -> None:
    """An early discussion decides whether a pupil needs SEN support (6.45-6.47). For a pupil
    already receiving it, its letters would say untrue things: that the school has just decided
    to make provision, that the child's name is added to the register, that a first plan is to
    be agreed. Meetings in the cycle have their own form, and a review changes or ends support."""
    status = _on_register_as(past, note.meeting_date, rules.ON_REGISTER)
    if status is None:
        return
    what = "an EHC plan" if status.provision == "E" else "SEN support"
    raise CycleError(
        f"This early discussion note is for a pupil who already has {what}: the archive has the pupil "
        f"with UPN {note.pupil.upn} on the SEN register since {status.since:%d/%m/%Y}. An early discussion "
        "note is for deciding whether a pupil needs SEN support, so the letters senforms writes from it "
        "would tell the parents things that are not true for this child.",
        advice="For a meeting with the parents of a pupil on SEN support, use the form \"Note of a meeting "
        "with parents\" instead. To change or end the support, use the review record. If this note "
        "corrects the pupil's first early discussion, give it that meeting's date, save it, and drop it "
        "in again.",
    )


def _ending_what_can_end(review: ReviewRecord, past: History) -> None:
    """A review can end SEN support (6.44), not an EHC plan: only the local authority ends that,
    and no form here records it, so the pupil stays on the register as E. The letter for such a
    review would tell the parents the child comes off the register. Moving to the EHC plan, or
    leaving the school, is still a true reason to end the school's own plan."""
    if review.decision is not ReviewDecision.END or review.end_reason in (EndReason.EHC_PLAN, EndReason.LEAVING):
        return
    status = _on_register_as(past, review.review_date, ("E",))
    if status is None:
        return
    raise CycleError(
        f"This review record ends SEN support for a pupil who has an EHC plan: the archive has the pupil "
        f"with UPN {review.pupil.upn} on the SEN register with an EHC plan since {status.since:%d/%m/%Y}. "
        "Only the local authority can end an EHC plan, and the letter to the parents would say that the "
        "child comes off the SEN register, which is not so.",
        advice="Check the decision with the SENCO. If the review agreed to carry on or to change the "
        "support, correct the decision on the form, save it, and drop it in again. If the local authority "
        "has ended the EHC plan, senforms cannot record that yet: keep this form and the authority's "
        "letter in the pupil's file.",
    )


def _review_in_place(form: ReviewRecord, past: History) -> None:
    """A review reviews a plan: a review for a cycle with no plan on record is set aside."""
    _ending_what_can_end(form, past)
    record = past.cycles.get(form.cycle)
    if record is None or record.plan is None:
        upn = form.pupil.upn
        raise CycleError(
            f"This review record is for cycle {form.cycle}, but the archive has no SEN support plan for "
            f"cycle {form.cycle} for the pupil with UPN {upn}, so there is nothing for it to review.",
            advice=f"Drop in the plan of cycle {form.cycle} first, then this review record again. If the "
            "cycle number on the review is wrong, correct it, save the form, and drop it in again.",
        )


def not_yet_due(decided: rules.Next, notice_days: int, today: date) -> rules.Next:
    """Without the pre-filled review record when its review is more than ``notice_days`` away:
    the daily round (``senforms.year.reviews``) issues it ``notice_days`` before the review
    (Code 6.52-6.53), not months ahead. ``notice_days`` 0 keeps it with the plan, as before; a
    review already within the notice comes with the plan. The rules stay as they are: they know
    nothing of settings or dates to come."""
    if notice_days <= 0:
        return decided
    kept = [
        d
        for d in decided.documents
        if not (
            isinstance(d, rules.Prefilled)
            and d.kind == "review"
            and isinstance(d.values.get("review_date"), date)
            and (d.values["review_date"] - today).days > notice_days
        )
    ]
    return rules.Next(kept, decided.flags)


def decide(form: FormModel, past: History) -> rules.Next:
    """Step 3: what the graduated approach says comes next (``rules.STEPS``)."""
    return rules.what_next(form, past)


class _Changed(Exception):
    """Another watcher changed this pupil's record between identify and file."""


# Built once, as every form runs them: building a statement costs SQLAlchemy more than running it.
_FORMS, _PUPILS = t.table(t.ReceivedForm), t.table(t.Pupil)
_CURRENT_IDS = (
    select(_FORMS.c.id)
    .where(_FORMS.c.pupil_id == bindparam("pupil_id"), _FORMS.c.superseded_by_id.is_(None))
    .order_by(_FORMS.c.meeting_date, _FORMS.c.id)
)
_FILE_FORM = insert(_FORMS).returning(_FORMS.c.id)
_BY_HASH = (
    select(_FORMS.c.id, _FORMS.c.kind, _FORMS.c.state, _PUPILS.c.upn)
    .join(_PUPILS, _PUPILS.c.id == _FORMS.c.pupil_id)
    .where(_FORMS.c.content_hash == bindparam("digest"))
)


def _current_ids(session: Session, pupil_id: int) -> tuple[int, ...]:
    return tuple(session.scalars(_CURRENT_IDS, {"pupil_id": pupil_id}).all())


@dataclass(frozen=True)
class Received:
    """The file as it came: kept whole in the archive."""

    data: bytes
    digest: str
    name: str
    method: str


@dataclass(frozen=True)
class Filed:
    form_id: int
    documents: list[Planned]  # as filed, with their bytes, for the delivery (``plan_delivery``)
    # The pupil's row of the outbox's SEND register changed (a plan's review date, a meeting)
    # while their status did not, so no register version was filed to say so.
    register_stale: bool = False


def file(
    session: Session,
    settings: Settings,
    received: Received,
    form: FormModel,
    kind: FormKind,
    seen: Identified,
    decided: rules.Next,
    rendered: list[Rendered],
    today: date,
) -> Filed:
    """Step 5, inside one short transaction: lock the pupil, check nothing changed since
    ``identify``, file the form, rebuild the record, plan the documents."""
    pupil_form: Pupil = form.pupil  # type: ignore[attr-defined]
    row = find_pupil_locked(session, pupil_form, kind.slug, seen.pupil_id)
    if (row.id if row is not None else None) != seen.pupil_id:
        raise _Changed
    if row is not None and _current_ids(session, row.id) != seen.current:
        raise _Changed
    pupil = save_pupil(session, row, pupil_form)
    meeting: date = getattr(form, kind.meeting_date)
    # A plain INSERT: the ORM's unit of work costs more than the statement, and nothing here
    # needs the form as an object, only its id.
    form_id: int = session.execute(
        _FILE_FORM,
        {
            "content_hash": received.digest,
            "pupil_id": pupil.id,
            "kind": kind.slug,
            # The answers are kept as the current version's (an earlier printed version was
            # upgraded when read); the original bytes keep the version as printed.
            "version": kind.version,
            "meeting_date": meeting,
            "original_name": received.name[:400],
            "received_at": now(),
            "original": received.data,
            "data": form.model_dump_json(),
            "read_by": received.method,
            "superseded_by_id": None,
            "state": "delivering",
        },
    ).scalar_one()
    if seen.corrects is not None:
        previous = session.get(t.ReceivedForm, seen.corrects)
        assert previous is not None
        previous.superseded_by_id = form_id
        log(
            session,
            "superseded",
            f"{kind.slug} of {meeting} corrected by form {form_id}",
            upn=pupil.upn,
            form_id=previous.id,
        )
    # The file name is kept with the form, not here: office staff often name files after the
    # pupil, and the log names pupils by UPN only.
    log(session, "received", f"{kind.slug} of {meeting} (read by {received.method})", upn=pupil.upn, form_id=form_id)
    # A form later than all the pupil's others only adds to their record; a correction, or an
    # earlier meeting's form typed up late, changes what followed it, so the record is rebuilt.
    # ``seen.latest`` stands: the pupil's current forms are the ones ``identify`` saw (checked above).
    late = seen.latest is not None and seen.latest > meeting
    if seen.corrects is None and not late:
        effect = extend_record(session, pupil, form_id, form)
    else:
        effect = rebuild_record(session, pupil, current_forms(session, pupil.id))
    if decided.flags:
        described = [o.description for o in getattr(form, "outcomes", [])]
        numbers = ", ".join(str(described.index(f.description) + 1) for f in decided.flags)
        # Outcomes by number: their words may name the pupil.
        log(
            session,
            "flagged",
            f"outcome {numbers} not achieved at two reviews in a row",
            upn=pupil.upn,
            form_id=form_id,
        )
    documents = list(rendered)
    if evidence.wanted(form):
        # The EHC evidence pack (6.63) shows the record as this review leaves it, so it is built
        # here, from the rebuilt record inside the same transaction, rather than with the letters.
        pack = evidence.evidence_pack(session, pupil.upn, settings, today)
        if seen.corrects is not None:
            pack.title += " (corrected)"
        documents.append(pack)
    if effect.status_changed:
        # Kept in the archive: only this pupil's change to the register (see register_change_csv).
        # The outbox's living copy is written whole from the archive when the form is delivered.
        change = register_change_csv(session, pupil.id)
        documents.append(Rendered(Audience.SENCO, "SEND register", "register", change, ".csv"))
    planned = plan_delivery(
        session,
        settings.outbox,
        form_id,
        pupil,
        documents,
        corrected=seen.corrects is not None,
        today=today,
        new_pupil=seen.pupil_id is None,
    )
    return Filed(form_id, planned, register_stale=effect.on_register and not effect.status_changed)


# --- the orchestrator -----------------------------------------------------------------------------


class Pipeline:
    """The steps for one form at a time, with the archive open.

    ``register_every``: None (the default) writes the outbox's living files, the SEND register
    and the office's list of letters to send, as each form is delivered, as a single
    ``process_file`` caller expects. A number of seconds makes them the batch's business
    instead: each form leaves them pending, and ``catch_up`` writes them once (``process_files``
    at the end of its batch; the watcher when the inbox goes quiet, and at most every
    ``register_every`` seconds while forms keep coming). The per-form cost then does not grow
    with the school or with the day: the register costs one column query and two files per
    batch, the list one read and one write."""

    def __init__(
        self,
        settings: Settings,
        *,
        today: Callable[[], date] | None = None,
        register_every: float | None = None,
    ) -> None:
        self.settings = settings
        self.archive = Archive(settings.database_url)
        clear_staging(settings.outbox)
        self.today = today or settings.today
        self.register_every = register_every
        self.register_pending = False
        # A form changed a pupil's row of the register but not their status (``Filed``).
        self.register_stale = False
        # Parent letters delivered and not yet on the office's list (outbox path, when filed).
        self.letters_pending: list[tuple[str, datetime]] = []
        self._register_written = time.monotonic()
        self.pdf = PdfLetters(settings)
        # Plain sentences for whoever starts senforms (the watcher and `process` print them).
        self.notices: list[str] = [n for n in (self.pdf.notice,) if n]
        # Called with the name of each step as it completes; tests use it to interrupt
        # processing at every point and prove that nothing is lost or doubled.
        self.checkpoint: Callable[[str], None] = lambda step: None

    def close(self) -> None:
        try:
            if self.behind:
                with contextlib.suppress(SenformsError, OSError):
                    # Left pending if it fails: the next run writes them (``finish_pending``).
                    self.catch_up()
        finally:
            self.pdf.close()
            self.archive.close()

    def write_register(self, *, pending_only: bool = True) -> bool:
        """Write the outbox's SEND register (CSV and XLSX) from the archive, under the register's
        lock, if any register version is still undelivered or a form this pipeline filed changed
        a row of it (or always, with ``pending_only`` False). Returns whether it was written.
        Every version it saw is marked delivered in the same transaction, so a crash leaves them
        pending for the next run, never lost."""
        from senforms.archive.register import pending_versions
        from senforms.outbox import write_register as write

        try:
            with self.archive.reading() as session:
                needed = not pending_only or self.register_stale or bool(pending_versions(session))
            if needed:
                with self.archive.session() as session:
                    write(session, self.settings.outbox, self.today())
        except OSError as exc:
            raise DeliveryPendingError(_os_reason(exc), upn="") from exc
        self.register_pending = self.register_stale = False
        self._register_written = time.monotonic()
        return needed

    def write_letters(self) -> bool:
        """Add the parent letters delivered since the last call to the office's list of letters
        to send (``outbox.write_letters_lists``). A list that cannot be written (the office has
        it open in Excel, which Windows will not let anyone replace; the share is away) is only
        behind: the letters are in the outbox, the failure is logged, and they are listed at the
        next try. Returns whether the list is up to date."""
        if not self.letters_pending:
            return True
        try:
            with self.archive.session() as session:
                write_letters_lists(session, self.settings.outbox, self.letters_pending)
        except (OSError, SenformsError) as exc:
            reason = _os_reason(exc) if isinstance(exc, OSError) else exc.message
            logger.warning("The list of letters to send could not be brought up to date yet (%s); tried again later.", reason)
            return False
        self.letters_pending = []
        return True

    @property
    def behind(self) -> bool:
        """The outbox's living files (register, letters list) wait for ``catch_up``."""
        return self.register_pending or bool(self.letters_pending)

    def catch_up(self) -> None:
        """Bring the outbox's living files this pipeline left behind up to date: the office's list
        of letters to send, then the SEND register. Raises ``DeliveryPendingError`` if the
        register cannot be written."""
        self.write_letters()
        if self.register_pending:
            self.write_register()

    def register_due(self) -> bool:
        """Living files left pending by this pipeline for ``register_every`` seconds or more."""
        if not self.behind or self.register_every is None:
            return False
        return time.monotonic() - self._register_written >= self.register_every

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def process_file(self, path: Path, *, name: str | None = None) -> Processed:
        """Process one form file. Never moves or deletes ``path``; raises ``SenformsError``."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SenformsError(f"{path.name} cannot be opened: {exc.strerror or exc}") from exc
        return self.process_bytes(data, name=name or path.name)

    def process_bytes(self, data: bytes, *, name: str) -> Processed:
        """Read, identify, decide, render, file, deliver: the whole recipe."""
        try:
            return self._process_bytes(data, name=name)
        except ArchiveConnectionLostError:
            # The archive's server dropped the connection (it restarted, or the network did), and
            # the pool has let go of it: once more, on a fresh connection. Every step is safe to
            # run again: a form filed before the drop is found by its bytes and only finished.
            logger.info("The connection to the archive was lost; trying the form once more.")
            return self._process_bytes(data, name=name)

    def _process_bytes(self, data: bytes, *, name: str) -> Processed:
        digest = sha256(data)
        try:
            raw, form, warnings = read(data, name, self.settings)
            kind = kind_of(form)
            check_date(form, kind, self.today())
        except SenformsError:
            # A form already filed is never set aside, even if it would not be read today (a
            # date now out of range, a template changed since): it is known by its bytes.
            known = self._known(digest)
            if known is not None:
                return known
            raise
        upn: str = form.pupil.upn  # type: ignore[attr-defined]
        self.checkpoint("read")
        received = Received(data, digest, name, raw.method)
        for _ in range(ATTEMPTS):
            with self.archive.reading() as session:
                # The same bytes filed before (dropped in again, or by a watcher that crashed):
                # looked for here rather than before reading, to save every form a transaction.
                filed = session.execute(_BY_HASH, {"digest": digest}).first()
                seen = identify(session, form, kind) if filed is None else None
            if filed is not None:
                return self._finish(*filed)
            assert seen is not None
            if seen.same_answers(form):
                return self._again(seen, kind, upn)
            check_cycle(form, kind, seen.past)
            shown = seen.as_written(form)
            decided = decide(shown, seen.past)
            correction: list[str] = []
            if seen.previous is not None:
                correction = correction_lines(kind, seen.previous, form)
                decided = rules.Next(
                    [d for d in decided.documents if not (isinstance(d, rules.Prefilled) and moved_on(d, seen.past))],
                    decided.flags,
                )
            today = self.today()
            decided = not_yet_due(decided, self.settings.review_notice_days, today)
            rendered, more = render_documents(
                self.settings,
                shown,
                decided,
                seen.past,
                corrected=seen.corrects is not None,
                today=today,
                pdf=self.pdf,
                correction=correction,
            )
            if evidence.wanted(form):
                charts.warm()  # matplotlib's first import takes a second: not while the pupil is locked
            try:
                with self.archive.session() as session:
                    filed_now = file(session, self.settings, received, form, kind, seen, decided, rendered, today)
                    self.checkpoint("filed")
            except _Changed:
                continue  # another watcher filed a form for this pupil meanwhile: look again
            except ArchiveError as exc:
                if isinstance(exc.__cause__, IntegrityError):
                    # Another watcher filed the same bytes, or created this pupil, a moment ago.
                    again = self._known(digest)
                    if again is not None:
                        return again
                    continue
                raise
            break
        else:
            raise ArchiveUnavailableError(
                f"The pupil's record (UPN {upn}) kept changing while this form was being filed, so it "
                "was not filed yet.",
                advice="Drop the form in again in a minute; nothing has been lost.",
            )
        self.checkpoint("committed")
        # From here the form is filed: whatever happens to the outbox, it is never set aside.
        written = self._deliver(filed_now.form_id, upn, filed_now.documents).paths
        if filed_now.register_stale:
            # The register's row for this pupil (plan, next review, meetings) is out of date in
            # the outbox: written again as a new version would be, now or with the batch.
            self.register_stale = self.register_pending = True
            if self.register_every is None or self.register_due():
                self.catch_up()
            written = [*written, self.settings.outbox / REGISTER_PATH]
        status = "corrected" if seen.corrects is not None else "processed"
        logger.info("%s %s for UPN %s: %d documents", status, kind.slug, upn, len(written))
        return Processed(kind.slug, upn, status, written, warnings + more)

    def _again(self, seen: Identified, kind: FormKind, upn: str) -> Processed:
        """The same answers as the form on record: nothing filed again, no documents; only a
        line in the event log, and the delivery finished if a crash interrupted it."""
        assert seen.corrects is not None
        with self.archive.session() as session:
            log(
                session,
                "received again",
                f"{kind.slug}: same answers as form {seen.corrects}",
                upn=upn,
                form_id=seen.corrects,
            )
        logger.info("already processed %s for UPN %s (same answers as form %d)", kind.slug, upn, seen.corrects)
        if not seen.previous_done:
            return Processed(kind.slug, upn, "processed", self._deliver(seen.corrects, upn).paths)
        return Processed(kind.slug, upn, "already processed")

    def _deliver(self, form_id: int, upn: str, planned: list[Planned] | None = None) -> Delivered:
        """``outbox.deliver``, with an outbox that cannot be written to (full disk, read-only,
        permissions, a share gone away) reported as ``DeliveryPendingError``: the form is filed
        and stays in state "delivering" until a later run finishes it."""
        try:
            done = deliver(
                self.archive,
                self.settings.outbox,
                form_id,
                self.checkpoint,
                today=self.today(),
                register_now=self.register_every is None,
                planned=planned,
            )
        except OSError as exc:
            logger.warning("Form %d (UPN %s) filed; its documents are waiting for the outbox: %s", form_id, upn, exc)
            raise DeliveryPendingError(_os_reason(exc), upn=upn) from exc
        self.letters_pending += done.letters
        self.register_pending = self.register_pending or done.register_pending
        if self.register_every is None:
            self.write_letters()  # the register was written by the delivery itself
        elif self.register_due():
            self.catch_up()
        return done

    def finish_pending(self) -> list[Processed]:
        """Deliver every filed form whose documents are not all in the outbox yet (state other
        than "done"): what a crash, a full disk or a read-only outbox left undone. Run at start
        by the watcher and by ``senforms process``. Tries every form, then raises the first
        ``DeliveryPendingError`` if the outbox still cannot be written to."""
        with self.archive.reading() as session:
            rows = session.execute(
                select(t.ReceivedForm.id, t.ReceivedForm.kind, t.Pupil.upn)
                .join(t.Pupil, t.Pupil.id == t.ReceivedForm.pupil_id)
                .where(t.ReceivedForm.state != "done")
                .order_by(t.ReceivedForm.id)
            ).all()
        finished: list[Processed] = []
        failed: DeliveryPendingError | None = None
        for row in rows:
            try:
                done = self._deliver(row.id, row.upn)
            except DeliveryPendingError as exc:
                failed = failed or exc
                continue
            if done.now:
                logger.info("Finished delivering %s for UPN %s: %d documents", row.kind, row.upn, len(done.paths))
                finished.append(Processed(row.kind, row.upn, "processed", done.paths))
        # Letters a run that stopped (or crashed) delivered without listing them, and a register
        # it left pending.
        with contextlib.suppress(SenformsError), self.archive.reading() as session:
            self.letters_pending += recent_letters(session)
        self.write_letters()
        try:
            self.write_register()
        except DeliveryPendingError as exc:
            failed = failed or exc
        if failed is not None:
            raise failed
        return finished

    def filed_already(self, path: Path) -> Processed | None:
        """The form in ``path`` if the archive has it (another run filed it), else None."""
        try:
            digest = sha256(path.read_bytes())
        except OSError:
            return None
        try:
            return self._known(digest)
        except SenformsError:
            return None

    def _known(self, digest: str) -> Processed | None:
        """A form already received: finish its delivery if a crash interrupted it."""
        with self.archive.reading() as session:
            row = session.execute(_BY_HASH, {"digest": digest}).first()
        return None if row is None else self._finish(*row)

    def _finish(self, form_id: int, kind: str, state: str, upn: str) -> Processed:
        """A form on record (a ``_BY_HASH`` row): its delivery finished if it was interrupted."""
        if state == "done":
            return Processed(kind, upn, "already processed")
        done = self._deliver(form_id, upn)
        # Another run may have finished it while this one waited for the form's lock.
        return Processed(kind, upn, "processed" if done.now else "already processed", done.paths)


def _os_reason(exc: OSError) -> str:
    """Why the outbox could not be written to, in words office staff know."""
    import errno

    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the outbox is on a disk that is read-only",
        errno.EACCES: "senforms is not allowed to write to the outbox folder",
        errno.EPERM: "senforms is not allowed to write to the outbox folder",
        errno.EDQUOT: "the disk quota is used up",
        errno.ENOENT: "the outbox folder cannot be found",
    }
    return reasons.get(exc.errno or 0, exc.strerror or str(exc))


# --- many files, for `senforms process` ----------------------------------------------------------


@dataclass
class Report:
    processed: list[tuple[Path, Processed]] = field(default_factory=list)
    set_aside: list[tuple[Path, Path, SenformsError]] = field(default_factory=list)
    # Left where they are: filed but not yet delivered, or the archive could not be reached.
    # Nothing is wrong with these files; running `senforms process` on them again finishes them.
    waiting: list[tuple[Path, SenformsError]] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        if self.set_aside:
            return ExitCode.some_files_failed
        return ExitCode.archive_error if self.waiting else ExitCode.ok


#: In a long batch the outbox's register is also written at most this often (seconds), so it never
#: lags far behind; otherwise it is written once at the batch's end.
REGISTER_EVERY_S = 60.0


#: The cycle's order of kinds: a pupil's record starts with the early discussion; a plan of cycle
#: n comes before its review, and that before the plan of cycle n + 1 (see ``cycle_order``).
KIND_ORDER = {"early-discussion": 0, "parent-meeting": 1, "support-plan": 2, "review": 3}


def cycle_order(path: Path, settings: Settings) -> tuple[int, int, date, str]:
    """Where a dropped file stands in the cycle, read cheaply (the raw answers, not validated):
    early discussions first, then meetings, then each cycle's plan and review, then by meeting
    date; the name only breaks ties. A file that cannot be read goes last, to be set aside there
    with its note as usual."""
    last = (99, 0, date.max, path.name)
    try:
        raw = forms.read(path.read_bytes(), name=path.name, settings=settings)
    except (SenformsError, OSError):
        return last
    rank = KIND_ORDER.get(raw.kind.slug)
    if rank is None:
        return last
    cycle = _whole(raw.values.get("cycle")) if rank >= 2 else 0
    meeting = _uk_date(raw.values.get(raw.kind.meeting_date)) or date.max
    # Plan of cycle n: 2n; its review: 2n + 1; so cycle 1's review comes before cycle 2's plan.
    return (rank if rank < 2 else 2 * cycle + rank, 0, meeting, path.name)


def _whole(value: object) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return 1


def _uk_date(value: object) -> date | None:
    """A date as typed on the form (dd/mm/yyyy), or None: ordering only, never validation."""
    if isinstance(value, date):
        return value
    parts = str(value or "").replace("-", "/").replace(".", "/").split("/")
    try:
        day, month, year = (int(p) for p in parts)
        return date(year, month, day)
    except ValueError:
        return None


def _waiting(exc: SenformsError) -> bool:
    """Set aside only because an earlier form of the same pupil had not been filed yet."""
    return isinstance(exc, NoSuchPupilError | CycleError)


def process_files(paths: Iterable[Path], settings: Settings, *, notify: Callable[[str], None] = logger.info) -> Report:
    """Process each file in the cycle's order (``cycle_order``), whatever the files are called; a
    file with a problem is moved to ``problems/`` beside a note. A form held up only because its
    pupil's earlier form was still waiting (``_waiting``) is tried once more after the others.

    A file is never set aside for what is not its fault: a form that was filed but whose letters
    could not be written (``DeliveryPendingError``) or that could not reach the archive
    (``ArchiveUnavailableError``) stays where it is, is reported, and the exit code is not zero."""
    report = Report()
    paths = list(paths)
    ordered = sorted(paths, key=lambda p: cycle_order(p, settings))
    # The register is written once, at the end of the batch (``Pipeline.close``), not per form.
    with Pipeline(settings, register_every=REGISTER_EVERY_S) as pipeline:
        for notice in pipeline.notices:
            notify(notice)
        try:
            for done in pipeline.finish_pending():
                notify(f"Finished writing the letters of an earlier {done.kind} for UPN {done.upn}.")
        except (DeliveryPendingError, ArchiveUnavailableError) as exc:
            notify(exc.message)
        # A form for a pupil not yet in the archive is tried again once the rest of the batch is
        # done: its early discussion may come later in the batch, or be filed by another run now.
        later = [path for path in ordered if not _once(pipeline, path, settings, report, notify, first=True)]
        for path in later:
            _once(pipeline, path, settings, report, notify, first=False)
        pipeline.write_letters()
        try:
            pipeline.write_register()  # also one a run before this one left pending
        except (DeliveryPendingError, ArchiveUnavailableError) as exc:
            notify(f"The SEND register in the outbox was not brought up to date: {exc.message}")
    # The report lists files in the order they were given, as the command line printed them before.
    given = {p: i for i, p in enumerate(paths)}
    report.processed.sort(key=lambda item: given[item[0]])
    return report


def _once(
    pipeline: Pipeline, path: Path, settings: Settings, report: Report, notify: Callable[[str], None], *, first: bool
) -> bool:
    """Process one file for ``process_files``, setting it aside only for a fault of its own.
    Returns False for a form to try again at the end of the batch (only when ``first``)."""
    try:
        report.processed.append((path, pipeline.process_file(path)))
    except (DeliveryPendingError, ArchiveUnavailableError) as exc:
        report.waiting.append((path, exc))
        notify(f"{path.name}: left where it is. {exc.message}\n  What to do: {exc.advice}")
    except SenformsError as exc:
        if first and _waiting(exc):
            return False
        if not path.exists():
            # Another run (a second `process`, a watcher) took the file meanwhile: its outcome
            # is that run's to report, never a second, contradictory one here.
            notify(f"{path.name}: taken by another senforms run meanwhile; see its report.")
            return True
        if (filed := pipeline.filed_already(path)) is not None:
            # Refused here only because another run was filing it at that moment: filed is
            # its outcome, never "set aside" as well.
            report.processed.append((path, filed))
            return True
        try:
            target = set_aside(path, settings.problems, exc.note(), on=settings.today())
        except FileNotFoundError:
            notify(f"{path.name}: taken by another senforms run meanwhile; see its report.")
            return True
        report.set_aside.append((path, target, exc))
    return True
