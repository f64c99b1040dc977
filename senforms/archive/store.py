"""Opening the archive and the record-keeping the pipeline asks of it.

SQLite in the home folder by default; PostgreSQL (or any SQLAlchemy URL) for a trust or local
authority. The schema is created and upgraded by Alembic migrations when the archive opens.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, create_engine, event, insert, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, defer, joinedload, sessionmaker

from senforms import kinds
from senforms.archive import tables as t
from senforms.errors import (
    ArchiveConnectionLostError,
    ArchiveError,
    ArchiveRefusedError,
    ArchiveUnavailableError,
    IdentityConflictError,
    NoSuchPupilError,
)
from senforms.history import History
from senforms.values import (
    accent_only,
    format_uk_date,
    is_temporary_upn,
    name_difference,
    name_key,
    same_name,
    tidy_name,
    upn_difference,
)

_MIGRATIONS = Path(__file__).parent / "migrations"
_migrate_lock = threading.Lock()


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A time from the archive, with its zone: senforms stores times in UTC, and SQLite hands
    them back without their offset (PostgreSQL with it), so two of them can always be compared."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Archive:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
            self._migrate()
        except SQLAlchemyError as exc:
            if _unreachable(exc):
                raise ArchiveUnavailableError(f"The archive database cannot be opened ({_short(exc)}).") from exc
            raise ArchiveRefusedError(f"The archive database cannot be used ({_short(exc)}).") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        _owner_only(self.engine)

    def _migrate(self) -> None:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self.engine.connect() as connection:
            if MigrationContext.configure(connection).get_current_revision() == head:
                return  # the usual case: nothing to do, and no lock taken
        with _migrate_lock, self.engine.begin() as connection:
            # Two watchers (or a watcher and a command) opening a new or older archive at the same
            # moment would both create the tables, and the second would fail ("table pupils
            # already exists"). The first to take the database's write lock (SQLite) or the
            # migration's advisory lock (PostgreSQL) upgrades it; the other then finds it done.
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(7309)"))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def session(self, *, durable: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any exception.

        ``durable=False``: for a transaction that is safe to lose in a power cut because it is
        done again from what a durable one kept (a form's delivery, done again from the filed
        form, recognises the documents already written by their hash). Its commit does not wait
        for the disk: on SQLite ``synchronous=NORMAL`` for that one commit (in WAL mode the
        database stays whole; the next durable commit syncs it with its own), on PostgreSQL
        ``synchronous_commit`` off for the transaction. Every other commit is synced."""
        session = self._sessions()
        with _ended(session, "The archive could not be updated"):
            if not durable:
                _not_synced(session)
            yield session
            session.commit()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only looks. The database refuses any write in it (PostgreSQL's
        ``READ ONLY``, SQLite's ``query_only``), and what the block changes on rows it loaded is
        dropped unsaved, so nothing it does can reach the archive.

        It ends with a commit, which for a transaction that wrote nothing is the same as a
        rollback to the database, but not to psycopg: a rollback makes it forget every statement
        it has prepared on the connection (it cannot know what the transaction dropped). Each
        form is identified in a reading transaction, so when reads ended with a rollback no
        statement of the pipeline was ever run often enough to be prepared, and every one was
        parsed and planned afresh (the look-up by UPN, timed with psycopg alone: 213 µs, against
        60 µs prepared)."""
        session = self._sessions(autoflush=False)
        with _ended(session, "The archive could not be read"):
            refused = _read_only(session)
            yield session
            session.expunge_all()
            if refused:
                session.commit()
            else:  # a database senforms cannot make refuse writes: thrown away instead
                session.rollback()

    @contextmanager
    def trial(self) -> Iterator[Session]:
        """A dry run: a transaction that may write, always rolled back, whatever was done in it
        (``senforms pupils import --check`` shows what an import would change this way)."""
        session = self._sessions()
        try:
            yield session
        except SQLAlchemyError as exc:
            raise _archive_error("The archive could not be read", exc) from exc
        finally:
            with contextlib.suppress(SQLAlchemyError):
                session.rollback()
            session.close()

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def _ended(session: Session, what: str) -> Iterator[None]:
    """A transaction's end: rolled back on any exception (an archive error becomes an
    ``ArchiveError`` starting with ``what``), and the session closed whatever happened."""
    try:
        yield
    except SQLAlchemyError as exc:
        with contextlib.suppress(SQLAlchemyError):  # a lost connection cannot roll back either
            session.rollback()
        raise _archive_error(what, exc) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _short(exc: Exception) -> str:
    return str(getattr(exc, "orig", exc)).splitlines()[0][:200]


def _unreachable(exc: SQLAlchemyError) -> bool:
    """An outage rather than a refusal: the database could not be reached, dropped the
    connection, or did not answer in time. PostgreSQL's drivers raise OperationalError for all of
    these, including a statement or lock timeout (psycopg's QueryCanceled and LockNotAvailable
    are OperationalErrors); SQLite raises it for "database is locked", a full disk or a file it
    cannot open. Everything else (DataError, IntegrityError, ProgrammingError) is the database
    saying no to what it was given, and would say no again."""
    if isinstance(exc, DisconnectionError | PoolTimeoutError | InterfaceError):
        return True
    if getattr(exc, "connection_invalidated", False):
        return True
    if isinstance(exc, OperationalError):
        message = str(getattr(exc, "orig", exc)).lower()
        # SQLite also reports a broken schema as OperationalError: that is no outage.
        return not any(s in message for s in ("no such table", "no such column", "syntax error", "has no column"))
    return False


def _archive_error(what: str, exc: SQLAlchemyError) -> ArchiveError:
    if getattr(exc, "connection_invalidated", False):
        return ArchiveConnectionLostError(f"{what}: the connection to it was lost ({_short(exc)}).")
    if _unreachable(exc):
        return ArchiveUnavailableError(f"{what}: it cannot be reached or did not answer in time ({_short(exc)}).")
    return ArchiveRefusedError(f"{what}: it refused what it was given ({_short(exc)}).")


#: How long one archive statement, or a wait for another watcher's lock, may take before it is an
#: outage (retried later) rather than something wrong with the form. SQLite's busy timeout is the same.
STATEMENT_TIMEOUT_S = 30


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": STATEMENT_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            _write_ahead_log(cursor)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        # A connection a transaction left unsynced or read-only is set back before anyone else has it.
        event.listen(engine, "checkin", _pragmas_reset)
        event.listen(engine, "checkout", lambda dbapi, record, _proxy: _pragmas_reset(dbapi, record))
        return engine
    if url.startswith("postgresql"):
        # A hung or frozen server must become an outage within a bounded time, never hold a form
        # until the watcher's per-file limit calls it damaged.
        ms = STATEMENT_TIMEOUT_S * 1000
        engine = create_engine(
            url,
            connect_args={
                "connect_timeout": 10,
                "options": f"-c statement_timeout={ms} -c lock_timeout={ms} "
                f"-c idle_in_transaction_session_timeout={ms * 4}",
            },
        )
        _ping_when_idle(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


#: A pooled connection returned this many seconds ago or more is pinged before it is used again.
PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection before use only if it has been idle, rather than at every checkout
    (SQLAlchemy's ``pool_pre_ping``): each form takes three transactions in quick succession,
    and a ping is a round trip to the server each time. A connection that died while idle (the
    server restarted overnight, the network dropped) is replaced before anyone uses it; one that
    dies within a second of its last use fails its next statement with
    ``ArchiveConnectionLostError``, and the pipeline tries that form once more on a fresh one."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("returned", float("-inf")) < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool lets this connection go and checks out another (SQLAlchemy's documented
            # way for a checkout event to report a dead connection).
            raise DisconnectionError() from exc


def _not_synced(session: Session) -> None:
    """This transaction's commit does not wait for the disk (see ``Archive.session``)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # Per connection: set back to FULL when the connection goes back to the pool
        # (``_pragmas_reset``), so no other transaction ever commits without it.
        connection.info["not synced"] = True
        connection.exec_driver_sql("PRAGMA synchronous=NORMAL")
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")  # ends with the transaction


