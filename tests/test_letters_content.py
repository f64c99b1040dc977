"""What the parent letters say: each test renders the real letter template for a realistic pupil
and reads the Word document back (python-docx), asserting the sentence that could be wrong."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import threading
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from pydantic import ValidationError
from sqlalchemy import text

from senforms import rules
from senforms.config import Settings, load_settings
from senforms.context import letter_context
from senforms.documents import _sample_settings, letter_text, reading_grade, sample_context
from senforms.forms import extract
from senforms.history import History
from senforms.kinds import KINDS, ReviewRecord, SupportPlan
from senforms.letters import LETTERS, Audience
from senforms.pipeline import Pipeline
from senforms.render import letter_template, render_docx
from senforms.wordform import make_form
from tests.pipeline_helpers import drop, filled, values
from tests.wordfill import fill_like_word, typed

TODAY = date(2026, 3, 13)

ELLA = {
    "upn": "H801200001001",
    "legal_forename": "Ella",
    "legal_surname": "Brooks",
    "date_of_birth": "2017-09-02",
    "year_group": "3",
    "class_name": "Rowan",
    "parents": [
        {
            "name": "Mrs Sarah Brooks",
            "relationship": "Mother",
            "address": "7 Mill Street\nOakfield\nOK2 5EF",
            "email": "sarah.brooks@example.org",
            "preferred_contact": "email",
        }
    ],
}

OUTCOMES = [
    {
        "description": "Ella will read 40 common words on sight.",
        "rating": "achieved",
        "evidence": "Read 42 of the 40-word list on 5 March.",
    },
    {
        "description": "Ella will write two sentences with full stops.",
        "rating": "partly",
        "evidence": "Full stops in half of her sentences.",
    },
    {
        "description": "Ella will learn five new topic words each week.",
        "rating": "not-achieved",
        "evidence": "words are not remembered after a week",
    },
]


def review(**changes: Any) -> ReviewRecord:
    answers: dict[str, Any] = {
        "pupil": ELLA,
        "review_date": "2026-03-12",
        "plan_date": "2025-11-20",
        "cycle": 1,
        "attendees": "Mrs Brooks, Ella, Miss Shah (class teacher), Mr Okafor (SENCO)",
        "outcomes": OUTCOMES,
        "provision": [{"what": "Word games in a small group", "impact": "Ella enjoys them and joins in."}],
        "pupil_views": "I like the word games.",
        "parent_views": "She reads her school book to us now.",
        "decision": "continue",
        "next_review_date": "2026-06-25",
    }
    return ReviewRecord.model_validate(answers | changes)


def plan(**changes: Any) -> SupportPlan:
    answers: dict[str, Any] = {
        "pupil": ELLA,
        "plan_date": "2025-11-20",
        "cycle": 1,
        "needs": "Ella finds it hard to remember new words and to put her ideas in writing.",
        "primary_need": "SPLD",
        "outcomes": [{"description": o["description"]} for o in OUTCOMES],
        "provision": [{"what": "Word games in a small group", "who": "Mrs Lee", "frequency": "Daily"}],
        "strategies": "Show new words with pictures.",
        "expected_impact": "Ella remembers more words.",
        "review_date": "2026-03-12",
        "class_teacher": "Miss Shah",
        "senco": "Mr Okafor",
    }
    return SupportPlan.model_validate(answers | changes)


def render(letter: str, form: Any, history: History = History()) -> bytes:
    settings = _sample_settings()
    decided = rules.what_next(form, history)
    context = letter_context(
        settings, form, history=history.with_form(form), flags=decided.flags, corrected=False, today=TODAY
    )
    return render_docx(letter_template(settings, letter), context)


def text_of(content: bytes) -> str:
    """Every paragraph and table cell of a rendered letter, one a line."""
    doc = Document(io.BytesIO(content))
    lines = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            lines.extend(cell.text for cell in row.cells)
    return "\n".join(lines)


def first_page(content: bytes) -> str:
    """The letter itself, before the record of the review that follows it."""
    text = text_of(content)
    return text.split("Record of the review for", 1)[0]


def assert_readable(content: bytes) -> None:
    assert reading_grade(letter_text(content)) <= 6.0


# --- 1. the review letter says what the review found ---------------------------------------------


def test_review_letter_opens_with_what_the_review_found() -> None:
    content = render("review-outcome", review())
    page = first_page(content)
    assert (
        "At the review on 12 March 2026 we looked at 3 targets. Ella achieved 1, partly achieved 1 and did not yet achieve 1."
        in page
    )
    assert "words are not remembered after a week" in page
    assert_readable(content)


def test_continue_with_an_outcome_not_achieved_never_says_the_support_is_working() -> None:
    content = render("review-outcome", review(decision="continue"))
    text = text_of(content)
    assert "working" not in text
    assert "Ella has not met every target yet. We agreed to keep the same plan for now" in first_page(content)
    assert "Continue the plan" not in text  # the form's wording is not printed to parents


def test_continue_with_every_outcome_achieved_may_say_so() -> None:
    achieved = [o | {"rating": "achieved"} for o in OUTCOMES]
    page = first_page(render("review-outcome", review(outcomes=achieved)))
    assert "Ella achieved all 3." in page
    assert "The support is working, so we will carry on with the plan as it is." in page


@pytest.mark.parametrize(
    ("ratings", "sentence"),
    [
        (["not-achieved"], "Ella did not yet achieve it."),
        (["partly", "partly"], "Ella partly achieved both."),
        (["not-achieved", "not-achieved"], "Ella did not yet achieve any of them."),
        (["achieved", "not-achieved"], "Ella achieved 1 and did not yet achieve 1."),
    ],
)
def test_the_summary_counts_every_mix_of_ratings(ratings: list[str], sentence: str) -> None:
    outcomes = [OUTCOMES[i] | {"rating": r} for i, r in enumerate(ratings)]
    assert rules.review_findings(review(outcomes=outcomes)).summary.endswith(sentence)


# --- 2. "SEN support is ending" gives the reason the form gives -----------------------------------

ENDING = {"decision": "end", "next_review_date": None, "next_steps": "Miss Shah will keep an eye on Ella's writing."}


@pytest.mark.parametrize(
    ("reason", "words", "sentence"),
    [
        ("progress", None, "Ella has made good progress and no longer needs SEN support."),
        (
            "ehc-plan",
            None,
            "Ella is moving to an EHC plan (an Education, Health and Care plan from the council). An EHC plan "
            "sets out the help a child must get, so Ella's help will now be set out in that plan.",
        ),
        ("leaving", None, "Ella is leaving our school."),
        ("parents", None, "You asked us to end it."),
        (
            "other",
            "Ella now gets this help in class from every teacher",
            "The reason we agreed: Ella now gets this help in class from every teacher.",
        ),
    ],
)
def test_ending_letter_gives_the_reason_on_the_form(reason: str, words: str | None, sentence: str) -> None:
    content = render("sen-support-ended", review(**ENDING, end_reason=reason, end_reason_words=words))
    text = text_of(content)
    assert sentence in text
    if reason != "progress":
        assert "progress and no longer needs" not in text  # never the old stock reason
    if reason == "leaving":
        assert "start SEN support again" not in text  # a pupil who leaves is not told to come back to us
    assert "Miss Shah will keep an eye on Ella's writing." in text
    assert "If you do not agree" in text
    assert_readable(content)


def test_a_version_2_review_ending_without_a_reason_is_refused() -> None:
    with pytest.raises(ValidationError, match="choose the reason"):
        review(**ENDING)
    with pytest.raises(ValidationError, match="write the reason here"):
        review(**ENDING, end_reason="other")


def test_an_ending_review_printed_at_version_1_is_still_read_and_claims_no_reason() -> None:
    old = KINDS["review"].at_version(1)
    answers = review(**ENDING, end_reason="progress").model_dump(mode="json")
    for added in ("specialist", "specialist_reason", "end_reason", "end_reason_words", "next_steps"):
        answers.pop(added)
    form = fill_like_word(make_form(old, school="Oakfield Primary School"), typed("review", answers))
    model, _ = extract(form)
    assert isinstance(model, ReviewRecord) and model.end_reason is None
    text = text_of(render("sen-support-ended", model))
    assert "At Ella's review on 12 March 2026 we agreed that SEN support for Ella will end." in text
    assert "progress and no longer needs" not in text


# --- 3. the specialist letter and the SENCO's prompt -------------------------------------------------

SPECIALIST = {
    "decision": "specialist",
    "specialist": "Speech and language therapist (Oakshire NHS)",
    "specialist_reason": "Ella still cannot remember new words after two terms of help.",
}


def test_specialist_letter_names_the_specialist_and_why() -> None:
    content = render("specialist-letter", review(**SPECIALIST))
    text = text_of(content)
    assert "We would like to ask a specialist for advice: Speech and language therapist (Oakshire NHS)." in text
    assert "Why we are asking: Ella still cannot remember new words after two terms of help." in text
    assert "for example, an educational psychologist" not in text  # no guessing when the form says who
    assert "sharing what it knows about Ella with them" in text  # consent to share information
    assert_readable(content)


def _slip(content: bytes) -> str:
    """The reply slip: everything after the scissors line."""
    return text_of(content).split("✂", 1)[1]


def test_specialist_slip_has_a_line_for_each_parent_and_a_reply_by_date() -> None:
    both = {
        **ELLA,
        "parents": [
            ELLA["parents"][0],
            {"name": "Mr Tom Brooks", "relationship": "Father", "address": "7 Mill Street, Oakfield, OK2 5EF"},
        ],
    }
    content = render("specialist-letter", review(pupil=both, **SPECIALIST))
    slip = _slip(content)
    # Two weeks after the letter's date (13 March 2026), in the letter and on the slip.
    assert "by 27 March 2026" in text_of(content).split("✂", 1)[0]
    assert "Please return this slip by 27 March 2026." in slip
    signing = [line for line in slip.splitlines() if "Signed:" in line]
    assert [line.split("Signed:")[0].strip() for line in signing] == ["Mrs Sarah Brooks", "Mr Tom Brooks"]
    assert_readable(content)


def test_parents_apart_each_get_a_slip_with_only_their_own_line() -> None:
    from senforms.documents import _household_copies

    apart = {
        **ELLA,
        "parents": [
            ELLA["parents"][0],
            {"name": "Mr Tom Brooks", "relationship": "Father", "address": "Flat 3, 2 Quay Road\nPortbury"},
        ],
    }
    form = review(pupil=apart, **SPECIALIST)
    settings = _sample_settings()
    context = letter_context(settings, form, history=History((form,)), flags=[], corrected=False, today=TODAY)
    copies = _household_copies(context, LETTERS["specialist-letter"])
    signers = []
    for copy, _ in copies:
        slip = _slip(render_docx(letter_template(settings, "specialist-letter"), copy))
        signers.append([line.split("Signed:")[0].strip() for line in slip.splitlines() if "Signed:" in line])
    assert signers == [["Mrs Sarah Brooks"], ["Mr Tom Brooks"]]


def test_a_slip_with_no_name_on_the_form_still_has_a_line_to_sign() -> None:
    content = render("specialist-letter", review(pupil={**ELLA, "parents": []}, **SPECIALIST))
    slip = _slip(content)
    assert "Name: ____" in slip and "Signed: ____" in slip
    assert "Please return this slip by 27 March 2026." in slip


def test_a_version_2_specialist_decision_needs_who_and_why() -> None:
    with pytest.raises(ValidationError, match="say which service or role"):
        review(decision="specialist")


def _cycle(n: int, decision: str = "continue", **changes: Any) -> ReviewRecord:
    """Ella's review of cycle ``n``, her topic words not achieved."""
    dates = {1: ("2025-11-20", "2026-03-12"), 2: ("2026-03-12", "2026-06-25"), 3: ("2026-06-25", "2026-10-15")}
    extra = SPECIALIST if decision == "specialist" else {"decision": decision}
    return review(
        cycle=n, plan_date=dates[n][0], review_date=dates[n][1], next_review_date="2027-01-20", **extra, **changes
    )


