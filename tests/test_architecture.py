"""One place for each thing: every kind has its behaviour, every letter its one declaration, a
fourth kind works end to end, an earlier form version still reads, and rendering happens
outside the archive's write transaction."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from senforms import documents, rules
from senforms.cli import main
from senforms.config import Settings, load_settings
from senforms.errors import UnknownVersionError
from senforms.forms import extract
from senforms.history import History
from senforms.kinds import KINDS, EarlyDecision, EarlyDiscussion, FormModel, Version, field
from senforms.letters import LETTERS, README_TABLE_END, README_TABLE_START, readme_table
from senforms.pipeline import Pipeline, process_files
from senforms.render import TEMPLATES
from senforms.wordform import make_form
from tests.conftest import case
from tests.pipeline_helpers import drop, filled, pupil_upn, values
from tests.test_pdf_forms import fill_with_pypdf
from tests.test_pdf_forms import typed as pdf_typed
from tests.test_pipeline import docx_text
from tests.wordfill import fill_like_word, typed

# --- kinds carry their behaviour -----------------------------------------------------------------


def test_every_kind_has_its_behaviour_in_the_registry() -> None:
    assert set(rules.STEPS) == set(KINDS)
    for slug, step in rules.STEPS.items():
        assert step.model is KINDS[slug].model


def test_every_kind_decides_and_registers_on_its_own_model() -> None:
    for slug in KINDS:
        form = KINDS[slug].model.model_validate(case(f"{slug}.json"))
        decided = rules.what_next(form, History())
        assert decided.documents, slug
        rules.register_status(form, None)  # must not raise for any kind


class Stranger(FormModel):
    """A model that no kind declares."""

    name: str = "x"


def test_an_unknown_kind_is_refused_never_treated_as_a_review() -> None:
    with pytest.raises(rules.UnknownKindError):
        rules.what_next(Stranger(), History())
    with pytest.raises(rules.UnknownKindError):
        rules.register_status(Stranger(), None)


# --- letters declared once ------------------------------------------------------------------------


def test_every_letter_has_a_template_a_kind_and_sample_data() -> None:
    for letter in LETTERS.values():
        assert (TEMPLATES / "letters" / letter.filename).is_file(), letter.name
        context = documents.sample_context(letter)
        if not letter.kind:  # issued by date, not by a form: the annual report
            assert context["report"], letter.name
            continue
        assert letter.kind in KINDS
        assert context["form"], letter.name


def test_every_letter_the_rules_issue_is_declared() -> None:
    issued = set()
    samples = documents.sample_forms()
    for i, form in enumerate(samples):
        # As the samples happened, and with the early discussion deciding to monitor instead (a
        # plan then starts SEN support itself, and sends the formal notification).
        monitored = [
            f.model_copy(update={"decision": EarlyDecision.MONITOR}) if isinstance(f, EarlyDiscussion) else f
            for f in samples[:i]
        ]
        for decision, past in itertools.product(
            ("continue", "revise", "specialist", "ehc", "end", "sen-support", "monitor", "no-sen"),
            (samples[:i], monitored),
        ):
            try:
                changed = form.model_copy(update={"decision": type(form.decision)(decision)})  # type: ignore[attr-defined]
            except (AttributeError, ValueError):
                changed = form
            for doc in rules.what_next(changed, History(tuple(past))).documents:
                if isinstance(doc, rules.Prefilled):
                    continue
                assert LETTERS[doc.name] is doc
                issued.add(doc.name)
    assert issued == {name for name, letter in LETTERS.items() if letter.kind}  # the rest are issued by date


def test_the_letters_readme_table_is_written_from_the_registry() -> None:
    readme = (TEMPLATES / "letters" / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(README_TABLE_START), readme.index(README_TABLE_END) + len(README_TABLE_END)
    assert readme[start:end] == readme_table(), "run: python scripts/make_letter_templates.py --readme"


def test_sample_context_is_the_real_letter_context() -> None:
    # The sample's names are the real context's: the form's own outcomes carry last_rating only
    # when a plan was pre-filled from a review, and the flags come from the real rules.
    prompt = documents.sample_context("specialist-prompt")
    assert prompt["flags"] and prompt["flags"][0]["ratings"] == [
        "Not achieved (10 March 2027)",
        "Not achieved (9 June 2027)",
    ]
    plan = documents.sample_context("plan-parent-copy")
    assert set(plan["form"]["outcomes"][0]) == {"description", "success_criteria", "last_rating"}


# --- the fourth kind: a meeting with parents ---------------------------------------------------------


def test_parent_meeting_note_from_blank_to_the_parents_note(home: Path, tmp_path: Path) -> None:
    settings = load_settings(home)
    assert main(["--home", str(home), "init"]) == 0
    # The pupil's record starts with the early discussion.
    early = drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion")))
    assert process_files([early], settings).exit_code == 0
    # The office prints a blank meeting note, the SENCO fills it in Word, the office drops it in.
    blank = tmp_path / "blank meeting.docx"
    assert main(["--home", str(home), "blank", "parent-meeting", "-o", str(blank)]) == 0
    answers = values("parent-meeting")
    completed = fill_like_word(blank.read_bytes(), typed("parent-meeting", json.loads(json.dumps(answers))))
    drop(settings.inbox, "meeting with Mrs Hart.docx", completed)
    assert main(["--home", str(home), "watch", "--once"]) == 0
    notes = list((settings.outbox / "parents").glob("*/* Note of our meeting.docx"))
    assert len(notes) == 1
    text = docx_text(notes[0])
    assert "Thank you for meeting us on 14 January 2026" in text
    assert "Send the week's spellings home on Monday" in text
    assert "Let Millie sit the spelling test in the quiet room" in text
    assert "23 January 2026" in text
    assert not list(settings.inbox.glob("*.docx"))
    # The meeting is in the pupil's record.
    from sqlalchemy import select

    from senforms.archive import tables as t
    from senforms.archive.store import Archive

    archive = Archive(settings.database_url)
    with archive.session() as session:
        kinds = session.scalars(select(t.Meeting.kind).order_by(t.Meeting.held_on)).all()
    archive.close()
    assert kinds == ["early-discussion", "parent-meeting"]


def test_parent_meeting_note_as_a_pdf_form(settings: Settings, tmp_path: Path) -> None:
    from senforms.pdfform import make_pdf_form

    early = drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion")))
    pdf = make_pdf_form(KINDS["parent-meeting"], school="Oakfield Primary School")
    answers = pdf_typed(KINDS["parent-meeting"], case("parent-meeting.json"))
    meeting = drop(tmp_path, "meeting.pdf", fill_with_pypdf(pdf, answers, appearances=True))
    report = process_files([early, meeting], settings)
    assert report.exit_code == 0, [e.message for _, _, e in report.set_aside]
    assert report.processed[1][1].kind == "parent-meeting"
    assert any("Note of our meeting" in p.name for p in report.processed[1][1].documents)


# --- forms of an earlier version still read ------------------------------------------------------------


def test_a_form_printed_before_a_version_bump_still_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    old = KINDS["parent-meeting"]
    printed = fill_like_word(
        make_form(old, school="Oakfield"), typed("parent-meeting", json.loads(json.dumps(case("parent-meeting.json"))))
    )
    # Version 2 adds "Was an interpreter needed?"; version 1's answers say no.
    fields: dict[str, Any] = {name: (info.annotation, info) for name, info in old.model.model_fields.items()}
    fields["interpreter"] = (bool, field("Was an interpreter needed?", default=False))
    from pydantic import create_model

    v2 = create_model("ParentMeetingV2", __base__=FormModel, **fields)  # type: ignore[call-overload]

    def to_v2(answers: dict[str, Any]) -> dict[str, Any]:
        return answers | {"interpreter": False}

    bumped = replace(old, version=2, model=v2, earlier=(Version(1, old.model, to_v2),))
    monkeypatch.setitem(KINDS, "parent-meeting", bumped)
    model, _ = extract(printed, name="old.docx")
    assert type(model) is v2
    assert model.interpreter is False  # type: ignore[attr-defined]
    assert model.discussed.startswith("How Millie is settling")  # type: ignore[attr-defined]
    # A version this installation never knew is refused in plain words.
    future = replace(bumped, version=3, earlier=())
    with pytest.raises(UnknownVersionError, match="reads versions 1, 2"):
        extract(make_form(future, school="Oakfield"), name="future.docx")


# --- rendering happens outside the write transaction ------------------------------------------------


def test_a_slow_render_does_not_hold_up_another_pupil(settings: Settings, tmp_path: Path, monkeypatch: Any) -> None:
    """Two watchers: one renders slowly for pupil A, the other files pupil B meanwhile. With the
    render inside the write transaction, B waited for A's whole render."""
    first = drop(tmp_path, "a.docx", filled("early-discussion", values("early-discussion")))
    other = values("early-discussion", pupil={"upn": pupil_upn(502), "legal_surname": "Okoro", "legal_forename": "Ada"})
    second = drop(tmp_path, "b.docx", filled("early-discussion", other))
    real = documents.render_documents
    rendering = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if kwargs.get("today") == date(2026, 1, 1):
            rendering.set()
            time.sleep(3)
        return out

    monkeypatch.setattr("senforms.pipeline.render_documents", slow)
    took: dict[str, float] = {}

    def run(path: Path, day: date, label: str) -> None:
        with Pipeline(settings, today=lambda: day) as p:
            started = time.monotonic()
            p.process_file(path)
            took[label] = time.monotonic() - started

    a = threading.Thread(target=run, args=(first, date(2026, 1, 1), "slow"))
    a.start()
    assert rendering.wait(30)
    run(second, date(2026, 1, 2), "other")
    a.join()
    assert took["other"] < 2.5, took


# --- a small public API --------------------------------------------------------------------------


def test_the_public_api_names_resolve() -> None:
    import senforms

    for name in senforms.__all__:
        assert getattr(senforms, name) is not None, name
    with pytest.raises(AttributeError):
        _ = senforms.no_such_thing  # type: ignore[attr-defined]