def _read_only(session: Session) -> bool:
    """Make the database refuse any write in this transaction (see ``Archive.reading``); False
    for a database other than PostgreSQL and SQLite. Neither costs a round trip: psycopg puts
    ``READ ONLY`` in the ``BEGIN`` it sends anyway, and SQLAlchemy sets it back when the
    connection returns to the pool; SQLite's pragma is a flag on the connection, cleared by
    ``_pragmas_reset``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.connection(execution_options={"postgresql_readonly": True})
        return True
    if dialect == "sqlite":
        connection = session.connection()
        connection.info["read only"] = True
        connection.exec_driver_sql("PRAGMA query_only=ON")
        return True
    return False


def _pragmas_reset(dbapi_connection: sqlite3.Connection | None, record: Any) -> None:
    """A SQLite connection back as every transaction expects it: synced, and able to write."""
    pragmas = []
    if record.info.pop("not synced", False):
        pragmas.append("PRAGMA synchronous=FULL")
    if record.info.pop("read only", False):
        pragmas.append("PRAGMA query_only=OFF")
    if pragmas and dbapi_connection is not None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()


def _write_ahead_log(cursor: sqlite3.Cursor) -> None:
    """Put a SQLite archive in WAL mode (readers never wait for a writer), once per database.

    Switching a new database to WAL needs a moment alone with the file, and SQLite answers
    "database is locked" at once, without waiting out its busy timeout, when another process is
    opening the same new file (two watchers started together: measured, 47 of 150 pairs). So the
    mode is read first (an archive already in WAL needs nothing), and the switch is tried again
    for up to STATEMENT_TIMEOUT_S before it counts as an outage."""
    deadline = time.monotonic() + STATEMENT_TIMEOUT_S
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


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


# --- statements every form runs, built once ------------------------------------------------------
# Building a statement costs SQLAlchemy several times what running it does (about 80 us against
# 15-40 on SQLite): the statements each form runs are built here, once, with their values as
# parameters.

_PUPILS, _EVENTS = t.table(t.Pupil), t.table(t.Event)
# SQLite locks the whole database for writing; a write as the transaction's first statement takes
# that lock at once, before anything is read (even when no row matches). A plain UPDATE: the ORM
# would look for the row among its objects.
_LOCK_SQLITE = update(_PUPILS).where(_PUPILS.c.id == bindparam("pupil_id")).values(id=_PUPILS.c.id)
_LOCK_ROW = select(t.Pupil.id).where(t.Pupil.id == bindparam("pupil_id")).with_for_update()
# The pupil with this UPN, with their parents: the letters and the record both need them.
_BY_UPN = select(t.Pupil).options(joinedload(t.Pupil.parents)).where(t.Pupil.upn == bindparam("upn"))
_CURRENT_FORMS = (
    select(t.ReceivedForm)
    .where(t.ReceivedForm.pupil_id == bindparam("pupil_id"), t.ReceivedForm.superseded_by_id.is_(None))
    .order_by(t.ReceivedForm.meeting_date, t.ReceivedForm.id)
    # The original files are not needed to know what the forms say: five years of a pupil's
    # forms are a megabyte or more, read for every form filed.
    .options(defer(t.ReceivedForm.original))
)
# No pupil with the form's UPN: who had that UPN before, or shares the date of birth.
_FORMER_OR_BORN = select(t.Pupil).where(
    or_(t.Pupil.former_upn == bindparam("upn"), t.Pupil.date_of_birth == bindparam("born"))
)
# The same, each row found locked as it is read (PostgreSQL): see ``find_pupil_locked``.
_BY_UPN_LOCKED = _BY_UPN.with_for_update(of=t.Pupil)
_FORMER_OR_BORN_LOCKED = _FORMER_OR_BORN.with_for_update(of=t.Pupil)
_ANY_FORM = select(t.ReceivedForm.id).where(t.ReceivedForm.pupil_id == bindparam("pupil_id")).limit(1)
_LOG = insert(_EVENTS)


def lock_pupil(session: Session, pupil_id: int | None) -> None:
    """Hold the pupil (or, for a new pupil, the right to create one) until the transaction ends,
    so two watchers filing forms for one pupil take turns and each sees the other's form."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_LOCK_SQLITE, {"pupil_id": pupil_id or -1})
    elif pupil_id is not None:
        session.execute(_LOCK_ROW, {"pupil_id": pupil_id})
    else:
        # No row to lock yet: new pupils are created one at a time, under one advisory lock.
        session.execute(text("SELECT pg_advisory_xact_lock(7310)"))


