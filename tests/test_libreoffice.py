"""Word forms filled and saved in a real LibreOffice 7.4, which drops every w:tag on save, so they
are read back by their titles, labels and row numbers.

LibreOffice starts are slow (seconds) and this machine is small: all forms are filled in one
start and re-saved in another, by module fixtures, and the tests only read the results.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from senforms.config import Settings, load_settings, write_default_settings
from senforms.errors import FormInvalidError
from senforms.forms import blank_form, extract, read
from senforms.kinds import KINDS
from senforms.wordform import make_form
from tests.conftest import case
from tests.wordfill import (
    SCHOOL_LABELS,
    W,
    control,
    document_xml,
    fill_like_word,
    fill_many_in_libreoffice,
    make_school_template,
    resave_many_in_libreoffice,
    type_beside,
    typed,
    uno_python,
    with_document,
)

pytestmark = [
    pytest.mark.libreoffice,
    pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed"),
]

SCHOOL = "Oakfield Primary School"
AWKWARD = 'Kind & helpful; "reads" <b>maps</b> with Zoë, Jörg and Michał   \nLoves art  \nAnd drama '


def as_json(model: Any) -> dict[str, Any]:
    return json.loads(model.model_dump_json())


def expected(slug: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return as_json(KINDS[slug].model.model_validate(data if data is not None else case(f"{slug}.json")))


@pytest.fixture(scope="module")
def school(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home folder whose school keeps its own support plan (logo, wording, row order)."""
    home = tmp_path_factory.mktemp("home")
    write_default_settings(home)
    toml = home / "senforms.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('name = "(fill in)"', f'name = "{SCHOOL}"', 1))
    settings = load_settings(home)
    template = settings.templates / "forms" / "support-plan.docx"
    template.parent.mkdir(parents=True)
    template.write_bytes(make_school_template(make_form(KINDS["support-plan"], school=SCHOOL)))
    return settings


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, school: Settings) -> dict[str, Path]:
    """Every form these tests read, filled in one LibreOffice start."""
    if uno_python() is None:
        pytest.skip("LibreOffice's Python-UNO bridge is missing (Debian: apt-get install python3-uno)")
    folder = tmp_path_factory.mktemp("lo")
    jobs: list[tuple[Path, dict[str, str | bool], Path]] = []

    def job(name: str, form: bytes, answers: dict[str, str | bool]) -> None:
        src = folder / f"{name}-blank.docx"
        src.write_bytes(form)
        jobs.append((src, answers, folder / f"{name}.docx"))

    for slug in KINDS:
        job(slug, make_form(KINDS[slug], school=SCHOOL), typed(slug, case(f"{slug}.json")))

    ed = typed("early-discussion", case("early-discussion.json"))
    job(
        "awkward",
        make_form(KINDS["early-discussion"], school=SCHOOL),
        ed | {"strengths": AWKWARD, "completed_by": "Ms Zoë Brontë-O'Neill  ", "areas.communication": True},
    )

    # A form made before multi-line boxes were rich text: plain-text controls, which LibreOffice
    # 7.4 opens as input fields and saves with each typed line in its own w:t.
    old = document_xml(make_form(KINDS["early-discussion"], school=SCHOOL))
    for path in ("strengths", "difficulties", "pupil.parents.0.address"):
        pr = control(old, path).find(f"{{{W}}}sdtPr")
        etree.SubElement(pr, f"{{{W}}}text", {f"{{{W}}}multiLine": "1"})
    job("plain-text", with_document(make_form(KINDS["early-discussion"], school=SCHOOL), old), ed)

    # Pre-filled by senforms (dates with w:fullDate, a ticked box), then completed in LibreOffice:
    # the date retyped, the box unticked.
    known = case("early-discussion.json")
    known = {"pupil": known["pupil"], "meeting_date": known["meeting_date"], "areas": {"cognition": True}}
    rest = {p: v for p, v in ed.items() if not p.startswith("pupil.") and p != "meeting_date"}
    job(
        "prefilled",
        make_form(KINDS["early-discussion"], school=SCHOOL, values=known),
        rest | {"meeting_date": "08/10/2025", "areas.cognition": False},
    )

    # The school's own form: a person finds the reworded rows by the school's wording.
    plan = typed("support-plan", case("support-plan.json"))
    reworded = {SCHOOL_LABELS[p]: plan.pop(p) for p in SCHOOL_LABELS}
    job("school", blank_form(school, "support-plan"), plan | reworded)

    fill_many_in_libreoffice(jobs)
    return {out.stem: out for _, _, out in jobs}


