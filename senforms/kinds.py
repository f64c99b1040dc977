"""The form kinds of the SEN support cycle, each declared once.

A kind's pydantic model *is* its declaration: the order of its fields is the order of rows on the
form, each field's ``title`` is the label printed beside it, and ``json_schema_extra`` carries the
few layout facts a model cannot (a section heading, a multi-line box, how many rows to pre-draw).
The Word form, the PDF form and the label-based reader all follow from it (see ``layout.py``).

To add a kind: declare its model here and add a ``FormKind`` to ``KINDS``; the forms, reading and
validation follow. What comes after a form of the kind, and its effect on the SEN register, is
declared once in ``rules.STEPS`` (a test checks that every kind has its entry).

Bump ``version`` whenever a field is added, removed or renamed, and keep the model as it was in
``earlier`` with a function that turns its answers into the next version's: forms already printed
and filled in must still be read (``FormKind.at_version`` and ``FormKind.upgrade``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from senforms.values import UPN, Choice, Money, NeedCode, Text, UKDate, WholeNumber, clean_text


def _optional_text(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value) or None
    return value


OptText = Annotated[str | None, BeforeValidator(_optional_text)]


def field(
    label: str,
    *,
    section: str | None = None,
    lines: int = 0,
    rows: int = 0,
    layout: str = "",
    help: str = "",
    default: Any = ...,
    **kwargs: Any,
) -> Any:
    """A form field: its printed label and the layout facts the model type cannot say."""
    extra: dict[str, Any] = {
        k: v for k, v in dict(section=section, lines=lines, rows=rows, layout=layout, help=help).items() if v
    }
    if rows and default is ...:
        default = []
    return Field(default, title=label, json_schema_extra=extra, **kwargs)


def problem_at(path: str, message: str) -> PydanticCustomError:
    """A cross-field problem that names the field it belongs to, so the form's label is shown."""
    return PydanticCustomError("senforms", message, {"field": path})


def _later_than(earlier_field: str, earlier_label: str):
    """A field validator: this date may not come before another date on the same form."""

    def check(cls: type, value: date | None, info: ValidationInfo) -> date | None:
        earlier = info.data.get(earlier_field)
        if value is not None and earlier is not None and value < earlier:
            raise PydanticCustomError(
                "senforms",
                f"{value:%d/%m/%Y} is before the {earlier_label} ({earlier:%d/%m/%Y}); check both dates",
            )
        return value

    return check


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: Any) -> Any:
    value = _optional_text(value)
    if value and not _EMAIL.match(value):
        raise PydanticCustomError("senforms", f"{value!r} does not look like an e-mail address")
    return value


class FormModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, frozen=True)


# --- choices ---------------------------------------------------------------------------------


class YearGroup(Choice):
    NURSERY = "N", "Nursery"
    RECEPTION = "R", "Reception"
    Y1 = "1", "Year 1"
    Y2 = "2", "Year 2"
    Y3 = "3", "Year 3"
    Y4 = "4", "Year 4"
    Y5 = "5", "Year 5"
    Y6 = "6", "Year 6"
    Y7 = "7", "Year 7"
    Y8 = "8", "Year 8"
    Y9 = "9", "Year 9"
    Y10 = "10", "Year 10"
    Y11 = "11", "Year 11"
    Y12 = "12", "Year 12"
    Y13 = "13", "Year 13"


class ContactBy(Choice):
    LETTER = "letter", "Letter"
    EMAIL = "email", "E-mail"
    PHONE = "phone", "Phone"


class EarlyDecision(Choice):
    SEN_SUPPORT = "sen-support", "SEN support"
    MONITOR = "monitor", "Monitor and meet again"
    NO_SEN = "no-sen", "No SEN"


class Rating(Choice):
    ACHIEVED = "achieved", "Achieved"
    PARTLY = "partly", "Partly achieved"
    NOT_ACHIEVED = "not-achieved", "Not achieved"


class ReviewDecision(Choice):
    CONTINUE = "continue", "Continue the plan"
    REVISE = "revise", "Revise outcomes or provision"
    SPECIALIST = "specialist", "Involve a specialist"
    EHC = "ehc", "Request an EHC needs assessment"
    END = "end", "End SEN support"