# --- identity --------------------------------------------------------------------------------


def _same(a: str | None, b: str | None) -> bool:
    """The same name as people mean it: see ``values.name_key``."""
    return same_name(a, b)


def _same_person(row: t.Pupil, pupil: kinds.Pupil) -> bool:
    return (
        row.date_of_birth == pupil.date_of_birth
        and _same(row.legal_surname, pupil.legal_surname)
        and _same(row.legal_forename, pupil.legal_forename)
    )


def _likely_same_person(row: t.Pupil, pupil: kinds.Pupil) -> bool:
    """Same date of birth and the same names but for accents: the same child, or a typo away."""
    return row.date_of_birth == pupil.date_of_birth and all(
        _same(a, b) or accent_only(a, b)
        for a, b in ((row.legal_surname, pupil.legal_surname), (row.legal_forename, pupil.legal_forename))
    )


def _name_conflict(label: str, on_form: str, in_archive: str) -> str:
    text = f"{label} “{on_form}” on the form, “{in_archive}” in the archive"
    if explained := name_difference(on_form, in_archive):
        text += f" ({explained})"
    return text


def _fix_command(upn: str, options: list[tuple[str, str]]) -> str:
    return f"senforms pupil fix {upn} " + " ".join(f'{option} "{value}"' for option, value in options)


