"""One outcome, copied from one plan to the next with its words a little changed (case, spacing,
a curly apostrophe, a comma, "&" for "and"), is one outcome everywhere senforms follows it across
cycles: the rules' "not achieved" streak, the evidence pack's chart, the annual report and the
carried-forward plan. All of them match by ``senforms.values.fold_outcome``; this test fails if
any of them starts matching in its own way."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from senforms import rules
from senforms.context import annual_report_context
from senforms.documents import _sample_settings
from senforms.history import History
from senforms.reports import evidence
from senforms.values import fold_outcome
from tests.test_letters_content import ELLA, plan, review

FIRST = "Ella's words: she will learn five new topic words and use them each week."
# As retyped on the next plan: curly apostrophe, capitals, a comma, double spaces, "&".
AGAIN = "ELLA’S WORDS:  she will learn five new topic words & use them, each week"


def _review(cycle: int, text: str, on: str, plan_on: str) -> Any:
    return review(
        cycle=cycle,
        plan_date=plan_on,
        review_date=on,
        next_review_date="2026-12-10",
        outcomes=[{"description": text, "rating": "not-achieved", "evidence": f"Cycle {cycle}: 2 of 5 words."}],
    )


@pytest.fixture
def forms() -> list[Any]:
    return [
        plan(cycle=1, plan_date="2025-11-20", review_date="2026-03-12", outcomes=[{"description": FIRST}]),
        _review(1, FIRST, "2026-03-12", "2025-11-20"),
        plan(cycle=2, plan_date="2026-03-13", review_date="2026-06-25", outcomes=[{"description": AGAIN}]),
        _review(2, AGAIN, "2026-06-25", "2026-03-13"),
    ]


def test_the_two_wordings_fold_to_one_and_a_different_outcome_does_not() -> None:
    assert fold_outcome(FIRST) == fold_outcome(AGAIN)
    assert fold_outcome(FIRST) != fold_outcome("Ella will learn five new topic words each day.")


def test_the_rules_see_one_streak(forms: list[Any]) -> None:
    flags = rules.not_achieved_twice(forms[-1], History(tuple(forms[:-1])))
    assert len(flags) == 1 and len(flags[0].ratings) == 2 and flags[0].new


def test_the_next_plan_carries_the_rating_forward(forms: list[Any]) -> None:
    values = rules.next_plan(forms[-1], History(tuple(forms[:-1])))
    assert values is not None
    outcomes = values.values["outcomes"]
    assert [o["description"] for o in outcomes] == [AGAIN] and outcomes[0]["last_rating"]


def test_the_annual_report_lists_it_once_with_both_ratings(forms: list[Any]) -> None:
    context = annual_report_context(
        _sample_settings(),
        forms[0].pupil,
        History(tuple(forms)),
        since=date(2025, 9, 1),
        until=date(2026, 7, 15),
        today=date(2026, 7, 15),
    )
    outcomes = context["report"]["outcomes"]
    assert len(outcomes) == 1, [o["description"] for o in outcomes]
    assert [r["date"] for r in outcomes[0]["ratings"]] == ["12 March 2026", "25 June 2026"]


def test_the_evidence_pack_draws_it_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[Any] = []
    monkeypatch.setattr(evidence, "ratings_chart", lambda reviews, series: drawn.append(series) or b"")

    def cycle(number: int, text: str, on: date) -> evidence.CycleRow:
        rated = evidence.RatingAt(on, number, "not-achieved", "2 of 5 words.")
        return evidence.CycleRow(number, None, None, on, "continue", None, [evidence.OutcomeRow(text, None, [rated])])

    pack = evidence.Evidence(
        upn=ELLA["upn"],
        name="Ella Brooks",
        date_of_birth=date(2017, 9, 2),
        year_group="3",
        class_name=None,
        school="Oakfield Primary School",
        support_began=date(2025, 11, 20),
        needs_codes=[],
        status_history=[],
        areas=[],
        needs_words=[],
        strengths=[],
        cycles=[cycle(1, FIRST, date(2026, 3, 12)), cycle(2, AGAIN, date(2026, 6, 25))],
        meetings=[],
        specialists=[],
        views=[],
        as_of=date(2026, 7, 1),
    )
    evidence.chart(pack)
    (series,) = drawn
    assert len(series) == 1 and len(series[0].points) == 2
