"""No silent misreads of a Word form (issue 13, point 8): what people do to a form in Word or
Google Docs that senforms once read wrongly with no word said. Each form here is a real .docx
built from a blank senforms form and edited as a person (or Google Docs) would edit it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from lxml import etree

from senforms.errors import FormInvalidError
from senforms.forms import extract, read
from senforms.kinds import KINDS
from senforms.layout import fields
from senforms.wordform import make_form
from senforms.wordml import PLACEHOLDER_CHOICE, PLACEHOLDER_DATE, PLACEHOLDER_TEXT
from tests.conftest import case
from tests.wordfill import (
    W,
    control,
    copy_row,
    document_xml,
    fill_like_word,
    plain_run,
    strip_controls,
    type_beside,
    type_into_copy,
    typed,
    with_document,
    word_in_place_of,
)

SCHOOL = "Oakfield Primary School"
AGREE = "Parents or carers agree with this plan"


def _w(tag: str) -> str:
    return f"{{{W}}}{tag}"


def blank(slug: str) -> bytes:
    return make_form(KINDS[slug], school=SCHOOL)


def answers(slug: str, **changes: Any) -> dict[str, str | bool]:
    return typed(slug, case(f"{slug}.json")) | changes


def expected(slug: str) -> dict[str, Any]:
    return json.loads(KINDS[slug].model.model_validate(case(f"{slug}.json")).model_dump_json())


def as_json(model: Any) -> dict[str, Any]:
    return json.loads(model.model_dump_json())


def problems_of(form: bytes) -> list[Any]:
    with pytest.raises(FormInvalidError) as caught:
        extract(form)
    return caught.value.problems


def plan_with_word_for_agreement(word: str, *, stripped: bool = False) -> bytes:
    """A support plan whose 'parents agree' check box was deleted and a word typed in its cell."""
    filled = fill_like_word(
        blank("support-plan"), {p: v for p, v in answers("support-plan").items() if p != "parents_agree"}
    )
    root = document_xml(filled)
    word_in_place_of(root, "parents_agree", word)
    if stripped:
        strip_controls(root)
    return with_document(filled, root)


# --- a word typed in place of a deleted check box ------------------------------------------------


@pytest.mark.parametrize("stripped", [False, True], ids=["tags-kept", "tags-lost"])
@pytest.mark.parametrize(
    ("word", "ticked"),
    [("Yes", True), ("Y", True), ("Agreed", True), ("ticked", True), ("x", True), ("No", False), ("Not yet", False)],
)
def test_word_typed_in_place_of_a_check_box_reads_as_people_mean_it(word: str, ticked: bool, stripped: bool) -> None:
    model, _ = extract(plan_with_word_for_agreement(word, stripped=stripped))
    assert model.parents_agree is ticked


@pytest.mark.parametrize("stripped", [False, True], ids=["tags-kept", "tags-lost"])
@pytest.mark.parametrize("word", ["Not yet - next meeting", "maybe", "Mum yes, Dad no"])
def test_any_other_word_in_place_of_a_check_box_is_a_problem_naming_the_box(word: str, stripped: bool) -> None:
    problems = problems_of(plan_with_word_for_agreement(word, stripped=stripped))
    assert [p.label for p in problems] == [AGREE]
    assert word in problems[0].message and "Yes or No" in problems[0].message


def test_words_in_place_of_the_area_check_boxes_each_read_or_named() -> None:
    form = fill_like_word(
        blank("early-discussion"), {p: v for p, v in answers("early-discussion").items() if "areas." not in p}
    )
    root = document_xml(form)
    for path, word in [
        ("areas.communication", "Y"),
        ("areas.cognition", "no"),
        ("areas.semh", "x"),
        ("areas.sensory_physical", "?"),
    ]:
        word_in_place_of(root, path, word)
    problems = problems_of(with_document(form, root))
    # Only the box that says neither yes nor no is a problem; the others were read.
    assert [p.label for p in problems] == ["Sensory and/or physical"]
    # The same form with that word made plain reads as written.
    sdt_cell = next(t for t in root.iter(_w("t")) if t.text == "?")
    sdt_cell.text = "No"
    model, _ = extract(with_document(form, root))
    assert (model.areas.communication, model.areas.cognition, model.areas.semh, model.areas.sensory_physical) == (
        True,
        False,
        True,
        False,
    )


# --- Word's special hyphens, tabs and line breaks ----------------------------------------------


def _runs_into(root: etree._Element, path: str, *parts: str | etree._Element) -> None:
    """Replace a control's content with runs: text, or an empty element such as w:noBreakHyphen."""
    sdt = control(root, path)
    pr, content = sdt.find(_w("sdtPr")), sdt.find(_w("sdtContent"))
    for mark in pr.findall(_w("showingPlcHdr")):
        pr.remove(mark)
    for child in list(content):
        content.remove(child)
    for part in parts:
        if isinstance(part, str):
            content.append(plain_run(part))
        else:
            run = etree.SubElement(content, _w("r"))
            run.append(part)


