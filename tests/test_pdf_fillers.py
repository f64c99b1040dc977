"""PDF forms filled by independent software (issue 13, point 8): a check box's value decides over
its old appearance, every list can be set by PyMuPDF, and forms printed before that change
still read."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject

from senforms.errors import FormInvalidError
from senforms.kinds import KINDS
from senforms.layout import Widget, fields
from senforms.wordml import PLACEHOLDER_CHOICE
from tests.conftest import CASES
from tests.test_pdf_forms import (
    SLUGS,
    _widgets,
    blank,
    expected,
    fill_with_pypdf,
    prefilled,
    read_back,
    typed,
    values_for,
)

# Blank forms written by senforms 0.1.0, whose "Choose one" item had an empty export value.
OLD_FORMS = CASES / "pdf"


def _rewritten(data: bytes, change: Any) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    change(_widgets(writer))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- check boxes: the value decides ---------------------------------------------------------------


def test_checkbox_whose_value_is_off_is_off_whatever_its_appearance_says() -> None:
    """A filler that clears a tick by setting /V Off but leaves the old appearance (/AS /Yes)."""
    data = prefilled("support-plan")

    def untick(widgets: dict[str, Any]) -> None:
        assert widgets["parents_agree"]["/AS"] == "/Yes"
        widgets["parents_agree"][NameObject("/V")] = NameObject("/Off")

    assert read_back(data).parents_agree is True
    assert read_back(_rewritten(data, untick)).parents_agree is False


def test_checkbox_whose_value_is_on_is_on_whatever_its_appearance_says() -> None:
    def tick(widgets: dict[str, Any]) -> None:
        widgets["areas.semh"][NameObject("/V")] = NameObject("/Yes")
        widgets["areas.semh"][NameObject("/AS")] = NameObject("/Off")

    model = read_back(_rewritten(prefilled("early-discussion"), tick))
    assert model.areas.semh is True


@pytest.mark.parametrize(("state", "ticked"), [("/Yes", True), ("/Off", False)])
def test_checkbox_with_no_value_reads_its_appearance(state: str, ticked: bool) -> None:
    """Some software sets only the widget's appearance state; with no /V that is all there is."""

    def appearance_only(widgets: dict[str, Any]) -> None:
        widgets["parents_agree"].pop("/V", None)
        widgets["parents_agree"][NameObject("/AS")] = NameObject(state)

    assert read_back(_rewritten(prefilled("support-plan"), appearance_only)).parents_agree is ticked


# --- choice boxes: "Choose one" has a value of its own ------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_every_choice_item_has_a_non_empty_export_value(slug: str) -> None:
    """PyMuPDF refuses to set a list with an empty-valued item ('bad choice field list')."""
    found = PdfReader(io.BytesIO(blank(slug))).get_fields() or {}
    choices = [p for p, f in fields(KINDS[slug]).items() if f.widget is Widget.choice]
    assert choices
    for path in choices:
        options = [list(map(str, o)) for o in found[path]["/Opt"]]
        assert options[0] == [PLACEHOLDER_CHOICE, PLACEHOLDER_CHOICE]
        assert all(export and shown for export, shown in options), path
        assert str(found[path]["/V"]) == PLACEHOLDER_CHOICE  # a blank form shows "Choose one" selected


@pytest.mark.parametrize("slug", ["early-discussion", "review"])
def test_old_forms_with_an_empty_choose_one_value_still_read(slug: str) -> None:
    old = (OLD_FORMS / f"{slug}-blank-0.1.0.pdf").read_bytes()
    options = PdfReader(io.BytesIO(old)).get_fields()["pupil.year_group"]["/Opt"]
    assert [str(x) for x in options[0]] == ["", PLACEHOLDER_CHOICE], "the fixture is an old form"
    with pytest.raises(FormInvalidError) as caught:
        read_back(old)
    assert "Year group: this must be filled in" in caught.value.message
    filled = fill_with_pypdf(old, typed(KINDS[slug], values_for(slug)), appearances=True)
    assert read_back(filled) == expected(slug)


# --- filled through PyMuPDF, as a school's script or another viewer would ------------------------------


def fill_with_pymupdf(data: bytes, answers: dict[str, Any]) -> bytes:
    """Set each named field through PyMuPDF's widget API: text typed, an item picked from the
    list by the words shown, a box ticked or cleared."""
    pymupdf = pytest.importorskip("pymupdf", reason="PyMuPDF is in senforms' test extras")
    doc = pymupdf.open(stream=data, filetype="pdf")
    done = set()
    for page in doc:
        for widget in page.widgets():
            name = widget.field_name
            if name not in answers:
                continue
            value = answers[name]
            if widget.field_type == pymupdf.PDF_WIDGET_TYPE_CHECKBOX:
                widget.field_value = widget.on_state() if value else "Off"
            else:
                widget.field_value = value
            widget.update()
            done.add(name)
    assert done == set(answers)
    return doc.tobytes()


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("shown", [True, False], ids=["choices-by-words", "choices-by-value"])
def test_filled_through_pymupdf_reads_back_exactly(slug: str, shown: bool) -> None:
    answers = typed(KINDS[slug], values_for(slug), shown_choices=shown)
    assert read_back(fill_with_pymupdf(blank(slug), answers)) == expected(slug)


def test_pymupdf_clears_ticks_and_choices_of_a_prefilled_form() -> None:
    slug = "early-discussion"
    answers = {
        "areas.cognition": False,
        "secondary_need": PLACEHOLDER_CHOICE,
        "pupil.legal_surname": "Łukasiewicz-Núñez",
    }
    before = read_back(prefilled(slug))
    assert before.areas.cognition is True and before.secondary_need is not None
    after = read_back(fill_with_pymupdf(prefilled(slug), answers))
    assert after.areas.cognition is False
    assert after.secondary_need is None
    assert after.pupil.legal_surname == "Łukasiewicz-Núñez"