def find_pupil_locked(session: Session, pupil: kinds.Pupil, kind: str, pupil_id: int | None) -> t.Pupil | None:
    """``find_pupil`` again, with the pupil held until the transaction ends (``lock_pupil``):
    ``pupil_id`` is the pupil it found before (None: a new pupil). The caller checks it finds the
    same pupil.

    On PostgreSQL a pupil on record is locked by the look-up itself (``FOR UPDATE``), one
    statement rather than two: the row it reads is the latest, and held. If it is not the pupil
    found before (their UPN moved meanwhile), the caller starts again and the lock is let go."""
    if pupil_id is not None and session.get_bind().dialect.name == "postgresql":
        return find_pupil(session, pupil, kind, lock=True)
    lock_pupil(session, pupil_id)
    return find_pupil(session, pupil, kind)


def find_pupil(session: Session, pupil: kinds.Pupil, kind: str, *, lock: bool = False) -> t.Pupil | None:
    """The archive's pupil for this form, or None for a new pupil. Never a guess: any
    disagreement between the form and the archive raises ``IdentityConflictError`` for a person
    to resolve (correct the form, or correct the archive with ``senforms pupil fix``).

    Names are compared as ``values.name_key`` says (so "O’Brien" is "O'Brien"); an accent-only
    difference is named as a likely typo, never taken for another child nor quietly accepted.
    A temporary UPN gives way to a permanent one only when the form names the temporary UPN as
    the pupil's former UPN, or through ``senforms pupil fix``.

    ``lock`` (PostgreSQL only): each pupil row read is locked until the transaction ends."""
    row = session.scalars(_BY_UPN_LOCKED if lock else _BY_UPN, {"upn": pupil.upn}).unique().first()
    # No pupil with this UPN: one look for a pupil who had it before, or who may be this child
    # under another UPN (the same date of birth).
    others = (
        []
        if row is not None
        else session.scalars(
            _FORMER_OR_BORN_LOCKED if lock else _FORMER_OR_BORN, {"upn": pupil.upn, "born": pupil.date_of_birth}
        ).all()
    )
    if row is None:
        row = next((other for other in others if other.former_upn == pupil.upn), None)
    if row is not None:
        _check_details(session, row, pupil)
        if kind != "early-discussion" and row.roll_updated_at is not None and not _has_forms(session, row.id):
            # Known from the school roll only: the record still starts with the early discussion.
            raise NoSuchPupilError(
                f"The pupil with UPN {pupil.upn} is on the school roll, but the archive has no forms for them "
                "yet. A pupil's record starts with their early discussion note.",
                advice="Drop in the pupil's early discussion note first, then this form again.",
            )
        return row
    alike = [other for other in others if _likely_same_person(other, pupil)]
    # Forms have no "former UPN" answer yet; when one is added, this is what it means.
    former = getattr(pupil, "former_upn", None)
    for other in alike:
        if former and other.upn == former and is_temporary_upn(former) and _same_person(other, pupil):
            other.former_upn, other.upn = other.upn, pupil.upn
            log(
                session,
                "upn replaced",
                f"temporary UPN {former} replaced by {pupil.upn}, as the form says",
                upn=pupil.upn,
            )
            return other
    if alike:
        raise _another_upn(alike[0], pupil)
    if kind != "early-discussion":
        raise NoSuchPupilError(
            f"There is no pupil with UPN {pupil.upn} in the archive. A pupil's record starts with their "
            "early discussion note.",
            advice="Check the UPN against the school's records. If it is right, drop in the pupil's early "
            "discussion note first, then this form again.",
        )
    return None


def _has_forms(session: Session, pupil_id: int) -> bool:
    return session.scalar(_ANY_FORM, {"pupil_id": pupil_id}) is not None