def _prompts(form: ReviewRecord, *earlier: ReviewRecord) -> bool:
    return "Consider involving a specialist" in [d.title for d in rules.after_review(form, History(earlier)).documents]


def test_specialist_prompt_comes_once_for_a_new_streak_and_lists_every_rating() -> None:
    first, second, third = _cycle(1), _cycle(2), _cycle(3)
    assert not _prompts(first)
    assert _prompts(second, first)
    # The streak goes on: the SENCO was prompted at the second review, so not again.
    assert not _prompts(third, first, second)
    (flag,) = rules.not_achieved_twice(third, History((first, second)))
    assert flag.ratings == (
        "Not achieved (12 March 2026)",
        "Not achieved (25 June 2026)",
        "Not achieved (15 October 2026)",
    )
    assert not flag.new
    text = text_of(render("specialist-prompt", second, History((first,))))
    assert "Not achieved (12 March 2026); Not achieved (25 June 2026)" in text
    assert "should consider involving specialists" in text
    assert "must" not in text.replace("Code of Practice", "")


@pytest.mark.parametrize("acted", ["specialist", "ehc"])
def test_no_prompt_when_a_specialist_or_an_assessment_is_already_decided(acted: str) -> None:
    first = _cycle(1)
    assert not _prompts(_cycle(2, acted), first)  # decided at this review
    assert not _prompts(_cycle(2), _cycle(1, acted))  # decided when the streak began


