"""Opening the archive and the record-keeping the pipeline asks of it.

SQLite in the home folder by default; PostgreSQL (or any SQLAlchemy URL) for a trust or local
authority. The schema is created and upgraded by Alembic migrations when the archive opens.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from senforms import kinds
from senforms.archive import tables as t
from senforms.errors import ArchiveError, IdentityConflictError
from senforms.values import format_uk_date, is_temporary_upn

_MIGRATIONS = Path(__file__).parent / "migrations"
_migrate_lock = threading.Lock()


def now() -> datetime:
    return datetime.now(UTC)


class Archive:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
            self._migrate()
        except OperationalError as exc:
            raise ArchiveError(f"The archive database cannot be opened ({_short(exc)}).") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        _owner_only(self.engine)

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with _migrate_lock, self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            raise ArchiveError(f"The archive could not be updated ({_short(exc)}).") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).splitlines()[0][:200]


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _owner_only(engine: Engine) -> None:
    """Children's special-category data: the archive files are readable by their owner only."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        path = Path(database + suffix)
        if path.exists():
            with contextlib.suppress(OSError):  # some network shares keep their own permissions
                os.chmod(path, 0o600)


# --- identity --------------------------------------------------------------------------------


def _same(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").casefold().split()) == " ".join((b or "").casefold().split())


def find_pupil(session: Session, pupil: kinds.Pupil, kind: str) -> t.Pupil | None:
    """The archive's pupil for this form, or None for a new pupil. Never a guess: any
    disagreement between the form and the archive raises ``IdentityConflictError``."""
    row = session.scalar(select(t.Pupil).where(t.Pupil.upn == pupil.upn))
    if row is None:
        row = session.scalar(select(t.Pupil).where(t.Pupil.former_upn == pupil.upn))
    if row is not None:
        conflicts = []
        if not _same(row.legal_surname, pupil.legal_surname):
            conflicts.append(f"legal surname {pupil.legal_surname!r} on the form, {row.legal_surname!r} in the archive")
        if not _same(row.legal_forename, pupil.legal_forename):
            conflicts.append(
                f"legal first name {pupil.legal_forename!r} on the form, {row.legal_forename!r} in the archive"
            )
        if row.date_of_birth != pupil.date_of_birth:
            conflicts.append(
                f"date of birth {format_uk_date(pupil.date_of_birth)} on the form, "
                f"{format_uk_date(row.date_of_birth)} in the archive"
            )
        if conflicts:
            raise IdentityConflictError(
                f"The pupil on this form does not match the archive's pupil with UPN {pupil.upn}: "
                + "; ".join(conflicts)
                + "."
            )
        return row
    # Same person under another UPN: a typo, or a temporary UPN now replaced by the real one.
    twins = session.scalars(select(t.Pupil).where(t.Pupil.date_of_birth == pupil.date_of_birth)).all()
    for twin in twins:
        if _same(twin.legal_surname, pupil.legal_surname) and _same(twin.legal_forename, pupil.legal_forename):
            if is_temporary_upn(twin.upn) and not is_temporary_upn(pupil.upn):
                twin.former_upn, twin.upn = twin.upn, pupil.upn
                return twin
            raise IdentityConflictError(
                f"The archive already has a pupil with this name and date of birth under UPN {twin.upn}, "
                f"but this form gives UPN {pupil.upn}. One of the two UPNs is probably mistyped."
            )
    if kind != "early-discussion":
        raise IdentityConflictError(
            f"There is no pupil with UPN {pupil.upn} in the archive. A pupil's record starts with their "
            "early discussion note.",
            advice="Check the UPN against the school's records. If it is right, drop in the pupil's early "
            "discussion note first, then this form again.",
        )
    return None


def save_pupil(session: Session, row: t.Pupil | None, pupil: kinds.Pupil) -> t.Pupil:
    """Create the pupil, or bring the archive's details up to date from the latest form."""
    if row is None:
        row = t.Pupil(upn=pupil.upn, created_at=now())
        session.add(row)
    row.legal_forename = pupil.legal_forename
    row.legal_surname = pupil.legal_surname
    row.preferred_name = pupil.preferred_name
    row.date_of_birth = pupil.date_of_birth
    row.year_group = pupil.year_group.value
    row.class_name = pupil.class_name
    row.updated_at = now()
    if pupil.parents:
        row.parents = [
            t.Parent(
                position=i,
                name=p.name,
                relation=p.relationship,
                address=p.address,
                email=p.email,
                phone=p.phone,
                preferred_contact=p.preferred_contact.value if p.preferred_contact else None,
            )
            for i, p in enumerate(pupil.parents)
        ]
    session.flush()
    return row


# --- history: what the rules need to know of the past -------------------------------------------


@dataclass
class CycleRecord:
    number: int
    plan: kinds.SupportPlan | None = None
    review: kinds.ReviewRecord | None = None


@dataclass
class History:
    """A pupil's current forms, oldest first, as validated models."""

    early: list[kinds.EarlyDiscussion] = field(default_factory=list)
    cycles: dict[int, CycleRecord] = field(default_factory=dict)

    def with_form(self, form: kinds.FormModel) -> History:
        """This history with one more form in it (the one being processed)."""
        found = History(list(self.early), {n: CycleRecord(c.number, c.plan, c.review) for n, c in self.cycles.items()})
        if isinstance(form, kinds.EarlyDiscussion):
            found.early.append(form)
        elif isinstance(form, kinds.SupportPlan):
            found.cycles.setdefault(form.cycle, CycleRecord(form.cycle)).plan = form
        elif isinstance(form, kinds.ReviewRecord):
            found.cycles.setdefault(form.cycle, CycleRecord(form.cycle)).review = form
        return found

    def reviews_before(self, cycle: int) -> list[kinds.ReviewRecord]:
        return [c.review for n, c in sorted(self.cycles.items()) if n < cycle and c.review]


def current_forms(session: Session, pupil_id: int) -> list[tuple[t.ReceivedForm, kinds.FormModel]]:
    """A pupil's forms that no correction has replaced, oldest meeting first, with their models."""
    rows = session.scalars(
        select(t.ReceivedForm)
        .where(t.ReceivedForm.pupil_id == pupil_id, t.ReceivedForm.superseded_by_id.is_(None))
        .order_by(t.ReceivedForm.meeting_date, t.ReceivedForm.id)
    ).all()
    return [(row, kinds.KINDS[row.kind].model.model_validate_json(row.data)) for row in rows]


def history(forms: list[tuple[t.ReceivedForm, kinds.FormModel]], *, excluding: int | None = None) -> History:
    found = History()
    for row, model in forms:
        if row.id != excluding:
            found = found.with_form(model)
    return found


def log(session: Session, action: str, detail: str, *, upn: str | None = None, form_id: int | None = None) -> None:
    session.add(t.Event(at=now(), upn=upn, form_id=form_id, action=action, detail=detail))


def current_form(session: Session, pupil_id: int, kind: str, meeting: date) -> t.ReceivedForm | None:
    return session.scalar(
        select(t.ReceivedForm).where(
            t.ReceivedForm.pupil_id == pupil_id,
            t.ReceivedForm.kind == kind,
            t.ReceivedForm.meeting_date == meeting,
            t.ReceivedForm.superseded_by_id.is_(None),
        )
    )
