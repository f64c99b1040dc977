"""Correcting who a pupil is in the archive: ``senforms pupil fix``.

Forms never change a pupil's UPN, legal name or date of birth (``store.find_pupil`` sets aside a
form that disagrees); a person who has checked the school's records does, here. Each change is
written to the event log with its old and new values, under the pupil's UPN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic_core import PydanticCustomError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.archive.store import Archive, log, now
from senforms.config import Settings
from senforms.errors import ExitCode, SenformsError
from senforms.values import clean_text, format_uk_date, parse_uk_date, parse_upn, tidy_name


class PupilFixError(SenformsError):
    """A correction that cannot be made as asked."""

    exit_code = ExitCode.bad_args
    advice = "Check the details against the school's records and run the command again."


class NoSuchPupilError(PupilFixError):
    exit_code = ExitCode.identity_conflict
    advice = "Check the UPN against the school's records: it is the pupil's UPN as the archive has it now."


class UpnTakenError(PupilFixError):
    exit_code = ExitCode.identity_conflict
    advice = (
        "Two records cannot share a UPN. Check both pupils against the school's records; if they are one "
        "child, ask whoever looks after senforms to merge the records."
    )


class NothingToFixError(PupilFixError):
    advice = "Give at least one of --upn, --legal-forename, --legal-surname or --date-of-birth with a new value."


class BadValueError(PupilFixError):
    """A new value that a form would not accept either (not a UPN, not a date, blank)."""


@dataclass(frozen=True)
class Change:
    what: str  # "UPN", "legal first name", "legal surname", "date of birth"
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.what} changed from {self.old} to {self.new}"


@dataclass(frozen=True)
class Fixed:
    upn: str  # the pupil's UPN after the fix
    changes: list[Change]


def _value(option: str, parse: Callable[[Any], Any], raw: Any) -> Any:
    try:
        return parse(raw)
    except PydanticCustomError as exc:
        raise BadValueError(f"{option}: {exc.message()}.") from None


def _name(option: str, raw: str) -> str:
    name = tidy_name(clean_text(raw))
    if not name:
        raise BadValueError(f"{option} cannot be blank.")
    return name


def fix_pupil(
    session: Session,
    upn: str,
    *,
    new_upn: str | None = None,
    legal_forename: str | None = None,
    legal_surname: str | None = None,
    date_of_birth: str | date | None = None,
) -> Fixed:
    """Correct the archive's pupil with ``upn`` (their current UPN, or their former one). A new
    UPN takes the place of the old, which is kept as the former UPN, so forms that give either
    are filed to this pupil. Returns the changes made; raises a ``PupilFixError``."""
    wanted = _value("UPN", parse_upn, upn)
    row = session.scalar(select(t.Pupil).where(t.Pupil.upn == wanted))
    if row is None:
        row = session.scalar(select(t.Pupil).where(t.Pupil.former_upn == wanted))
    if row is None:
        raise NoSuchPupilError(f"There is no pupil with UPN {wanted} in the archive.")
    changes: list[Change] = []
    if legal_forename is not None:
        name = _name("--legal-forename", legal_forename)
        if name != row.legal_forename:
            changes.append(Change("legal first name", row.legal_forename, name))
            row.legal_forename = name
    if legal_surname is not None:
        name = _name("--legal-surname", legal_surname)
        if name != row.legal_surname:
            changes.append(Change("legal surname", row.legal_surname, name))
            row.legal_surname = name
    if date_of_birth is not None:
        born = _value("--date-of-birth", parse_uk_date, date_of_birth)
        if born is None:
            raise BadValueError("--date-of-birth cannot be blank.")
        if born != row.date_of_birth:
            changes.append(Change("date of birth", format_uk_date(row.date_of_birth), format_uk_date(born)))
            row.date_of_birth = born
    if new_upn is not None:
        replacement = _value("--upn", parse_upn, new_upn)
        if replacement != row.upn:
            other = session.scalar(
                select(t.Pupil).where(
                    t.Pupil.id != row.id, or_(t.Pupil.upn == replacement, t.Pupil.former_upn == replacement)
                )
            )
            if other is not None:
                whose = "UPN" if other.upn == replacement else "former UPN"
                raise UpnTakenError(
                    f"UPN {replacement} is already the {whose} of another pupil in the archive (UPN {other.upn}), "
                    f"so it cannot be given to the pupil with UPN {row.upn}."
                )
            changes.append(Change("UPN", row.upn, replacement))
            row.former_upn, row.upn = row.upn, replacement
    if not changes:
        raise NothingToFixError(f"Nothing to change: the archive already has these details for UPN {row.upn}.")
    row.updated_at = now()
    for change in changes:
        detail = str(change) + (f" ({change.old} kept as the former UPN)" if change.what == "UPN" else "")
        log(session, "pupil fixed", detail, upn=row.upn)
    session.flush()
    return Fixed(row.upn, changes)


def fix_in_home(settings: Settings, upn: str, **details: str | None) -> Fixed:
    """``fix_pupil`` on the home folder's archive, for ``senforms pupil fix``. The SEND register
    in the outbox shows UPNs and names, so it is written again when the pupil is on it."""
    from senforms.archive.register import ON_REGISTER, write_register

    archive = Archive(settings.database_url)
    try:
        with archive.session() as session:
            fixed = fix_pupil(session, upn, **details)
            on_register = session.scalar(
                select(t.SenStatus.id)
                .join(t.Pupil, t.Pupil.id == t.SenStatus.pupil_id)
                .where(
                    t.Pupil.upn == fixed.upn, t.SenStatus.end_date.is_(None), t.SenStatus.provision.in_(ON_REGISTER)
                )
            )
        if on_register is not None:
            # Read and written under the register's lock, in a transaction of its own.
            with archive.session() as session:
                write_register(session, settings.outbox, settings.today(), only_if_present=True)
    finally:
        archive.close()
    return fixed