@pytest.fixture(scope="module")
def resaved(tmp_path_factory: pytest.TempPathFactory, school: Settings) -> dict[str, Path]:
    """Forms filled in Word, then opened and saved in LibreOffice by someone else (one start)."""
    folder = tmp_path_factory.mktemp("word")
    paths = []
    for slug in KINDS:
        path = folder / f"{slug}.docx"
        path.write_bytes(fill_like_word(make_form(KINDS[slug], school=SCHOOL), typed(slug, case(f"{slug}.json"))))
        paths.append(path)
    school_form = fill_like_word(blank_form(school, "support-plan"), typed("support-plan", case("support-plan.json")))
    beside = fill_like_word(
        make_form(KINDS["review"], school=SCHOOL),
        {p: v for p, v in typed("review", case("review.json")).items() if p != "staff_views"},
    )
    for name, data in (("school", school_form), ("beside", type_beside(beside, "staff_views", "Calmer in class."))):
        (folder / f"{name}.docx").write_bytes(data)
        paths.append(folder / f"{name}.docx")
    outs = resave_many_in_libreoffice(paths, tmp_path_factory.mktemp("resaved"))
    return {p.stem: p for p in outs}


def _tags(path: Path) -> list[str]:
    return [t.get(f"{{{W}}}val") for t in document_xml(path.read_bytes()).iter(f"{{{W}}}tag")]


@pytest.mark.parametrize("slug", list(KINDS))
def test_filled_in_libreoffice_reads_back_by_labels(filled: dict[str, Path], slug: str) -> None:
    path = filled[slug]
    assert _tags(path) == [], "LibreOffice 7.4 drops tags; if it kept them, this test reads nothing new"
    assert read(path.read_bytes()).method == "labels"
    model, _ = extract(path.read_bytes())
    assert as_json(model) == expected(slug)


def test_awkward_text_and_a_ticked_box_from_libreoffice(filled: dict[str, Path]) -> None:
    model, _ = extract(filled["awkward"].read_bytes())
    assert model.strengths == 'Kind & helpful; "reads" <b>maps</b> with Zoë, Jörg and Michał\nLoves art\nAnd drama'
    assert model.completed_by == "Ms Zoë Brontë-O'Neill"
    assert model.areas.communication is True
    assert model.pupil.parents[1].name == "Łukasz Nowak"


def test_lines_typed_in_libreoffice_input_fields_are_kept(filled: dict[str, Path]) -> None:
    assert b"<w:br/>" not in filled["plain-text"].read_bytes(), "LibreOffice writes no w:br for these"
    model, _ = extract(filled["plain-text"].read_bytes())
    assert as_json(model) == expected("early-discussion")


def test_prefilled_form_completed_in_libreoffice(filled: dict[str, Path]) -> None:
    model, _ = extract(filled["prefilled"].read_bytes())
    assert model.meeting_date == date(2025, 10, 8), "the retyped date, not the stale w:fullDate"
    assert model.areas.cognition is False, "unticked in LibreOffice"
    assert model.areas.semh is True
    assert model.pupil.upn == "H801200001001"
    assert model.pupil.date_of_birth == date(2016, 2, 14)


def test_school_form_filled_in_libreoffice_needs_the_school_wording(filled: dict[str, Path], school: Settings) -> None:
    data = filled["school"].read_bytes()
    model, _ = extract(data, settings=school)
    assert as_json(model) == expected("support-plan")
    # Without the school's template the reworded rows cannot be found: proof the wording was learned.
    with pytest.raises(FormInvalidError) as problems:
        extract(data)
    assert {p.label for p in problems.value.problems} == {"Date of birth", "Year group"}


@pytest.mark.parametrize("name", [*KINDS, "school"])
def test_filled_in_word_then_resaved_in_libreoffice(resaved: dict[str, Path], school: Settings, name: str) -> None:
    path = resaved[name]
    assert _tags(path) == []
    slug = "support-plan" if name == "school" else name
    model, _ = extract(path.read_bytes(), settings=school)
    assert as_json(model) == expected(slug)


def test_text_typed_beside_the_box_survives_a_resave(resaved: dict[str, Path]) -> None:
    model, _ = extract(resaved["beside"].read_bytes())
    assert model.staff_views == "Calmer in class."
    data = case("review.json")
    assert as_json(model) == expected("review", data | {"staff_views": "Calmer in class."})
