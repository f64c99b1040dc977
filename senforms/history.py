"""A pupil's history as the rules see it: their current forms, oldest first, as validated models.

Pure data, built by the archive (``archive.store.history``) and read by the rules and the letter
context, so the rules never need the database to know what happened before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from senforms.kinds import EarlyDiscussion, FormModel, ParentMeeting, ReviewRecord, SupportPlan
from senforms.values import fold_outcome


@dataclass
class CycleRecord:
    """One round of plan, do and review."""

    number: int
    plan: SupportPlan | None = None
    review: ReviewRecord | None = None


@dataclass(frozen=True)
class History:
    """A pupil's current forms (no correction has replaced them), oldest meeting first."""

    forms: tuple[FormModel, ...] = field(default_factory=tuple)

    def with_form(self, form: FormModel) -> History:
        """This history with one more form in it (the one being processed)."""
        return History((*self.forms, form))

    @property
    def early(self) -> list[EarlyDiscussion]:
        return [f for f in self.forms if isinstance(f, EarlyDiscussion)]

    @property
    def meetings(self) -> list[ParentMeeting]:
        return [f for f in self.forms if isinstance(f, ParentMeeting)]

    @property
    def cycles(self) -> dict[int, CycleRecord]:
        found: dict[int, CycleRecord] = {}
        for form in self.forms:
            if isinstance(form, SupportPlan):
                found.setdefault(form.cycle, CycleRecord(form.cycle)).plan = form
            elif isinstance(form, ReviewRecord):
                found.setdefault(form.cycle, CycleRecord(form.cycle)).review = form
        return found

    def reviews_before(self, cycle: int) -> list[ReviewRecord]:
        return [c.review for n, c in sorted(self.cycles.items()) if n < cycle and c.review]

    def ratings_of(self, description: str, *, up_to_cycle: int) -> list[tuple[ReviewRecord, str]]:
        """Every review up to ``up_to_cycle`` that rated this outcome, with the rating's words.
        Outcomes are matched across cycles by ``fold_outcome``, the one matching used everywhere."""
        key = fold_outcome(description)
        found = []
        for review in self.reviews_before(up_to_cycle + 1):
            for outcome in review.outcomes:
                if fold_outcome(outcome.description) == key:
                    found.append((review, outcome.rating.label))
        return found
