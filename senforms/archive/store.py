"""Opening the archive and the record-keeping the pipeline asks of it.

SQLite in the home folder by default; PostgreSQL (or any SQLAlchemy URL) for a trust or local
authority. The schema is created and upgraded by Alembic migrations when the archive opens.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from senforms import kinds
from senforms.archive import tables as t
from senforms.errors import ArchiveError, IdentityConflictError
from senforms.history import History
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

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only looks: always rolled back, whatever was done in it."""
        session = self._sessions()
        try:
            yield session
        except SQLAlchemyError as exc:
            raise ArchiveError(f"The archive could not be read ({_short(exc)}).") from exc
        finally:
            session.rollback()
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).splitlines()[0][:200]


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
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


def lock_pupil(session: Session, pupil_id: int | None) -> None:
    """Hold the pupil (or, for a new pupil, the right to create one) until the transaction ends,
    so two watchers filing forms for one pupil take turns and each sees the other's form."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite locks the whole database for writing; a write as the transaction's first
        # statement takes that lock now, before anything is read (even when no row matches).
        session.execute(update(t.Pupil).where(t.Pupil.id == (pupil_id or -1)).values(id=t.Pupil.id))
    elif pupil_id is not None:
        session.execute(select(t.Pupil.id).where(t.Pupil.id == pupil_id).with_for_update())
    else:
        # No row to lock yet: new pupils are created one at a time, under one advisory lock.
        session.execute(text("SELECT pg_advisory_xact_lock(7310)"))


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


def current_forms(session: Session, pupil_id: int) -> list[tuple[t.ReceivedForm, kinds.FormModel]]:
    """A pupil's forms that no correction has replaced, oldest meeting first, with their models."""
    rows = session.scalars(
        select(t.ReceivedForm)
        .where(t.ReceivedForm.pupil_id == pupil_id, t.ReceivedForm.superseded_by_id.is_(None))
        .order_by(t.ReceivedForm.meeting_date, t.ReceivedForm.id)
    ).all()
    return [(row, load_form(row)) for row in rows]


def load_form(row: t.ReceivedForm) -> kinds.FormModel:
    """A filed form's answers as a model of its kind's current version (forms filed under an
    earlier version are upgraded as they are read, the same way a printed form is)."""
    kind = kinds.KINDS.get(row.kind)
    if kind is None:
        raise ArchiveError(f"The archive holds a form of a kind this installation does not know ({row.kind!r}).")
    return kind.upgrade(json.loads(row.data), row.version)


def history(forms: list[tuple[t.ReceivedForm, kinds.FormModel]], *, excluding: int | None = None) -> History:
    return History(tuple(model for row, model in forms if row.id != excluding))


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