# --- 4. the EHC needs assessment request ---------------------------------------------------------------

EHC = {"decision": "ehc", "next_steps": "Mr Okafor will send the request to the council by 27 March."}


def test_ehc_request_letter_says_what_happens_next_and_the_time_limits() -> None:
    content = render("ehc-request", review(**EHC))
    text = text_of(content)
    assert "EHC stands for Education, Health and Care." in text
    # Code of Practice 9.14 and 9.40 (domain.md): 6 weeks to decide, 20 weeks request to final plan.
    assert "The council has 6 weeks from the day it gets the request to decide if it will do the assessment." in text
    assert "no more than 20 weeks from the request to the final EHC plan" in text
    assert "Parents can ask the council for an EHC needs assessment themselves." in text
    assert "SEN support at school goes on as normal while you wait" in text
    assert "Oakshire SENDIASS" in text and "01632 960111" in text  # from the school's settings
    assert "Mr Okafor will send the request to the council by 27 March." in text
    assert_readable(content)


def test_after_an_ehc_request_the_next_plan_is_still_prefilled_with_the_same_support() -> None:
    decided = rules.after_review(review(**EHC), History((plan(),)))
    (prefilled,) = [d for d in decided.documents if isinstance(d, rules.Prefilled)]
    assert prefilled.kind == "support-plan" and prefilled.values["cycle"] == 2
    assert prefilled.values["provision"][0]["what"] == "Word games in a small group"
    assert "Asking for an EHC needs assessment" in [d.title for d in decided.documents]


