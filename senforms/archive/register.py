"""The SEND register: every pupil now on SEN support, with the census codes of their needs."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from senforms.archive import tables as t

#: Where the living copy of the register sits in the outbox.
REGISTER_PATH = "senco/SEND register.csv"


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