def test_non_breaking_and_soft_hyphens_read_back_exactly() -> None:
    form = fill_like_word(blank("early-discussion"), answers("early-discussion"))
    root = document_xml(form)
    # Ctrl+Shift+hyphen between the two surnames; Ctrl+hyphen (an optional break) inside one.
    _runs_into(
        root,
        "pupil.legal_surname",
        "Łuka",
        etree.Element(_w("softHyphen")),
        "siewicz",
        etree.Element(_w("noBreakHyphen")),
        "Núñez",
    )
    # The same two typed as characters (U+2011, U+00AD), as some programs save them.
    _runs_into(root, "completed_by", "Ms Zoë Brontë\u2011O'Ne\u00adill")
    raw = read(with_document(form, root))
    assert raw.values["pupil.legal_surname"] == "Łukasiewicz-Núñez"
    model, _ = extract(with_document(form, root))
    assert model.pupil.legal_surname == "Łukasiewicz-Núñez"
    assert model.completed_by == "Ms Zoë Brontë-O'Neill"


def test_tabs_and_line_breaks_inside_values_read_sensibly() -> None:
    form = fill_like_word(blank("early-discussion"), answers("early-discussion"))
    root = document_xml(form)
    # One-line boxes: a tab or Shift+Enter between words is a space, not a hidden character.
    _runs_into(root, "pupil.class_name", "Willow", etree.Element(_w("tab")), "Class")
    _runs_into(root, "completed_by", "Mrs Ada", etree.Element(_w("br")), "Lovelace ")
    # A box of several lines keeps its lines, and a tab typed to indent.
    _runs_into(root, "strengths", "Reads well", etree.Element(_w("br")), etree.Element(_w("tab")), "and draws")
    model, _ = extract(with_document(form, root))
    assert model.pupil.class_name == "Willow Class"
    assert model.completed_by == "Mrs Ada Lovelace"
    assert model.strengths == "Reads well\n\tand draws"


# --- placeholder words left as plain text (Google Docs) --------------------------------------------


@pytest.mark.parametrize("slug", list(KINDS))
def test_placeholder_words_left_as_plain_text_read_as_empty(slug: str) -> None:
    root = document_xml(blank(slug))
    text = "".join(root.itertext())
    assert PLACEHOLDER_TEXT in text and PLACEHOLDER_DATE in text and PLACEHOLDER_CHOICE in text
    strip_controls(root)
    assert not list(root.iter(_w("sdt")))
    raw = read(with_document(blank(slug), root))
    assert raw.method == "labels"
    assert set(raw.values) == set(fields(KINDS[slug]))
    assert {p: v for p, v in raw.values.items() if v not in ("", False)} == {}


@pytest.mark.parametrize("slug", list(KINDS))
def test_form_filled_then_stripped_of_its_boxes_reads_only_what_was_typed(slug: str) -> None:
    """Filled, then its boxes stripped: the answers read, and the boxes left empty (placeholder
    words still showing) read as empty rather than as answers such as 'Choose one'."""
    form = fill_like_word(blank(slug), answers(slug))
    root = document_xml(form)
    strip_controls(root)
    stripped = with_document(form, root)
    assert PLACEHOLDER_TEXT in "".join(root.itertext())
    raw = read(stripped)
    assert raw.method == "labels"
    typed_paths = set(answers(slug))
    assert all(v in ("", False) for p, v in raw.values.items() if p not in typed_paths)
    model, _ = extract(stripped)
    assert as_json(model) == expected(slug)


def test_placeholder_words_beside_a_typed_answer_are_not_part_of_it() -> None:
    """A box removed in Word ('Remove content control') keeps its grey words as styled text; a
    person then types after them."""
    typed_in = {p: v for p, v in answers("early-discussion").items() if p != "pupil.class_name"}
    form = type_beside(fill_like_word(blank("early-discussion"), typed_in), "pupil.class_name", "Willow")
    root = document_xml(form)
    strip_controls(root)
    model, _ = extract(with_document(form, root))
    assert model.pupil.class_name == "Willow"


# --- rows and boxes added in Word ------------------------------------------------------------------


def six_outcomes() -> dict[str, str | bool]:
    out = answers("support-plan")
    for i in range(6):
        out.setdefault(f"outcomes.{i}.description", f"Outcome number {i + 1}")
    return out


def plan_with_seventh_outcome(*, seventh: str | None = "Swims a width unaided", stripped: bool = False) -> bytes:
    filled = fill_like_word(blank("support-plan"), six_outcomes())
    root = document_xml(filled)
    twin = copy_row(root, "outcomes.5.description")
    twin.find(f".//{_w('tc')}").find(f".//{_w('t')}").text = "7"  # the person renumbers the copy
    if seventh is not None:
        type_into_copy(twin, "outcomes.5.description", seventh)
    if stripped:
        strip_controls(root)
    return with_document(filled, root)


