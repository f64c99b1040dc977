"""The Word reader's text walk, made faster (issue 14), still reads the unusual shapes it read
before: text in a control but outside its content, a grey-styled run whose words were typed
over, two w:t side by side, and a file nested as deep as the parser allows. Each form is a real
.docx built from a blank senforms form and edited as a program (or a hostile file) would."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from senforms.errors import FormInvalidError, UnreadableFileError
from senforms.forms import read
from senforms.kinds import KINDS
from senforms.wordform import make_form
from tests.conftest import case
from tests.wordfill import W, control, document_xml, fill_like_word, strip_controls, typed, with_document

ROOT = Path(__file__).resolve().parent.parent
SCHOOL = "Oakfield Primary School"


def _w(tag: str) -> str:
    return f"{{{W}}}{tag}"


def filled_early() -> bytes:
    return fill_like_word(make_form(KINDS["early-discussion"], school=SCHOOL), typed("early-discussion", case("early-discussion.json")))


def _run(text: str, *, style: str | None = None) -> etree._Element:
    run = etree.Element(_w("r"))
    if style:
        etree.SubElement(etree.SubElement(run, _w("rPr")), _w("rStyle")).set(_w("val"), style)
    etree.SubElement(run, _w("t")).text = text
    return run


def test_text_inside_a_control_but_outside_its_content_is_still_read() -> None:
    """A program that writes a run straight into w:sdt (after its content, with a w:sdtEndPr)
    puts words on the page; the reader kept them before and must still keep them."""
    form = filled_early()
    root = document_xml(form)
    sdt = control(root, "completed_by")
    end = etree.SubElement(sdt, _w("sdtEndPr"))
    etree.SubElement(end, _w("rPr"))
    sdt.append(_run(" (SENCO)"))
    raw = read(with_document(form, root))
    assert raw.values["completed_by"] == typed("early-discussion", case("early-discussion.json"))["completed_by"] + " (SENCO)"


def test_a_grey_styled_run_typed_over_is_an_answer_and_grey_placeholder_words_are_not() -> None:
    """Google Docs keeps the placeholder's grey character style on a run a person typed over:
    the style alone does not make the words a placeholder; the placeholder words do."""
    form = filled_early()
    root = document_xml(form)
    strip_controls(root)
    for path, words in (("pupil.class_name", "Rowan"), ("completed_by", "Type here")):
        cell = next(
            tc for tc in root.iter(_w("tc")) if "".join(tc.itertext()).strip() == typed("early-discussion", case("early-discussion.json"))[path]
        )
        for p in list(cell.iter(_w("p"))):
            p.getparent().remove(p)
        etree.SubElement(cell, _w("p")).append(_run(words, style="PlaceholderText"))
    raw = read(with_document(form, root))
    assert raw.method == "labels"
    assert raw.values["pupil.class_name"] == "Rowan"
    assert raw.values["completed_by"] == ""


def test_a_grid_row_that_kept_only_its_titles_is_an_answer_row_not_one_added() -> None:
    """A row whose boxes lost their tags but kept their titles (a word processor that drops tags
    as it copies a row) holds answers: it is read by title and is not 'a row added' to the grid,
    while a plain row typed into the same table still is. The added-rows pass finds the cells
    holding boxes from the boxes up, so it must count boxes known by title as well as by tag."""
    answers = typed("support-plan", case("support-plan.json"))
    form = fill_like_word(make_form(KINDS["support-plan"], school=SCHOOL), answers)
    root = document_xml(form)
    row = next(control(root, "outcomes.1.description").iterancestors(_w("tr")))
    for tag in list(row.iter(_w("tag"))):
        tag.getparent().remove(tag)
    raw = read(with_document(form, root))
    assert raw.method == "tags"
    assert raw.values["outcomes.1.description"] == answers["outcomes.1.description"]
    # The same table with a plain row typed in after the last: that is still a problem.
    added = etree.SubElement(row.getparent(), _w("tr"))
    for _ in row.iterchildren(_w("tc")):
        etree.SubElement(etree.SubElement(added, _w("tc")), _w("p")).append(_run("Swims a width"))
    with pytest.raises(FormInvalidError) as raised:
        read(with_document(form, root))
    assert [p.label for p in raised.value.problems] == ["Outcomes"]
    assert "a row was added to this table" in raised.value.problems[0].message


def test_two_text_elements_side_by_side_are_two_lines() -> None:
    """LibreOffice saves each line typed in a text box as a w:t of one run with no break
    between: lines in a box of several lines, words in a one-line box."""
    form = filled_early()
    root = document_xml(form)
    for path, lines in (("strengths", ("Reads well", "and draws")), ("completed_by", ("Mrs Ada", "Lovelace"))):
        content = control(root, path).find(_w("sdtContent"))
        assert content is not None
        for child in list(content):
            content.remove(child)
        run = etree.SubElement(content, _w("r"))
        for line in lines:
            etree.SubElement(run, _w("t")).text = line
    raw = read(with_document(form, root))
    assert raw.values["strengths"] == "Reads well\nand draws"
    assert raw.values["completed_by"] == "Mrs Ada Lovelace"


def test_a_form_nested_as_deep_as_the_parser_allows_is_read_without_a_crash() -> None:
    """A hostile file with an answer nested ~240 levels deep (runs inside unknown elements
    inside runs): the parser refuses more than 256 levels, and the walk's recursion stays well
    inside Python's limit for what it accepts."""
    form = filled_early()
    root = document_xml(form)
    content = control(root, "completed_by").find(_w("sdtContent"))
    assert content is not None
    depth = sum(1 for _ in content.iterancestors())
    node = content
    while depth < 244:
        node = etree.SubElement(etree.SubElement(node, _w("r")), _w("smartTag"))
        depth += 2
    etree.SubElement(etree.SubElement(node, _w("r")), _w("t")).text = "deep"
    assert sys.getrecursionlimit() <= 1000  # the test means something only at the usual limit
    raw = read(with_document(form, root))
    assert str(raw.values["completed_by"]).endswith("deep")