class EndReason(Choice):
    """Why SEN support ends (review version 2): the letter to parents gives this reason and no other."""

    PROGRESS = "progress", "Enough progress"
    EHC_PLAN = "ehc-plan", "Moving to an EHC plan"
    LEAVING = "leaving", "Leaving the school"
    PARENTS = "parents", "Parents' request"
    OTHER = "other", "Other (say why)"


# --- the pupil -------------------------------------------------------------------------------


class Parent(FormModel):
    name: Text = field("Name")
    relationship: OptText = field("Relationship to the pupil", default=None)
    address: OptText = field("Address", lines=3, default=None)
    email: Annotated[str | None, BeforeValidator(_email)] = field("E-mail", default=None)
    phone: OptText = field("Phone", default=None)
    preferred_contact: ContactBy | None = field("Preferred contact", default=None)


class Pupil(FormModel):
    upn: UPN = field("UPN", help="13 characters, from the school's records")
    legal_forename: Text = field("Legal first name")
    legal_surname: Text = field("Legal surname")
    preferred_name: OptText = field("Preferred name", default=None)
    date_of_birth: UKDate = field("Date of birth")
    year_group: YearGroup = field("Year group")
    class_name: OptText = field("Class", default=None)
    parents: list[Parent] = field("Parent or carer", rows=2, layout="columns", max_length=2)

    @property
    def known_as(self) -> str:
        return self.preferred_name or self.legal_forename


class BroadAreas(FormModel):
    communication: bool = field("Communication and interaction", default=False)
    cognition: bool = field("Cognition and learning", default=False)
    semh: bool = field("Social, emotional and mental health", default=False)
    sensory_physical: bool = field("Sensory and/or physical", default=False)

    def names(self) -> list[str]:
        return [str(info.title) for name, info in type(self).model_fields.items() if getattr(self, name)]


class Outcome(FormModel):
    description: Text = field("Outcome", lines=2)
    success_criteria: OptText = field("Success criteria", lines=2, default=None)
    # Filled in by senforms when an outcome is carried forward from a review.
    last_rating: Rating | None = field("Progress at last review", default=None)


class ProvisionRow(FormModel):
    what: Text = field("Provision", lines=2)
    who: OptText = field("Delivered by", default=None)
    group_size: OptText = field("Group size", default=None)
    frequency: OptText = field("How often, how long", default=None)
    start_date: UKDate | None = field("Start date", default=None)
    weekly_cost: Money | None = field("Weekly cost (£)", default=None)


class OutcomeReview(FormModel):
    description: Text = field("Outcome", lines=2)
    rating: Rating = field("Progress")
    evidence: OptText = field("Evidence", lines=2, default=None)


class ProvisionImpact(FormModel):
    what: Text = field("Provision", lines=2)
    impact: OptText = field("Impact", lines=2, default=None)


# --- the three forms of the cycle --------------------------------------------------------------

_MEETING = "The meeting"
_NEEDS = "Needs"