def _check_details(session: Session, row: t.Pupil, pupil: kinds.Pupil) -> None:
    conflicts = []
    if not _same(row.legal_surname, pupil.legal_surname):
        conflicts.append(_name_conflict("legal surname", pupil.legal_surname, row.legal_surname))
    if not _same(row.legal_forename, pupil.legal_forename):
        conflicts.append(_name_conflict("legal first name", pupil.legal_forename, row.legal_forename))
    if row.date_of_birth != pupil.date_of_birth:
        conflicts.append(
            f"date of birth {format_uk_date(pupil.date_of_birth)} on the form, "
            f"{format_uk_date(row.date_of_birth)} in the archive"
        )
    if not conflicts:
        return
    message = (
        f"The pupil on this form does not match the archive's pupil with UPN {row.upn}: " + "; ".join(conflicts) + "."
    )
    # A UPN copied from the wrong row of a list: the rest of the form is another pupil's.
    owner = next(
        (
            other
            for other in session.scalars(select(t.Pupil).where(t.Pupil.date_of_birth == pupil.date_of_birth)).all()
            if other.id != row.id and _same_person(other, pupil)
        ),
        None,
    )
    if owner is not None:
        slip = upn_difference(pupil.upn, owner.upn)
        message += (
            f" The name and date of birth on the form are those of the pupil with UPN {owner.upn}"
            + (f" (in the two UPNs {slip})" if slip else "")
            + ", so the UPN on the form is probably mistyped."
        )
        raise IdentityConflictError(
            message,
            advice=f"Check the UPN against the school's records, correct it on the form (probably {owner.upn}), "
            "save it and drop it in again.",
        )
    advice = (
        "Check the pupil's UPN, name and date of birth against the school's records. If the form is wrong, "
        "correct it, save it and drop it in again. If the archive is wrong, the SENCO can correct it"
    )
    fixes = []
    if not _same(row.legal_surname, pupil.legal_surname):
        fixes.append(("--legal-surname", pupil.legal_surname))
    if not _same(row.legal_forename, pupil.legal_forename):
        fixes.append(("--legal-forename", pupil.legal_forename))
    if row.date_of_birth != pupil.date_of_birth:
        fixes.append(("--date-of-birth", format_uk_date(pupil.date_of_birth)))
    raise IdentityConflictError(
        message, advice=f"{advice} with: {_fix_command(row.upn, fixes)}, then drop this form in again."
    )


def _another_upn(other: t.Pupil, pupil: kinds.Pupil) -> IdentityConflictError:
    """The archive has this child (or a child a typo away) under another UPN."""
    names = []
    for label, on_form, in_archive in (
        ("legal surname", pupil.legal_surname, other.legal_surname),
        ("legal first name", pupil.legal_forename, other.legal_forename),
    ):
        if not _same(on_form, in_archive):
            names.append(_name_conflict(label, on_form, in_archive))
    alike = "this name and date of birth" if not names else "almost this name and the same date of birth"
    message = (
        f"The archive already has a pupil with {alike} under UPN {other.upn}, but this form gives UPN {pupil.upn}."
    )
    if names:
        message += " The names differ: " + "; ".join(names) + "."
    slip = upn_difference(pupil.upn, other.upn)
    if is_temporary_upn(other.upn) and not is_temporary_upn(pupil.upn):
        message += (
            f" {other.upn} is a temporary UPN: if {pupil.upn} is the same child's permanent UPN, the archive "
            "needs to be told; senforms never guesses that two records are one child."
        )
        advice = (
            f"Check both UPNs against the school's records. If {pupil.upn} is the permanent UPN of the pupil "
            f"recorded under {other.upn}, the SENCO runs: senforms pupil fix {other.upn} --upn {pupil.upn} "
            "and then drops this form in again. If they are two different children, ask the SENCO."
        )
    else:
        if slip:
            message += f" In the two UPNs {slip}, so one of them is probably mistyped."
        else:
            message += " One of the two UPNs is probably mistyped."
        advice = (
            "Check the UPN against the school's records. If the form is wrong, correct it and drop it in again; "
            f"if the archive is wrong, the SENCO runs: senforms pupil fix {other.upn} --upn {pupil.upn}. "
            "If they are two different children, ask the SENCO."
        )
    return IdentityConflictError(message, advice=advice)