# --- 5. words parents understand ------------------------------------------------------------------

EXPLAINED = {
    "SENCO": "the teacher who leads on special educational needs",
    "SEN support": "extra",  # "the extra help the school gives", "help that is extra to"
    "EHC": "Education, Health and Care",
    "EHC plan": "sets out",  # "a plan from the council that sets out the help ... must get"
    "SENDIASS": "free",  # "Oakshire SENDIASS gives free, confidential advice", "a free advice service"
    "provision": "help",  # "special educational provision ...: help that is extra to", "We call this help provision"
    "outcome": "goals",  # "Outcomes are the goals we agreed", "the goals we want ... to reach"
}
PARENT_LETTERS = [name for name, letter in LETTERS.items() if letter.audience is Audience.PARENTS]


def _form_words(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [w for v in value.values() for w in _form_words(v)]
    if isinstance(value, list):
        return [w for v in value for w in _form_words(v)]
    return [value] if isinstance(value, str) and len(value) > 20 else []  # not dates or names


@pytest.mark.parametrize("name", PARENT_LETTERS)
def test_each_term_is_explained_where_the_letter_first_uses_it(name: str) -> None:
    context = sample_context(name)
    text = text_of(render_docx(letter_template(_sample_settings(), name), context))
    # The letter's own words: lines holding what the school typed on the form are left out.
    typed_in = _form_words(context.get("form", context.get("report", {})))
    own = [line for line in text.splitlines() if not any(w in line for w in typed_in)]
    _assert_explained(name, own)


def _assert_explained(name: str, own: list[str]) -> None:
    for term, explanation in EXPLAINED.items():
        # Whole words, any case: "Outcome" heading a table is the first use as much as "outcomes".
        used = re.compile(rf"\b{re.escape(term)}", re.IGNORECASE if term.islower() else 0)
        first = next((i for i, line in enumerate(own) if used.search(line)), None)
        if first is None:
            continue
        nearby = " ".join(own[first : first + 2])
        assert explanation in nearby, f"{name}: {term!r} first used without saying what it is: {own[first]!r}"


# Every decision a review can take, and every reason SEN support ends: the letters these issue.
EVERY_REVIEW = [
    ("review-outcome", {"decision": "continue"}),
    ("review-outcome", {"decision": "revise"}),
    ("review-outcome", SPECIALIST),
    ("review-outcome", {"decision": "ehc"}),
    ("specialist-letter", SPECIALIST),
    ("ehc-request", {"decision": "ehc"}),
    *[("review-outcome", ENDING | {"end_reason": r}) for r in ("progress", "ehc-plan", "leaving", "parents")],
    *[("sen-support-ended", ENDING | {"end_reason": r}) for r in ("progress", "ehc-plan", "leaving", "parents")],
]


@pytest.mark.parametrize(("name", "changes"), EVERY_REVIEW)
def test_terms_are_explained_and_plain_whatever_the_review_decided(name: str, changes: dict[str, Any]) -> None:
    form = review(**changes)
    content = render(name, form)
    text = letter_text(content)
    typed_in = _form_words(form.model_dump(mode="json"))
    _assert_explained(name, [line for line in text_of(content).splitlines() if not any(w in line for w in typed_in)])
    assert reading_grade(text) <= 6.0, (name, changes, reading_grade(text))


def test_the_notification_gives_the_needs_in_the_forms_words_not_census_codes() -> None:
    context = sample_context("sen-notification")
    text = text_of(render_docx(letter_template(_sample_settings(), "sen-notification"), context))
    assert "Reading and spelling are well behind his classmates." in text
    assert "census" not in text and "Specific learning difficulty" not in text
    assert "Cognition and learning" not in text


def test_the_review_letter_explains_an_ehc_needs_assessment() -> None:
    page = first_page(render("review-outcome", review(**EHC)))
    assert "EHC needs assessment (EHC stands for Education, Health and Care)" in page


# --- 6. one letter per household, and the office's list ----------------------------------------------

APART = [
    {
        "name": "Mrs Joanne Clarke",
        "relationship": "Mother",
        "address": "3 Elm Road\nOakfield\nOK1 3CD",
        "email": "jo.clarke@example.org",
        "preferred_contact": "email",
    },
    {
        "name": "Mr Tunde Adeyemi",
        "relationship": "Father",
        "address": "Flat 2, 40 High Street\nBramford\nBR2 9XY",
        "preferred_contact": "letter",
    },
]


def _notifications(outbox: Path) -> dict[str, str]:
    return {p.name: text_of(p.read_bytes()) for p in outbox.glob("parents/*/*Formal notification*")}


def test_parents_living_apart_each_get_their_own_letter_and_the_office_a_list(
    settings: Settings, tmp_path: Path
) -> None:
    early = values("early-discussion", pupil={"parents": APART})
    with Pipeline(settings, today=lambda: date(2025, 10, 9)) as pipeline:
        pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early)))
    letters = _notifications(settings.outbox)
    assert sorted(letters) == [
        "2025-10-09 Formal notification of SEN support for Mr Tunde Adeyemi.docx",
        "2025-10-09 Formal notification of SEN support for Mrs Joanne Clarke.docx",
    ]
    to_father = letters["2025-10-09 Formal notification of SEN support for Mr Tunde Adeyemi.docx"]
    assert (
        "Dear Mr Adeyemi\n" in to_father and "Mr Tunde Adeyemi\nFlat 2, 40 High Street\nBramford\nBR2 9XY" in to_father
    )
    assert "Clarke" not in to_father and "Elm Road" not in to_father
    to_mother = letters["2025-10-09 Formal notification of SEN support for Mrs Joanne Clarke.docx"]
    assert "Dear Mrs Clarke\n" in to_mother and "Adeyemi" not in to_mother
    with (settings.outbox / "parents" / "Letters to send 2025-10-09.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    notified = {r["Recipient"]: r for r in rows if r["Letter"].startswith("Formal notification")}
    assert set(notified) == {"Mrs Joanne Clarke", "Mr Tunde Adeyemi"}
    father = notified["Mr Tunde Adeyemi"]
    assert father["Address"] == "Flat 2, 40 High Street, Bramford, BR2 9XY"
    assert father["Preferred contact"] == "Letter" and father["UPN"] == early["pupil"]["upn"]
    assert father["Child"] == "Millie Hart" and (settings.outbox / father["File"]).is_file()
    assert notified["Mrs Joanne Clarke"]["E-mail"] == "jo.clarke@example.org"
    # Every letter of the day is listed once: two households, two letters each (note and notification).
    assert len(rows) == 4


def test_one_household_gets_one_letter_addressed_to_both(settings: Settings, tmp_path: Path) -> None:
    together = [APART[0], APART[1] | {"address": "3 elm road, Oakfield,  OK1 3CD"}]
    early = values("early-discussion", pupil={"parents": together})
    with Pipeline(settings, today=lambda: date(2025, 10, 9)) as pipeline:
        pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early)))
    (letter,) = _notifications(settings.outbox).values()
    assert "Dear Mrs Clarke and Mr Adeyemi" in letter
    assert "Mrs Joanne Clarke and Mr Tunde Adeyemi\n3 Elm Road\nOakfield\nOK1 3CD" in letter
    with (settings.outbox / "parents" / "Letters to send 2025-10-09.csv").open(encoding="utf-8-sig") as f:
        recipients = {r["Recipient"] for r in csv.DictReader(f)}
    assert recipients == {"Mrs Joanne Clarke and Mr Tunde Adeyemi"}