def test_the_read_bench_prints_each_kind_against_a_bare_parse(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from bench import read as bench

    bench.main(["--rounds", "1"])
    out = capsys.readouterr().out
    for short in ("early", "plan", "review"):
        assert f"{short:>6}: read+validate" in out
    assert out.count("x a bare parse") == 3


def test_a_form_read_again_is_not_parsed_again_and_is_its_own_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch reads each file twice (to put the files in the cycle's order, then to process
    it): the second reading of the same bytes with the same labels is the first one's answers,
    not a second parse, and a copy that a caller may change without changing the next reading.
    Other labels, other bytes (even under the same look-up key) and a refused file are read afresh."""
    import senforms.read as reading
    import senforms.read.word as word

    form = filled_early()
    reading.forget_read_forms()
    expected = read(form, name="one.docx")
    reading.forget_read_forms()
    parsed: list[bytes] = []
    real = word.read_word

    def counted(data: bytes, **kwargs: Any) -> Any:
        parsed.append(data)
        return real(data, **kwargs)

    monkeypatch.setattr(word, "read_word", counted)
    first = read(bytes(form), name="one.docx")
    first.values["completed_by"] = "changed by a caller"
    first.warnings.append("added by a caller")
    again = read(bytes(form), name="one.docx")
    assert len(parsed) == 1
    assert again.values == expected.values and again.warnings == expected.warnings == []
    again.values.clear()
    assert read(bytes(form), name="one.docx").values == expected.values
    # Words learned from a school's own form template are part of what is read.
    reading.read_form(bytes(form), name="one.docx", labels={"early-discussion": {"class": "pupil.class_name"}})
    assert len(parsed) == 2
    # Different bytes under the same look-up key (as if their CRC-32s were equal) are read as themselves.
    root = document_xml(form)
    control(root, "completed_by").find(f".//{_w('t')}").text = "Someone else"
    other = with_document(form, root)
    monkeypatch.setattr(reading, "_key", lambda data: (0, 0))  # as if their CRC-32s were equal
    assert read(form, name="one.docx").values["completed_by"] == expected.values["completed_by"]
    assert read(other, name="two.docx").values["completed_by"].startswith("Someone else")
    assert read(form, name="one.docx").values["completed_by"] == expected.values["completed_by"]
    # A refused file is refused every time: nothing is kept from a reading that failed.
    broken = with_document(form, etree.fromstring(b"<x/>"))
    for _ in range(2):
        with pytest.raises(UnreadableFileError):
            read(broken, name="three.docx")
    reading.forget_read_forms()
