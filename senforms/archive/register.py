"""The SEND register: every pupil now on SEN support, with the census codes of their needs."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from senforms.archive import tables as t

#: Where the living copy of the register sits in the outbox.
REGISTER_PATH = "senco/SEND register.csv"


HEADER = ["UPN", "Surname", "First name", "Year", "Class", "SEN provision", "Primary need", "Secondary need", "Since"]


def register_csv(session: Session) -> bytes:
    """The SEND register: every pupil now on SEN support, with census codes."""
    return _csv(session, None)


def register_change_csv(session: Session, pupil_id: int) -> bytes:
    """What one decision changed in the register: the pupil's row as it is now, or, when the
    pupil has left SEN support, their row with provision "N" and the date they left.

    This is what the archive keeps for each register version (a few hundred bytes), not a copy
    of the whole register: copies grew with the school (122 MB of a 463 MB archive after 2,000
    forms, issue 9.7). The whole register is always derived from the SEN status rows
    (``register_csv``), which keep every version with its start and end dates."""
    data = _csv(session, pupil_id)
    if data.count(b"\n") > 1:
        return data
    ended = session.execute(
        select(t.Pupil, t.SenStatus)
        .join(t.SenStatus, t.SenStatus.pupil_id == t.Pupil.id)
        .where(t.Pupil.id == pupil_id, t.SenStatus.end_date.is_not(None))
        .order_by(t.SenStatus.end_date.desc(), t.SenStatus.id.desc())
    ).first()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    if ended is not None:
        pupil, status = ended
        writer.writerow(
            [
                pupil.upn,
                pupil.legal_surname,
                pupil.legal_forename,
                pupil.year_group,
                pupil.class_name or "",
                "N",
                "",
                "",
                status.end_date.isoformat() if status.end_date else "",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _csv(session: Session, pupil_id: int | None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    query = (
        select(t.Pupil, t.SenStatus)
        .join(t.SenStatus, t.SenStatus.pupil_id == t.Pupil.id)
        .where(t.SenStatus.end_date.is_(None), t.SenStatus.provision == "K")
        .order_by(t.Pupil.legal_surname, t.Pupil.legal_forename)
    )
    if pupil_id is not None:
        query = query.where(t.Pupil.id == pupil_id)
    rows = session.execute(query).all()
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