def save_pupil(session: Session, row: t.Pupil | None, pupil: kinds.Pupil) -> t.Pupil:
    """Create the pupil, or bring the archive's details (other than who the pupil is) up to date
    from the latest form."""
    if row is None:
        row = t.Pupil(
            upn=pupil.upn,
            created_at=now(),
            legal_forename=tidy_name(pupil.legal_forename),
            legal_surname=tidy_name(pupil.legal_surname),
            date_of_birth=pupil.date_of_birth,
        )
        session.add(row)
    # The legal names and date of birth stay as first recorded: ``find_pupil`` has checked that the
    # form agrees with them, and a form that spells them another way ("O’Brien" for "O'Brien") must
    # not move the pupil's letters to a new folder. Only ``senforms pupil fix`` changes them.
    if row.roll_updated_at is not None:
        # The school's roll (``senforms pupils import``) is the current word on year group, class,
        # preferred name and contacts; a form, often filled weeks before it is dropped in, only
        # fills what the roll left empty.
        row.preferred_name = row.preferred_name or (tidy_name(pupil.preferred_name) if pupil.preferred_name else None)
        row.class_name = row.class_name or pupil.class_name
        if not row.parents:
            row.parents = _parents(pupil)
        else:
            # The roll rarely says how a parent likes to be contacted (SIMS has no such column),
            # and may lack an e-mail or phone: the form's answer for the same person fills it.
            # Only what the roll left empty, and only for the same person, never by position.
            for contact in row.parents:
                for key, value in contact_filled(contact, pupil.parents).items():
                    setattr(contact, key, value)
        _flush_new(session, row)
        return row
    row.preferred_name = tidy_name(pupil.preferred_name) if pupil.preferred_name else None
    row.year_group = pupil.year_group.value
    row.class_name = pupil.class_name
    if pupil.parents and _contact_rows(row.parents) != _contact_rows(wanted := _parents(pupil)):
        # Replaced only when they changed: most forms name the same parents as the last one.
        row.parents = wanted
    _flush_new(session, row)
    return row


def _flush_new(session: Session, row: t.Pupil) -> None:
    """A new pupil is written at once, for its id; changes to one already on record are written
    with the form that comes next (one flush, not two). ``updated_at`` says when the pupil's
    details last changed: most forms repeat them, and then the pupil's row is not written at all."""
    if row.id is None:
        row.updated_at = now()
        session.flush()
    elif session.is_modified(row) or any(session.is_modified(contact) for contact in row.parents):
        row.updated_at = now()


#: Titles a school roll puts before a contact's name ("Mrs Rachel Hart") that a form often leaves off.
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir", "lady"})


def _person_key(name: str | None) -> str:
    words = name_key(name).replace(".", " ").split()
    if len(words) > 1 and words[0] in _TITLES:
        words = words[1:]
    return " ".join(words)


def same_parent(name: str | None, parents: Sequence[kinds.Parent]) -> kinds.Parent | None:
    """The form's parent who is the person ``name`` (a contact from the roll): the same name as
    ``same_name`` compares them, with or without a title before it. None when no one matches, or
    when two do (never a guess)."""
    key = _person_key(name)
    if not key:
        return None
    found = [p for p in parents if _person_key(p.name) == key]
    return found[0] if len(found) == 1 else None


def _contact_rows(parents: list[t.Parent]) -> list[tuple[object, ...]]:
    return [(p.position, p.name, p.relation, p.address, p.email, p.phone, p.preferred_contact) for p in parents]


def contact_filled(contact: t.Parent, form_parents: Sequence[kinds.Parent]) -> dict[str, str | None]:
    """A roll contact's address, e-mail, phone and preferred contact, with what the roll left
    empty taken from the form's parent who is the same person (``same_parent``). What the roll
    gave is never replaced. One rule for the archive (``save_pupil``) and for the letters written
    before it is saved (``roll.rolled_pupil``)."""
    given = same_parent(contact.name, form_parents)
    return {
        "address": contact.address or (given.address if given else None),
        "email": contact.email or (given.email if given else None),
        "phone": contact.phone or (given.phone if given else None),
        "preferred_contact": contact.preferred_contact
        or (given.preferred_contact.value if given and given.preferred_contact else None),
    }


def _parents(pupil: kinds.Pupil) -> list[t.Parent]:
    return [
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


# --- history: what the rules need to know of the past -------------------------------------------


def current_forms(session: Session, pupil_id: int) -> list[tuple[t.ReceivedForm, kinds.FormModel]]:
    """A pupil's forms that no correction has replaced, oldest meeting first, with their models."""
    rows = session.scalars(_CURRENT_FORMS, {"pupil_id": pupil_id}).all()
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
    # Written at once with a plain INSERT: nothing reads an event back in the transaction that
    # logs it, and the ORM's unit of work would spend more than the insert itself on each.
    session.execute(_LOG, {"at": now(), "upn": upn, "form_id": form_id, "action": action, "detail": detail})