def test_the_days_list_holds_every_letter_once_as_forms_arrive(settings: Settings, tmp_path: Path) -> None:
    """The list is built whole by the day's first delivery and added to by the later ones (a
    rebuild per form made each form of a 2,000-form batch slower than the last): every parent
    letter of the day is listed exactly once, a delivery finished again adds nothing, and a list
    someone deleted is built again whole from the archive."""
    from tests.pipeline_helpers import pupil_upn

    listing = settings.outbox / "parents" / "Letters to send 2025-10-09.csv"

    def listed() -> list[str]:
        with listing.open(encoding="utf-8-sig") as f:
            return [r["File"] for r in csv.DictReader(f)]

    with Pipeline(settings, today=lambda: date(2025, 10, 9)) as pipeline:
        for serial in range(3):
            pupil = {"upn": pupil_upn(400 + serial), "legal_surname": f"List{chr(97 + serial)}"}
            early = values("early-discussion", pupil=pupil)
            pipeline.process_file(drop(tmp_path, f"early{serial}.docx", filled("early-discussion", early)))
            letters = sorted(p.relative_to(settings.outbox).as_posix() for p in (settings.outbox / "parents").rglob("*.docx"))
            assert sorted(listed()) == letters  # every letter so far, each once
        form_ids = [form_id for form_id, in pipeline.archive.engine.connect().execute(text("SELECT id FROM received_forms"))]
        with pipeline.archive.session() as session:
            session.execute(text("UPDATE received_forms SET state = 'delivering'"))
            session.execute(text("UPDATE documents SET delivered_at = NULL"))
        for form_id in form_ids:  # finished again, as after a crash: nothing listed twice
            pipeline._deliver(form_id, "?")
        assert sorted(listed()) == letters
        listing.unlink()
        session_upn = pupil_upn(403)
        early = values("early-discussion", pupil={"upn": session_upn, "legal_surname": "Listd"})
        pipeline.process_file(drop(tmp_path, "early3.docx", filled("early-discussion", early)))
        letters = sorted(p.relative_to(settings.outbox).as_posix() for p in (settings.outbox / "parents").rglob("*.docx"))
        assert sorted(listed()) == letters and len(letters) == len(set(letters)) == 8
        # A letter delivered but missing from the list (a write of the list failed, as when the
        # office had it open in Excel): the next delivery of the day puts it back.
        lines = listing.read_text(encoding="utf-8-sig").splitlines(keepends=True)
        listing.write_text("".join(lines[:1] + lines[2:]), encoding="utf-8-sig")
        assert len(listed()) == 7
        early = values("early-discussion", pupil={"upn": pupil_upn(404), "legal_surname": "Liste"})
        pipeline.process_file(drop(tmp_path, "early4.docx", filled("early-discussion", early)))
    letters = sorted(p.relative_to(settings.outbox).as_posix() for p in (settings.outbox / "parents").rglob("*.docx"))
    assert sorted(listed()) == letters and len(letters) == len(set(letters)) == 10


