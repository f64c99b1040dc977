"""When each pupil's record is due for review for destruction, and which records are due now.

School practice (the IRMS toolkit, as SENCOs report it; /work/shared/domain.md, "Retention"):
the pupil's last school keeps the SEN file until the date of birth plus 31 years (``[retention]
years_after_birth`` in senforms.toml), then reviews it; a school that loses the pupil passes the
file to the next school rather than keeping it, so once the file is passed on this school's copy
is for review at once. A legal hold stops any destruction while it applies. senforms only ever
lists what is due: it deletes nothing, and has no command that would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from senforms.archive import tables as t
from senforms.config import Settings
from senforms.values import format_uk_date


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later; 29 February becomes 28 February in a year without one."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Retention:
    review_on: date
    reason: str
    due: bool
    hold_reason: str | None = None

    @property
    def held(self) -> bool:
        return self.hold_reason is not None

    def sentence(self) -> str:
        when = "due now" if self.due else f"on {format_uk_date(self.review_on)}"
        text = f"review for destruction {when}: {self.reason}"
        if self.held:
            text += f". HELD ({self.hold_reason}): not to be destroyed while the hold applies"
        return text


def retention_of(
    date_of_birth: date,
    years: int,
    *,
    left_on: date | None,
    left_to: str | None,
    file_passed_on: bool,
    hold_reason: str | None,
    today: date,
) -> Retention:
    if file_passed_on and left_on is not None:
        where = f" to {left_to}" if left_to else ""
        return Retention(
            left_on,
            f"the file was passed on{where} on {format_uk_date(left_on)}, so the record is the next "
            "school's to keep; review this school's copy now",
            left_on <= today,
            hold_reason,
        )
    review_on = add_years(date_of_birth, years)
    reason = f"date of birth {format_uk_date(date_of_birth)} plus {years} years"
    if left_on is not None:
        where = f" to {left_to}" if left_to else ""
        reason += (
            f"; the pupil left{where} on {format_uk_date(left_on)} and the file has not been marked as passed "
            "on (Code of Practice 6.57: share it with the next school)"
        )
    return Retention(review_on, reason, review_on <= today, hold_reason)


@dataclass(frozen=True)
class ReviewItem:
    upn: str
    name: str
    date_of_birth: date
    retention: Retention


def due_for_review(session: Session, *, years: int, today: date) -> list[ReviewItem]:
    """Every record due for review on ``today``, the longest overdue first; held ones included,
    marked held. Two indexed queries: by date of birth, and the few whose file was passed on."""
    cutoff = add_years(today, -years)
    by_age = select(t.Pupil).where(t.Pupil.date_of_birth <= cutoff)
    passed = select(t.Pupil).where(t.Pupil.file_passed_on.is_(True), t.Pupil.left_on <= today)
    rows = {p.id: p for query in (by_age, passed) for p in session.scalars(query)}
    items = []
    for p in rows.values():
        retention = retention_of(
            p.date_of_birth,
            years,
            left_on=p.left_on,
            left_to=p.left_to,
            file_passed_on=bool(p.file_passed_on),
            hold_reason=p.hold_reason,
            today=today,
        )
        if retention.due:
            items.append(ReviewItem(p.upn, f"{p.legal_forename} {p.legal_surname}", p.date_of_birth, retention))
    items.sort(key=lambda i: (i.retention.review_on, i.upn))
    return items


def retention_in_home(settings: Settings) -> list[ReviewItem]:
    from senforms.archive.store import Archive

    archive = Archive(settings.database_url)
    try:
        with archive.reading() as session:
            return due_for_review(session, years=settings.retention_years_after_birth, today=settings.today())
    finally:
        archive.close()