@pytest.mark.parametrize("stripped", [False, True], ids=["tags-kept", "tags-lost"])
def test_seventh_outcome_row_added_in_word_is_a_problem(stripped: bool) -> None:
    problems = problems_of(plan_with_seventh_outcome(stripped=stripped))
    assert [p.label for p in problems] == ["Outcomes"]
    assert "the form has room for 6 outcomes" in problems[0].message


def test_copied_outcome_row_left_empty_is_not_a_problem() -> None:
    model, _ = extract(plan_with_seventh_outcome(seventh=None))
    assert [o.description for o in model.outcomes][5] == "Outcome number 6"
    assert len(model.outcomes) == 6


def test_row_inserted_without_boxes_and_typed_in_is_a_problem() -> None:
    """'Insert row below' on an outcome row makes a row of plain cells with no boxes or tags."""
    filled = fill_like_word(blank("support-plan"), six_outcomes())
    root = document_xml(filled)
    twin = copy_row(root, "outcomes.5.description")
    for sdt in list(twin.iter(_w("sdt"))):
        sdt.getparent().remove(sdt)
    cells = list(twin.iterchildren(_w("tc")))
    cells[0].find(f".//{_w('t')}").text = ""
    cells[1].find(_w("p")).append(plain_run("Swims a width unaided"))
    problems = problems_of(with_document(filled, root))
    assert [p.label for p in problems] == ["Outcomes"]
    assert "the form has room for 6 outcomes" in problems[0].message


@pytest.mark.parametrize("stripped", [False, True], ids=["tags-kept", "tags-lost"])
def test_ninth_provision_row_is_a_problem_in_any_grid(stripped: bool) -> None:
    out = answers("support-plan")
    for i in range(8):
        out.setdefault(f"provision.{i}.what", f"Provision {i + 1}")
    filled = fill_like_word(blank("support-plan"), out)
    root = document_xml(filled)
    twin = copy_row(root, "provision.7.what")
    type_into_copy(twin, "provision.7.what", "Speech and language therapy")
    if stripped:
        strip_controls(root)
    problems = problems_of(with_document(filled, root))
    assert [p.label for p in problems] == ["Provision"]
    assert "the form has room for 8 rows" in problems[0].message


@pytest.mark.parametrize("stripped", [False, True], ids=["tags-kept", "tags-lost"])
def test_third_parent_column_added_in_word_is_a_problem(stripped: bool) -> None:
    filled = fill_like_word(blank("early-discussion"), answers("early-discussion"))
    root = document_xml(filled)
    table = next(control(root, "pupil.parents.0.name").iterancestors(_w("tbl")))
    for number, row in enumerate(table.iterchildren(_w("tr"))):
        cell = copy.deepcopy(list(row.iterchildren(_w("tc")))[-1])
        for sdt in list(cell.iter(_w("sdt"))):
            sdt.getparent().remove(sdt)
        for t in list(cell.iter(_w("t"))):
            t.getparent().remove(t)
        text = "Parent or carer 3" if number == 0 else ("Grandma Hart" if number == 1 else "")
        cell.find(_w("p")).append(plain_run(text))
        row.append(cell)
    if stripped:
        strip_controls(root)
    problems = problems_of(with_document(filled, root))
    assert [p.label for p in problems] == ["Parent or carer"]
    assert "the form has room for 2" in problems[0].message


def test_box_copied_with_a_different_answer_is_a_problem_not_a_lost_value() -> None:
    filled = fill_like_word(blank("early-discussion"), answers("early-discussion"))
    root = document_xml(filled)
    twin = copy_row(root, "pupil.legal_surname")
    type_into_copy(twin, "pupil.legal_surname", "Hart-Jones")
    problems = problems_of(with_document(filled, root))
    assert [p.label for p in problems] == ["Legal surname"]
    assert "'Hart'" in problems[0].message and "'Hart-Jones'" in problems[0].message


def test_box_copied_with_the_same_answer_or_left_empty_reads_as_one() -> None:
    filled = fill_like_word(blank("early-discussion"), answers("early-discussion"))
    root = document_xml(filled)
    copy_row(root, "pupil.legal_surname")  # the same answer twice
    empty = copy_row(root, "pupil.class_name")
    for t in empty.iter(_w("t")):
        if t.getparent().getparent().tag == _w("sdtContent"):
            t.text = PLACEHOLDER_TEXT
    model, _ = extract(with_document(filled, root))
    assert as_json(model) == expected("early-discussion")


def test_problems_found_in_reading_come_with_the_form_s_other_problems() -> None:
    form = plan_with_word_for_agreement("maybe")
    root = document_xml(form)
    word_text = control(root, "pupil.legal_surname").find(f".//{_w('t')}")
    word_text.text = ""
    problems = problems_of(with_document(form, root))
    assert [p.label for p in problems] == ["Legal surname", AGREE]
    assert all(isinstance(p.message, str) and "Traceback" not in p.message for p in problems)