class EarlyDiscussion(FormModel):
    """Assess (Code of Practice 6.45-6.47): the first talk with parents about a concern."""

    pupil: Pupil = field("About the pupil")
    meeting_date: UKDate = field("Date of meeting", section=_MEETING)
    attendees: Text = field("Who attended", section=_MEETING, lines=2)
    strengths: Text = field("The pupil's strengths", section="What we know", lines=3)
    difficulties: Text = field("Difficulties", section="What we know", lines=3)
    parent_concerns: OptText = field("Parents' concerns", section="What we know", lines=3, default=None)
    pupil_views: OptText = field("The pupil's own views", section="What we know", lines=3, default=None)
    areas: BroadAreas = field("Broad areas of need (tick all that apply)", default_factory=BroadAreas)
    primary_need: NeedCode | None = field("Primary need (census code)", section=_NEEDS, default=None)
    secondary_need: NeedCode | None = field("Secondary need (census code)", section=_NEEDS, default=None)
    outcomes_sought: Text = field("Outcomes sought", section="Agreed", lines=3)
    next_steps: Text = field("Agreed next steps", section="Agreed", lines=3)
    decision: EarlyDecision = field("Decision", section="Agreed")
    next_meeting_date: UKDate | None = field("Date of next meeting", section="Agreed", default=None)
    completed_by: Text = field("Completed by", section="Agreed")

    _next_after_meeting = field_validator("next_meeting_date")(_later_than("meeting_date", "date of meeting"))

    @field_validator("secondary_need")
    @classmethod
    def _secondary_differs(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and value == info.data.get("primary_need"):
            raise PydanticCustomError("senforms", "is the same as the primary need; leave it empty or choose another")
        return value

    @model_validator(mode="after")
    def _decision_needs(self) -> EarlyDiscussion:
        if self.decision is EarlyDecision.SEN_SUPPORT and not self.primary_need:
            raise problem_at(
                "primary_need", "the decision is SEN support, so choose a primary need for the SEN register"
            )
        if self.decision is EarlyDecision.MONITOR and self.next_meeting_date is None:
            raise problem_at(
                "next_meeting_date", "the decision is to monitor and meet again, so give the date of the next meeting"
            )
        return self


class SupportPlan(FormModel):
    """Plan (Code of Practice 6.48-6.51): outcomes, provision and the date of review."""

    pupil: Pupil = field("About the pupil")
    plan_date: UKDate = field("Date of plan", section="The plan")
    cycle: WholeNumber = field("Cycle number", section="The plan", ge=1, le=99)
    needs: Text = field("Summary of needs", section=_NEEDS, lines=3)
    primary_need: NeedCode = field("Primary need (census code)", section=_NEEDS)
    secondary_need: NeedCode | None = field("Secondary need (census code)", section=_NEEDS, default=None)
    outcomes: list[Outcome] = field("Outcomes", rows=6, layout="rows", max_length=6, min_length=1)
    provision: list[ProvisionRow] = field("Provision", rows=8, layout="rows", max_length=8, min_length=1)
    strategies: Text = field("Teaching strategies for all staff", section="How everyone helps", lines=4)
    home: OptText = field("What parents will do at home", section="How everyone helps", lines=3, default=None)
    pupil_views: OptText = field("The pupil's views", section="How everyone helps", lines=3, default=None)
    expected_impact: Text = field("Expected impact", section="How everyone helps", lines=3)
    review_date: UKDate = field("Review date", section="Review and agreement")
    class_teacher: Text = field("Class teacher", section="Review and agreement")
    senco: Text = field("SENCO", section="Review and agreement")
    parents_agree: bool = field("Parents or carers agree with this plan", section="Review and agreement", default=False)
    agreed_by: OptText = field("Parent or carer who agreed", section="Review and agreement", default=None)

    _review_after_plan = field_validator("review_date")(_later_than("plan_date", "date of plan"))

    @field_validator("secondary_need")
    @classmethod
    def _secondary_differs(cls, value: str | None, info: ValidationInfo) -> str | None:
        return EarlyDiscussion._secondary_differs(value, info)


class ReviewRecord(FormModel):
    """Review (Code of Practice 6.53-6.55, 6.58-6.63): progress, impact and what happens next.

    Version 2 adds what the letters need: who the specialist is and why they are involved (6.59),
    why SEN support is ending, and the agreed next steps. A form upgraded from version 1 never had
    those boxes, so they are required only of a form printed at version 2."""

    pupil: Pupil = field("About the pupil")
    review_date: UKDate = field("Date of review", section="The review")
    plan_date: UKDate = field("Date of the plan reviewed", section="The review")
    cycle: WholeNumber = field("Cycle number", section="The review", ge=1, le=99)
    attendees: Text = field("Who attended", section="The review", lines=2)
    outcomes: list[OutcomeReview] = field("Progress on outcomes", rows=6, layout="rows", max_length=6, min_length=1)
    provision: list[ProvisionImpact] = field("Impact of provision", rows=8, layout="rows", max_length=8)
    pupil_views: OptText = field("The pupil's views", section="Views", lines=3, default=None)
    parent_views: OptText = field("Parents' views", section="Views", lines=3, default=None)
    staff_views: OptText = field("Staff views", section="Views", lines=3, default=None)
    decision: ReviewDecision = field("Decision", section="Next steps")
    specialist: OptText = field(
        "Specialist to involve (service or role)",
        section="Next steps",
        help="Only if the decision is to involve a specialist, e.g. Educational psychologist",
        default=None,
    )
    specialist_reason: OptText = field("Why we are asking the specialist", section="Next steps", lines=2, default=None)
    end_reason: EndReason | None = field(
        "Why SEN support is ending",
        section="Next steps",
        help="Only if the decision is to end SEN support",
        default=None,
    )
    end_reason_words: OptText = field("The reason in words (if Other)", section="Next steps", lines=2, default=None)
    next_steps: OptText = field("Agreed next steps", section="Next steps", lines=3, default=None)
    next_review_date: UKDate | None = field("Next review date", section="Next steps", default=None)

    _plan_before_review = field_validator("review_date")(_later_than("plan_date", "date of the plan reviewed"))

    _next_after_review = field_validator("next_review_date")(_later_than("review_date", "date of review"))

    @model_validator(mode="after")
    def _next_review_unless_ending(self) -> ReviewRecord:
        if self.next_review_date is None and self.decision is not ReviewDecision.END:
            raise problem_at("next_review_date", "this must be filled in unless SEN support is ending")
        return self

    @model_validator(mode="after")
    def _decision_needs(self, info: ValidationInfo) -> ReviewRecord:
        if info.context and info.context.get("upgraded_from"):
            return self  # printed before these boxes existed: the letters say only what it gives
        if self.decision is ReviewDecision.END:
            if self.end_reason is None:
                raise problem_at("end_reason", "the decision is to end SEN support, so choose the reason")
            if self.end_reason is EndReason.OTHER and not self.end_reason_words:
                raise problem_at("end_reason_words", "the reason for ending is Other, so write the reason here")
            if not self.next_steps:
                raise problem_at("next_steps", "SEN support is ending, so write what happens next")
        if self.decision is ReviewDecision.SPECIALIST:
            if not self.specialist:
                raise problem_at("specialist", "the decision is to involve a specialist, so say which service or role")
            if not self.specialist_reason:
                raise problem_at("specialist_reason", "the decision is to involve a specialist, so say why")
        return self


class ReviewRecordV1(FormModel):
    """The review record as printed at version 1 (before the reasons and next steps): kept as it was,
    so forms printed then are still read (``KINDS["review"].earlier``)."""

    pupil: Pupil = field("About the pupil")
    review_date: UKDate = field("Date of review", section="The review")
    plan_date: UKDate = field("Date of the plan reviewed", section="The review")
    cycle: WholeNumber = field("Cycle number", section="The review", ge=1, le=99)
    attendees: Text = field("Who attended", section="The review", lines=2)
    outcomes: list[OutcomeReview] = field("Progress on outcomes", rows=6, layout="rows", max_length=6, min_length=1)
    provision: list[ProvisionImpact] = field("Impact of provision", rows=8, layout="rows", max_length=8)
    pupil_views: OptText = field("The pupil's views", section="Views", lines=3, default=None)
    parent_views: OptText = field("Parents' views", section="Views", lines=3, default=None)
    staff_views: OptText = field("Staff views", section="Views", lines=3, default=None)
    decision: ReviewDecision = field("Decision", section="Next steps")
    next_review_date: UKDate | None = field("Next review date", section="Next steps", default=None)

    _plan_before_review = field_validator("review_date")(_later_than("plan_date", "date of the plan reviewed"))

    _next_after_review = field_validator("next_review_date")(_later_than("review_date", "date of review"))

    @model_validator(mode="after")
    def _next_review_unless_ending(self) -> ReviewRecordV1:
        if self.next_review_date is None and self.decision is not ReviewDecision.END:
            raise problem_at("next_review_date", "this must be filled in unless SEN support is ending")
        return self


class AgreedAction(FormModel):
    action: Text = field("Action", lines=2)
    who: OptText = field("Who", default=None)
    by_when: UKDate | None = field("By when", default=None)


class ParentMeeting(FormModel):
    """A meeting with parents between plans and reviews (Code of Practice 6.65: schools should meet
    parents at least three times a year; 6.71: a record of what was discussed and agreed)."""

    pupil: Pupil = field("About the pupil")
    meeting_date: UKDate = field("Date of meeting", section=_MEETING)
    attendees: Text = field("Who attended", section=_MEETING, lines=2)
    discussed: Text = field("What was discussed", section="The discussion", lines=4)
    parent_views: OptText = field("Parents' views", section="The discussion", lines=3, default=None)
    pupil_views: OptText = field("The pupil's views", section="The discussion", lines=3, default=None)
    actions: list[AgreedAction] = field("Agreed actions", rows=6, layout="rows", max_length=6)
    next_meeting_date: UKDate | None = field("Date of next meeting", section="Next meeting", default=None)
    completed_by: Text = field("Completed by", section="Next meeting")

    _next_after_meeting = field_validator("next_meeting_date")(_later_than("meeting_date", "date of meeting"))


Answers = dict[str, Any]


@dataclass(frozen=True)
class Version:
    """A kind as it was printed at an earlier version: its model, and how its answers become the
    next version's answers (a new field left empty, a renamed one moved, a removed one dropped)."""

    number: int
    model: type[FormModel]
    to_next: Callable[[Answers], Answers]


class UnknownFormVersion(LookupError):
    """A kind's version that this installation has never known."""


@dataclass(frozen=True)
class FormKind:
    slug: str
    title: str
    version: int
    model: type[FormModel]
    meeting_date: str
    guidance: str
    earlier: tuple[Version, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.slug}.docx"

    @property
    def versions(self) -> tuple[int, ...]:
        return (*sorted(v.number for v in self.earlier), self.version)

    def at_version(self, number: int) -> FormKind:
        """The kind as printed at ``number``, for reading and validating a form printed then.
        Its ``upgrade`` still leads to the current version."""
        if number == self.version:
            return self
        for old in self.earlier:
            if old.number == number:
                return replace(self, version=number, model=old.model)
        raise UnknownFormVersion(number)

    def upgrade(self, answers: Answers, number: int) -> FormModel:
        """Answers of version ``number`` (a model's JSON data) as a model of the current version."""
        current = KINDS[self.slug]
        for old in sorted(current.earlier, key=lambda v: v.number):
            if old.number >= number:
                answers = old.to_next(answers)
        # An upgraded form is told so: a box added since it was printed cannot be required of it.
        context = {"upgraded_from": number} if number < current.version else None
        return current.model.model_validate(answers, context=context)


KINDS: dict[str, FormKind] = {
    kind.slug: kind
    for kind in (
        FormKind(
            slug="early-discussion",
            title="Early discussion note",
            version=1,
            model=EarlyDiscussion,
            meeting_date="meeting_date",
            guidance=(
                "For the first meeting with parents or carers about a concern. The class teacher and "
                "SENCO fill it in together with the family, and the pupil's views are asked for. Type "
                "in the grey boxes; leave a box empty if it does not apply. Dates like 12/03/2026."
            ),
        ),
        FormKind(
            slug="support-plan",
            title="SEN support plan",
            version=1,
            model=SupportPlan,
            meeting_date="plan_date",
            guidance=(
                "Agree this plan with the pupil's parents or carers and, where possible, the pupil. "
                "Write outcomes that can be checked at the review, one per row, and one row for each "
                "kind of support. Type in the grey boxes. Dates like 12/03/2026."
            ),
        ),
        FormKind(
            slug="review",
            title="SEN support review record",
            version=2,
            model=ReviewRecord,
            meeting_date="review_date",
            guidance=(
                "Fill this in at the review meeting with the parents or carers and the pupil. For each "
                "outcome choose how much progress was made and say what shows it. Type in the grey "
                "boxes. Dates like 12/03/2026."
            ),
            # Version 2 added the specialist, the reason for ending and the next steps: a
            # version 1 form simply has none of them.
            earlier=(Version(1, ReviewRecordV1, dict),),
        ),
        FormKind(
            slug="parent-meeting",
            title="Note of a meeting with parents",
            version=1,
            model=ParentMeeting,
            meeting_date="meeting_date",
            guidance=(
                "For a meeting with the pupil's parents or carers between the plan and the review. Write "
                "what was talked about, and one row for each action agreed: what, who and by when. "
                "Type in the grey boxes. Dates like 12/03/2026."
            ),
        ),
    )
}


def kind_of(form: FormModel) -> FormKind:
    """The kind of a validated form (of the current version); ``LookupError`` for anything else."""
    for kind in KINDS.values():
        if type(form) is kind.model:
            return kind
    raise LookupError(f"{type(form).__name__} is not a form kind senforms knows")
