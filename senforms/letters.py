"""Every letter and document senforms writes from a template, declared once.

Each ``Letter`` names its template (``templates/letters/<name>.docx``), who it is for, its title
(the file name in the outbox), the paragraph of the SEND Code of Practice it serves, and which
form kind, and which of that form's decisions, issue it. The rules issue letters from here, the
renderer and ``check-templates`` find their templates and sample data from here, and the table in
``templates/letters/README.md`` is written from here (a test keeps it current).

The SENCO's evidence for an EHC needs assessment request is not a letter: it is the evidence pack
(``senforms.reports.evidence``), built from the archive when the review is filed. It replaced the
letter "evidence-summary", so the SENCO gets one evidence document, not two that could disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Audience(StrEnum):
    """Who a document is for; also the outbox folder it is delivered to."""

    PARENTS = "parents"
    SENCO = "senco"
    STAFF = "staff"

    @property
    def words(self) -> str:
        return {"parents": "parents", "senco": "the SENCO", "staff": "staff who work with the pupil"}[self.value]


@dataclass(frozen=True)
class Letter:
    name: str  # the template's file name without .docx
    audience: Audience
    title: str  # the document's title, and its file name in the outbox
    code: str  # the paragraph(s) of the SEND Code of Practice 2015 it serves
    kind: str  # the form kind whose answers the template receives as ``form``; "" for a letter issued by date
    when: str  # when it is written, in words, for the README
    decisions: tuple[str, ...] = ()  # the form's decisions that issue it; empty: every form of the kind

    @property
    def filename(self) -> str:
        return f"{self.name}.docx"

    def issued_by(self, form: Any, kind: str) -> bool:
        """Whether a validated form of ``kind`` issues this letter by its kind and decision alone.
        (A rule may add a condition of its own, such as the specialist prompt's streak.)"""
        if kind != self.kind:
            return False
        if not self.decisions:
            return True
        decision = getattr(form, "decision", None)
        return decision is not None and str(decision.value) in self.decisions


EARLY_DISCUSSION_NOTE = Letter(
    "early-discussion-note",
    Audience.PARENTS,
    "Note of our early discussion",
    "6.45-6.47",
    "early-discussion",
    "an early discussion note is processed",
)
SEN_NOTIFICATION = Letter(
    "sen-notification",
    Audience.PARENTS,
    "Formal notification of SEN support",
    "6.48",
    "early-discussion",
    "the early discussion decided on SEN support: the formal notice that the school is making special "
    "educational provision",
    decisions=("sen-support",),
)
SEN_NOTIFICATION_WITH_PLAN = Letter(
    "sen-notification-with-plan",
    Audience.PARENTS,
    "Formal notification of SEN support",
    "6.48",
    "support-plan",
    "a support plan puts a pupil on SEN support who was not on it (their last early discussion decided "
    "to monitor, or their support had ended): the formal notice, as the early discussion would have sent it",
)
PLAN_PARENT_COPY = Letter(
    "plan-parent-copy",
    Audience.PARENTS,
    "Your child's SEN support plan",
    "6.51",
    "support-plan",
    "a support plan is processed: covering letter and the plan",
)
STAFF_BRIEFING = Letter(
    "staff-briefing",
    Audience.STAFF,
    "Staff briefing",
    "6.49",
    "support-plan",
    "a support plan is processed: one page",
)
REVIEW_OUTCOME = Letter(
    "review-outcome",
    Audience.PARENTS,
    "Review of SEN support",
    "6.55, 6.71",
    "review",
    "a review record is processed: letter and record of the discussion",
)
SPECIALIST_LETTER = Letter(
    "specialist-letter",
    Audience.PARENTS,
    "Involving a specialist",
    "6.58-6.59",
    "review",
    "a review decided to involve a specialist: asks for the parents' agreement",
    decisions=("specialist",),
)
SEN_SUPPORT_ENDED = Letter(
    "sen-support-ended",
    Audience.PARENTS,
    "SEN support is ending",
    "6.44, 6.48",
    "review",
    "a review decided to end SEN support",
    decisions=("end",),
)
EHC_REQUEST = Letter(
    "ehc-request",
    Audience.PARENTS,
    "Asking for an EHC needs assessment",
    "6.63; chapter 9 (9.14, 9.40)",
    "review",
    "a review decided to request an EHC needs assessment: what it is, the council's time limits, "
    "the parents' own right to ask, and where to get advice",
    decisions=("ehc",),
)
SPECIALIST_PROMPT = Letter(
    "specialist-prompt",
    Audience.SENCO,
    "Consider involving a specialist",
    "6.58-6.59",
    "review",
    'an outcome was rated "Not achieved" at two reviews in a row',
)
PARENT_MEETING_NOTE = Letter(
    "parent-meeting-note",
    Audience.PARENTS,
    "Note of our meeting",
    "6.65, 6.71",
    "parent-meeting",
    "a note of a meeting with parents is processed: what was discussed and the actions agreed",
)
ANNUAL_REPORT = Letter(
    "annual-report",
    Audience.PARENTS,
    "Annual report on SEN support",
    "6.64",
    "",  # no form issues it: the daily round does, on the day set in senforms.toml ([reports] annual_report)
    "once a year, on the day set in senforms.toml, for each pupil on SEN support: the year's plans, "
    "each outcome with its ratings, the support given, meetings and what comes next; one copy per household",
)

LETTERS: dict[str, Letter] = {
    letter.name: letter
    for letter in (
        EARLY_DISCUSSION_NOTE,
        SEN_NOTIFICATION,
        SEN_NOTIFICATION_WITH_PLAN,
        PLAN_PARENT_COPY,
        STAFF_BRIEFING,
        REVIEW_OUTCOME,
        SPECIALIST_LETTER,
        SEN_SUPPORT_ENDED,
        EHC_REQUEST,
        SPECIALIST_PROMPT,
        PARENT_MEETING_NOTE,
        ANNUAL_REPORT,
    )
}

README_TABLE_START = "<!-- letters table: written from senforms/letters.py -->"
README_TABLE_END = "<!-- end of letters table -->"


def readme_table() -> str:
    """The table of letters in ``templates/letters/README.md``."""
    lines = ["| file | who it is for | made when | Code of Practice |", "| --- | --- | --- | --- |"]
    for letter in LETTERS.values():
        lines.append(f"| `{letter.filename}` | {letter.audience.words} | {letter.when} | {letter.code} |")
    return "\n".join([README_TABLE_START, *lines, README_TABLE_END])