class ExcelHolds:
    """``os.replace`` as Windows answers it while the office has ``listing`` open in Excel: refused
    until ``open`` is set False."""

    def __init__(self, listing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        import os

        self.open = True
        real_replace = os.replace

        def replace(src: Any, dst: Any) -> None:
            if self.open and Path(dst) == listing:
                raise PermissionError(13, "The process cannot access the file because it is being used by another process")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)


def test_a_letters_list_open_in_excel_holds_up_no_letter(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows will not let anyone replace a file Excel has open. The office often has the day's
    "Letters to send" list open while forms keep coming: that must not stop the letters. The
    form is filed and its letters written; the list is only behind, and catches up, with every
    letter once, at the next delivery after Excel lets go."""

    from sqlalchemy import select

    from senforms.archive import tables as t
    from tests.pipeline_helpers import pupil_upn

    listing = settings.outbox / "parents" / "Letters to send 2025-10-09.csv"

    def listed() -> list[str]:
        with listing.open(encoding="utf-8-sig") as f:
            return [r["File"] for r in csv.DictReader(f)]

    def letters() -> list[str]:
        return sorted(p.relative_to(settings.outbox).as_posix() for p in (settings.outbox / "parents").rglob("*.docx"))

    with Pipeline(settings, today=lambda: date(2025, 10, 9)) as pipeline:
        first = values("early-discussion", pupil={"upn": pupil_upn(410), "legal_surname": "Excela"})
        pipeline.process_file(drop(tmp_path, "first.docx", filled("early-discussion", first)))
        assert sorted(listed()) == letters()
        excel = ExcelHolds(listing, monkeypatch)
        second = values("early-discussion", pupil={"upn": pupil_upn(411), "legal_surname": "Excelb"})
        done = pipeline.process_file(drop(tmp_path, "second.docx", filled("early-discussion", second)))
        assert done.status == "processed" and len(letters()) == 4  # both forms' letters are out
        with pipeline.archive.reading() as session:
            assert set(session.scalars(select(t.ReceivedForm.state))) == {"done"}
        assert len(listed()) == 2  # the list, still open, is behind
        excel.open = False
        third = values("early-discussion", pupil={"upn": pupil_upn(412), "legal_surname": "Excelc"})
        pipeline.process_file(drop(tmp_path, "third.docx", filled("early-discussion", third)))
    assert sorted(listed()) == letters() and len(letters()) == 6


def test_letters_a_crash_left_off_the_list_are_listed_at_the_next_start(settings: Settings, tmp_path: Path) -> None:
    """In a batch the list is written once, at the end (or when the inbox goes quiet). A watcher
    killed after delivering a form's letters but before listing them leaves them off; the next
    start (``finish_pending``, run by the watcher and by ``senforms process``) puts them on."""
    from senforms.pipeline import REGISTER_EVERY_S
    from tests.pipeline_helpers import pupil_upn

    listing = settings.outbox / "parents" / "Letters to send 2025-10-09.csv"
    with Pipeline(settings, today=lambda: date(2025, 10, 9), register_every=REGISTER_EVERY_S) as first:
        for serial in range(2):
            early = values("early-discussion", pupil={"upn": pupil_upn(420 + serial), "legal_surname": f"Crash{serial}"})
            first.process_file(drop(tmp_path, f"early{serial}.docx", filled("early-discussion", early)))
        assert first.letters_pending and not listing.exists()  # a batch lists its letters at its end
        first.letters_pending = []  # as if the process were killed here
    assert not listing.exists()
    with Pipeline(settings, today=lambda: date(2025, 10, 9), register_every=REGISTER_EVERY_S) as second:
        second.finish_pending()
    with listing.open(encoding="utf-8-sig") as f:
        files = sorted(r["File"] for r in csv.DictReader(f))
    out = sorted(p.relative_to(settings.outbox).as_posix() for p in (settings.outbox / "parents").rglob("*.docx"))
    assert files == out and len(out) == 4


@pytest.mark.parametrize(
    ("written", "promised"),
    [(date(2025, 10, 9), True), (date(2025, 11, 4), True), (date(2025, 11, 20), False)],
)
def test_a_meeting_gone_by_is_not_promised_in_a_letter_written_after_it(
    settings: Settings, tmp_path: Path, written: date, promised: bool
) -> None:
    """The early discussion of 7 October set the next meeting for 4 November. Filed on 9 October,
    the notification and the note tell parents the plan will be agreed then. Typed up late and
    filed on 20 November, the letters must not say a meeting already gone by is still to come:
    the sentence is left out, and the rest of the letter stands."""
    early = values("early-discussion")
    assert early["next_meeting_date"] == "2025-11-04"
    with Pipeline(settings, today=lambda: written) as pipeline:
        pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early)))
    (notification,) = _notifications(settings.outbox).values()
    (note,) = [text_of(p.read_bytes()) for p in settings.outbox.glob("parents/*/*Note of our early discussion*")]
    assert ("at our next meeting on 4 November 2025" in notification) is promised
    assert ("Our next meeting: 4 November 2025" in note) is promised
    assert "We will agree a support plan with you" in notification  # the letter is otherwise whole


@pytest.mark.parametrize(
    ("written", "promised"),
    [(date(2025, 11, 5), True), (date(2026, 2, 10), True), (date(2026, 2, 20), False)],
)
def test_a_review_gone_by_is_not_promised_in_the_plan_sent_after_it(
    settings: Settings, tmp_path: Path, written: date, promised: bool
) -> None:
    """The plan of 4 November is reviewed on 10 February. Sent to parents before or on that day, it
    says "We will meet again on 10 February 2026"; typed up and sent after it, it must not promise
    a meeting already gone by. The plan itself still shows its review date. The same holds for the
    formal notification a plan sends when it starts SEN support (the early discussion decided to
    monitor)."""
    plan = values("support-plan")
    assert plan["review_date"] == "2026-02-10"
    with Pipeline(settings, today=lambda: written) as pipeline:
        early = values("early-discussion", pupil=plan["pupil"], decision="monitor")
        pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early)))
        pipeline.process_file(drop(tmp_path, "plan.docx", filled("support-plan", plan)))
    (letter,) = [text_of(p.read_bytes()) for p in settings.outbox.glob("parents/*/*SEN support plan*")]
    assert ("We will meet again on 10 February 2026" in letter) is promised
    assert "If anything in it is not right, or things change at home, please tell us" in letter
    assert "10 February 2026" in letter  # the plan's own review date, in its table
    (notice,) = [text_of(p.read_bytes()) for p in settings.outbox.glob("parents/*/*Formal notification*")]
    assert ("We will look at how the plan is going with you on 10 February 2026." in notice) is promised
    assert "We will meet you at least three times a year" in notice


# --- 7. each letter's properties: its own title and the day it was written ------------------------


def test_every_letter_carries_its_title_and_the_day_it_was_written() -> None:
    from senforms.documents import PdfLetters, render_documents

    apart = {**ELLA, "parents": [*ELLA["parents"], APART[1]]}
    form = review(pupil=apart, **SPECIALIST)
    earlier = review(cycle=1, plan_date="2025-07-01", review_date="2025-11-19", next_review_date="2026-03-12")
    history = History((plan(), earlier))
    settings = _sample_settings()
    out, _ = render_documents(
        settings,
        form,
        rules.what_next(form, history),
        history,
        corrected=True,
        today=TODAY,
        pdf=PdfLetters(settings),
    )
    letters = [r for r in out if r.suffix == ".docx" and not r.template.startswith("form:")]
    # Two households, so two copies of each parent letter, each with its own title.
    assert {r.title for r in letters} >= {
        "Review of SEN support for Mrs Sarah Brooks (corrected)",
        "Review of SEN support for Mr Tunde Adeyemi (corrected)",
        "Involving a specialist for Mr Tunde Adeyemi (corrected)",
    }
    for r in letters:
        properties = Document(io.BytesIO(r.content)).core_properties
        assert properties.title == r.title
        # The day it was written (13 March 2026), not the day the template was made.
        assert properties.created is not None and properties.created.date() == TODAY
        assert properties.modified is not None and properties.modified.date() == TODAY


def test_a_letter_rendered_without_a_title_keeps_its_template_properties_byte_for_byte() -> None:
    import zipfile

    path = letter_template(_sample_settings(), "specialist-prompt")
    content = render_docx(path, sample_context("specialist-prompt"))
    with zipfile.ZipFile(path) as template, zipfile.ZipFile(io.BytesIO(content)) as letter:
        assert letter.read("docProps/core.xml") == template.read("docProps/core.xml")


def test_a_letters_list_left_behind_is_tried_again_while_the_inbox_stays_quiet(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher's worker calls ``idle`` when the inbox goes quiet; while the list of letters is
    still open in Excel, ``idle`` says it is behind, and the worker tries again every so often
    (``next_request``), so the list catches up soon after Excel lets go, without another form."""
    import multiprocessing

    from senforms.intake.worker import PipelineProcessor, next_request

    listing = settings.outbox / "parents" / "Letters to send 2025-10-09.csv"

    monkeypatch.setenv("SENFORMS_TODAY", "2025-10-09")
    excel = ExcelHolds(listing, monkeypatch)
    processor = PipelineProcessor(load_settings(settings.home))
    try:
        processor(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))), "early.docx")
        tries = []

        def idle() -> bool:
            tries.append(processor.idle())
            excel.open = len(tries) < 2  # Excel lets go after the second try
            return tries[-1]

        ours, theirs = multiprocessing.Pipe()
        threading.Timer(1.5, lambda: theirs.send("next form")).start()
        assert next_request(ours, idle, quiet=0.05, again=0.05) == "next form"
    finally:
        processor.close()
    # Behind twice, then up to date: the list has both letters, and no more tries were made.
    assert tries == [True, True, False]
    with listing.open(encoding="utf-8-sig") as f:
        assert len(list(csv.DictReader(f))) == 2


@pytest.mark.parametrize("school", ["Oakfield Primary School", "(fill in)"])
def test_the_sign_off_names_the_school_only_once_it_is_filled_in(school: str) -> None:
    """A school that has not filled in its name yet gets "SENCO", not "SENCO," with nothing after
    the comma (the watcher also warns about the placeholder at start)."""
    sample = _sample_settings()
    settings = dataclasses.replace(sample, school={**sample.school, "name": school})
    form = review()
    context = letter_context(settings, form, history=History().with_form(form), flags=[], corrected=False, today=TODAY)
    lines = text_of(render_docx(letter_template(settings, "review-outcome"), context)).splitlines()
    signed = lines[lines.index("Mr Samuel Okafor") + 1]
    assert signed == ("SENCO, Oakfield Primary School" if school != "(fill in)" else "SENCO")
