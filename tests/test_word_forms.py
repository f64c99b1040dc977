"""Word forms on real .docx files, filled the way Word and people fill them (no LibreOffice here;
see test_libreoffice.py)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import docx
import pytest
from lxml import etree

from senforms.cli import main
from senforms.config import Settings
from senforms.errors import FormInvalidError, NotAFormError, UnknownVersionError
from senforms.forms import extract, read
from senforms.kinds import KINDS
from senforms.layout import fields
from senforms.wordform import make_form
from tests.conftest import case
from tests.wordfill import (
    SCHOOL_GUIDANCE,
    SCHOOL_LABELS,
    W,
    control,
    document_xml,
    fill_like_word,
    make_school_template,
    replace_parts,
    type_beside,
    typed,
    with_document,
)

SCHOOL = "Oakfield Primary School"


def blank(slug: str) -> bytes:
    return make_form(KINDS[slug], school=SCHOOL)


def as_json(model: Any) -> dict[str, Any]:
    return json.loads(model.model_dump_json())


def expected(slug: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return as_json(KINDS[slug].model.model_validate(data if data is not None else case(f"{slug}.json")))


def ed_answers(**changes: str | bool) -> dict[str, str | bool]:
    """The early discussion case as typed, with some answers changed."""
    return typed("early-discussion", case("early-discussion.json")) | changes


# --- the blank form ------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", list(KINDS))
def test_blank_form_has_one_tagged_control_per_field(slug: str) -> None:
    root = document_xml(blank(slug))
    tags: list[str] = [t.get(f"{{{W}}}val") for t in root.iter(f"{{{W}}}tag")]
    specs = fields(KINDS[slug])
    assert sorted(tags) == sorted(specs), "every field once, nothing else"
    for path, spec in specs.items():
        sdt = control(root, path)
        assert sdt.find(f"{{{W}}}sdtPr/{{{W}}}alias").get(f"{{{W}}}val") == spec.label
    # Read back blank: every box found, every one empty.
    raw = read(blank(slug))
    assert raw.method == "tags"
    assert set(raw.values) == set(specs)
    assert all(v in ("", False) for v in raw.values.values())


# --- filled in Word --------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", list(KINDS))
def test_filled_in_word_reads_back_every_value(slug: str) -> None:
    data = case(f"{slug}.json")
    filled = fill_like_word(blank(slug), typed(slug, data))
    model, _ = extract(filled)
    assert as_json(model) == expected(slug)
    assert read(filled).method == "tags"


def test_values_come_back_correctly_typed() -> None:
    model, _ = extract(fill_like_word(blank("support-plan"), typed("support-plan", case("support-plan.json"))))
    assert model.pupil.date_of_birth == date(2016, 2, 14)
    assert model.pupil.year_group.value == "4" and model.pupil.year_group.label == "Year 4"
    assert model.pupil.parents[0].preferred_contact.value == "email"
    assert model.primary_need == "SPLD"
    assert model.cycle == 1 and isinstance(model.cycle, int)
    assert model.provision[0].weekly_cost == Decimal("12.50")
    assert model.provision[2].weekly_cost is None
    assert model.parents_agree is True
    assert model.pupil.parents[1].name == "Łukasz Nowak"


def test_money_and_numbers_as_people_type_them() -> None:
    answers = typed("support-plan", case("support-plan.json")) | {
        "provision.0.weekly_cost": "£12.5",
        "provision.1.weekly_cost": "1,200",
        "cycle": " 2 ",
    }
    model, _ = extract(fill_like_word(blank("support-plan"), answers))
    assert model.provision[0].weekly_cost == Decimal("12.50")
    assert model.provision[1].weekly_cost == Decimal("1200.00")
    assert model.cycle == 2


def test_awkward_text_survives() -> None:
    strengths = 'Kind & helpful; "reads" <b>maps</b> with Zoë, Jörg and Michał   \nLoves art  \n\nAnd drama '
    answers = ed_answers(strengths=strengths, completed_by="Ms Zoë Brontë-O'Neill  ")
    model, _ = extract(fill_like_word(blank("early-discussion"), answers))
    assert model.strengths == 'Kind & helpful; "reads" <b>maps</b> with Zoë, Jörg and Michał\nLoves art\n\nAnd drama'
    assert model.completed_by == "Ms Zoë Brontë-O'Neill"


def test_text_typed_beside_the_box_is_read() -> None:
    form = fill_like_word(
        blank("early-discussion"),
        {p: v for p, v in ed_answers().items() if p not in ("pupil.class_name", "next_meeting_date")},
    )
    form = type_beside(form, "pupil.class_name", "Willow ")
    form = type_beside(form, "next_meeting_date", "4 November 2025")
    raw = read(form)
    assert control(document_xml(form), "pupil.class_name").find(f"{{{W}}}sdtPr/{{{W}}}showingPlcHdr") is not None
    assert raw.values["pupil.class_name"].strip() == "Willow"
    model, _ = extract(form)
    assert model.pupil.class_name == "Willow"
    assert model.next_meeting_date == date(2025, 11, 4)


def test_paragraphs_added_beside_the_box_are_kept_as_lines() -> None:
    form = fill_like_word(blank("early-discussion"), ed_answers(parent_concerns="Homework takes hours."))
    root = document_xml(form)
    cell = next(control(root, "parent_concerns").iterancestors(f"{{{W}}}tc"))
    for text in ("He is tired after school.  ", "We have asked the GP."):
        p = etree.SubElement(cell, f"{{{W}}}p")
        etree.SubElement(etree.SubElement(p, f"{{{W}}}r"), f"{{{W}}}t").text = text
    model, _ = extract(with_document(form, root))
    assert model.parent_concerns == "Homework takes hours.\nHe is tired after school.\nWe have asked the GP."


def test_checkbox_state_wins_over_the_glyph() -> None:
    answers = ed_answers(**{"areas.cognition": True, "areas.semh": False})
    form = fill_like_word(
        blank("early-discussion"), answers, glyphs={"areas.cognition": "\u2610", "areas.semh": "\u2612"}
    )
    model, _ = extract(form)
    assert model.areas.cognition is True
    assert model.areas.semh is False


def test_date_text_wins_over_a_stale_full_date() -> None:
    data = case("early-discussion.json")
    prefilled = make_form(KINDS["early-discussion"], school=SCHOOL, values=data)
    root = document_xml(prefilled)
    assert control(root, "meeting_date").find(f".//{{{W}}}date").get(f"{{{W}}}fullDate").startswith("2025-10-07")
    form = fill_like_word(prefilled, {"meeting_date": "08/10/2025"})
    # Word left w:fullDate as it was: the text is what the person sees and means.
    assert (
        control(document_xml(form), "meeting_date")
        .find(f".//{{{W}}}date")
        .get(f"{{{W}}}fullDate")
        .startswith("2025-10-07")
    )
    model, _ = extract(form)
    assert model.meeting_date == date(2025, 10, 8)


def test_dropdown_text_is_mapped_to_its_value() -> None:
    form = fill_like_word(
        blank("review"),
        typed("review", case("review.json"))
        | {
            "decision": "Involve a specialist",
            "specialist": "Educational psychologist",
            "specialist_reason": "Reading has not moved on.",
        },
    )
    root = document_xml(form)
    # A stale remembered choice: what is shown is what was chosen.
    control(root, "decision").find(f".//{{{W}}}dropDownList").set(f"{{{W}}}lastValue", "continue")
    model, _ = extract(with_document(form, root))
    assert model.decision.value == "specialist"
    assert [o.rating.value for o in model.outcomes] == ["partly", "achieved", "not-achieved"]


def test_placeholder_mark_left_on_changed_text_does_not_hide_it() -> None:
    marked = ["pupil.legal_surname", "meeting_date", "decision", "strengths"]
    model, _ = extract(fill_like_word(blank("early-discussion"), ed_answers(), keep_placeholder_mark=marked))
    assert model.pupil.legal_surname == "Hart"
    assert model.meeting_date == date(2025, 10, 7)
    assert model.decision.value == "sen-support"
    assert model.strengths.startswith("Millie is a kind friend")


def test_placeholder_text_is_empty_whatever_the_mark_says() -> None:
    form = blank("early-discussion")
    root = document_xml(form)
    sdt = control(root, "pupil.class_name")
    sdt.find(f"{{{W}}}sdtPr").remove(sdt.find(f"{{{W}}}sdtPr/{{{W}}}showingPlcHdr"))
    assert read(with_document(form, root)).values["pupil.class_name"] == ""


# --- pre-filled forms ------------------------------------------------------------------------------


def test_prefilled_form_reads_back_its_values_and_nothing_else() -> None:
    known = {
        "pupil": {
            "upn": "B801200005001",
            "legal_forename": "Amelia",
            "legal_surname": "Hart",
            "date_of_birth": date(2016, 2, 14),
            "year_group": "4",
        },
        "plan_date": "2025-11-04",
        "cycle": 2,
        "primary_need": "SPLD",
        "outcomes": [{"description": "Reads a Year 3 book aloud with fewer than 5 errors a page"}],
        "provision": [{"what": "Phonics catch-up group", "weekly_cost": "8.75"}],
        "parents_agree": True,
    }
    raw = read(make_form(KINDS["support-plan"], school=SCHOOL, values=known))
    filled = {p: v for p, v in raw.values.items() if v not in ("", False)}
    assert filled == {
        "pupil.upn": "B801200005001",
        "pupil.legal_forename": "Amelia",
        "pupil.legal_surname": "Hart",
        "pupil.date_of_birth": "14/02/2016",
        "pupil.year_group": "Year 4",
        "plan_date": "04/11/2025",
        "cycle": "2",
        "primary_need": "SPLD - Specific learning difficulty",
        "outcomes.0.description": "Reads a Year 3 book aloud with fewer than 5 errors a page",
        "provision.0.what": "Phonics catch-up group",
        "provision.0.weekly_cost": "8.75",
        "parents_agree": True,
    }


@pytest.mark.parametrize("slug", list(KINDS))
def test_blank_with_data_then_extract_round_trips(slug: str, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = home / "values.json"
    values.write_text(json.dumps(case(f"{slug}.json"), ensure_ascii=False), encoding="utf-8")
    form = home / "form.docx"
    assert main(["--home", str(home), "blank", slug, "-o", str(form), "--data", str(values)]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "extract", str(form), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected(slug)


# --- a school's own template -------------------------------------------------------------------------


def install_school_template(settings: Settings) -> Path:
    path = settings.templates / "forms" / "support-plan.docx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(make_school_template(blank("support-plan")))
    return path


def test_school_template_is_used_and_read_back_by_tags(settings: Settings, home: Path) -> None:
    install_school_template(settings)
    form = home / "plan.docx"
    assert main(["--home", str(home), "blank", "support-plan", "-o", str(form)]) == 0
    data = form.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert any(n.startswith("word/media/") and n.endswith(".png") for n in archive.namelist())
    document = docx.Document(io.BytesIO(data))
    labels = [r.cells[0].paragraphs[0].text for r in document.tables[0].rows]
    assert labels[4:6] == [SCHOOL_LABELS["pupil.year_group"] + " *", SCHOOL_LABELS["pupil.date_of_birth"] + " *"]
    assert any(p.text == SCHOOL_GUIDANCE for p in document.paragraphs)
    filled = fill_like_word(data, typed("support-plan", case("support-plan.json")))
    model, _ = extract(filled, settings=settings)
    assert as_json(model) == expected("support-plan")


def test_broken_school_template_is_refused(settings: Settings, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = install_school_template(settings)
    document = docx.Document(str(path))
    document.tables[0]._tbl.remove(document.tables[0].rows[0]._tr)  # the UPN row, deleted by mistake
    document.save(str(path))
    assert main(["--home", str(home), "blank", "support-plan", "-o", str(home / "x.docx")]) == 7
    assert "UPN" in capsys.readouterr().err


# --- not a form, or not this version ---------------------------------------------------------------


def test_a_letter_is_not_a_form(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    letter = docx.Document()
    letter.add_paragraph("Dear Mrs Hart, thank you for coming in to talk about Millie's reading.")
    out = io.BytesIO()
    letter.save(out)
    with pytest.raises(NotAFormError):
        read(out.getvalue())
    (home / "letter.docx").write_bytes(out.getvalue())
    assert main(["--home", str(home), "extract", str(home / "letter.docx")]) == 4
    assert "not a senforms form" in capsys.readouterr().err


VERSION = KINDS["review"].version


def _custom_xml(form: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(form)) as archive:
        return archive.read("docProps/custom.xml")


def test_unknown_version_is_refused() -> None:
    form = fill_like_word(blank("review"), typed("review", case("review.json")))
    newer = replace_parts(
        form, {"docProps/custom.xml": _custom_xml(form).replace(f">{VERSION}</vt:lpwstr>".encode(), b">99</vt:lpwstr>")}
    )
    with pytest.raises(UnknownVersionError, match="version 99"):
        read(newer)


def test_footer_mark_alone_identifies_the_form() -> None:
    form = fill_like_word(blank("review"), typed("review", case("review.json")))
    bare = replace_parts(form, {"docProps/custom.xml": None})
    with zipfile.ZipFile(io.BytesIO(bare)) as archive:
        assert "docProps/custom.xml" not in archive.namelist()
        footer = next(n for n in archive.namelist() if n.startswith("word/footer"))
        footer_xml = archive.read(footer)
    model, _ = extract(bare)
    assert as_json(model) == expected("review")
    newer = replace_parts(bare, {footer: footer_xml.replace(f"version {VERSION}".encode(), b"version 99")})
    with pytest.raises(UnknownVersionError, match="version 99"):
        read(newer)


# --- extract exit codes ------------------------------------------------------------------------------


def test_extract_exit_codes(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = home / "good.docx"
    good.write_bytes(fill_like_word(blank("support-plan"), typed("support-plan", case("support-plan.json"))))
    assert main(["--home", str(home), "extract", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pupil"]["upn"] == "B801200005001"

    answers = typed("support-plan", case("support-plan.json"))
    answers |= {"review_date": "31/02/2026", "pupil.legal_surname": "", "cycle": "first", "primary_need": "Choose one"}
    bad = home / "bad.docx"
    bad.write_bytes(fill_like_word(blank("support-plan"), answers))
    assert main(["--home", str(home), "extract", str(bad)]) == 5
    err = capsys.readouterr().err
    assert "Review date: 31/02/2026 is not a real date" in err
    assert "Legal surname: this must be filled in" in err
    assert "Cycle number: 'first' is not a whole number" in err
    assert "Primary need (census code): this must be filled in" in err
    with pytest.raises(FormInvalidError) as problems:
        extract(bad.read_bytes())
    assert [p.label for p in problems.value.problems] == [
        "Legal surname",
        "Cycle number",
        "Primary need (census code)",
        "Review date",
    ]


@pytest.mark.parametrize("slug", list(KINDS))
def test_cases_fill_every_kind_of_box(slug: str) -> None:
    """The cases exercise every kind of answer box a form has, so the tests above mean something."""
    specs = fields(KINDS[slug])
    used = {specs[p].widget for p in typed(slug, case(f"{slug}.json"))}
    assert used == {f.widget for f in specs.values()}
