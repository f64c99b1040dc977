"""Pre-filled forms from blanks taken apart once: only the parts with answers are written again,
and one form's values never reach the next."""

from __future__ import annotations

import io
import struct
import zipfile

from senforms.forms import extract
from senforms.kinds import KINDS
from senforms.wordform import make_form
from senforms.wordml import PLACEHOLDER_CHOICE
from tests.pipeline_helpers import pupil_upn, values


def _raw(data: bytes) -> dict[str, bytes]:
    found = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        for info in archive.infolist():
            name_len, extra_len = struct.unpack_from("<2H", data, info.header_offset + 26)
            start = info.header_offset + 30 + name_len + extra_len
            found[info.filename] = data[start : start + info.compress_size]
    return found


def test_a_prefilled_word_form_rewrites_only_the_parts_with_answers() -> None:
    blank = _raw(make_form(KINDS["support-plan"], school="Oakfield Primary School"))
    filled = _raw(make_form(KINDS["support-plan"], school="Oakfield Primary School", values=values("support-plan")))
    assert list(filled) == list(blank)
    changed = {name for name in blank if filled[name] != blank[name]}
    assert "word/document.xml" in changed
    assert changed <= {"word/document.xml", "word/header1.xml"}
    assert "word/styles.xml" in blank and filled["word/styles.xml"] == blank["word/styles.xml"]


def test_prefilled_word_forms_never_carry_another_pupils_values() -> None:
    kind = KINDS["early-discussion"]
    first = values("early-discussion", pupil={"upn": pupil_upn(1), "legal_surname": "Quillfeather"})
    second = values("early-discussion", pupil={"upn": pupil_upn(2), "legal_surname": "Zebedee"})
    a = make_form(kind, school="Oakfield Primary School", values=first)
    b = make_form(kind, school="Oakfield Primary School", values=second)
    again = make_form(kind, school="Oakfield Primary School", values=first)
    assert a == again
    model, _ = extract(b)
    assert model.pupil.upn == pupil_upn(2) and model.pupil.legal_surname == "Zebedee"  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(b)) as archive:
        assert b"Quillfeather" not in archive.read("word/document.xml")
    # The blank is still blank after forms were filled from it.
    with zipfile.ZipFile(io.BytesIO(make_form(kind, school="Oakfield Primary School"))) as archive:
        document = archive.read("word/document.xml")
    assert b"Quillfeather" not in document and b"Zebedee" not in document


def test_prefilled_pdf_forms_are_filled_into_a_copy_of_one_drawing() -> None:
    from pypdf import PdfReader

    from senforms.pdfform import _blank, make_pdf_form

    kind = KINDS["early-discussion"]
    first = values("early-discussion", pupil={"upn": pupil_upn(1), "legal_surname": "Quillfeather"})
    second = values("early-discussion", pupil={"upn": pupil_upn(2), "legal_surname": "Zebedee"}, decision="monitor")
    _blank.cache_clear()
    a = make_pdf_form(kind, school="Oakfield Primary School", values=first)
    b = make_pdf_form(kind, school="Oakfield Primary School", values=second)
    assert _blank.cache_info().misses == 1  # drawn once for both
    model, _ = extract(b)
    assert model.pupil.legal_surname == "Zebedee" and model.decision.value == "monitor"  # type: ignore[attr-defined]
    assert extract(a)[0].pupil.legal_surname == "Quillfeather"  # type: ignore[attr-defined]
    fields = PdfReader(io.BytesIO(b)).get_fields() or {}
    assert fields["decision"]["/V"] == "monitor"
    assert all(v.get("/V") != "Quillfeather" for v in fields.values())
    # A tick is the box's "on" state, as reportlab draws a ticked box.
    ticked = [name for name, value in case_ticks(first).items() if value]
    assert ticked
    for name in ticked:
        assert fields[name]["/V"] == "/Yes"
    blank_fields = PdfReader(io.BytesIO(make_pdf_form(kind, school="Oakfield Primary School"))).get_fields() or {}
    # A list shows its "Choose one" item until a choice is made.
    assert all(v.get("/V") in (None, "", "/Off", PLACEHOLDER_CHOICE) for v in blank_fields.values())


def case_ticks(data: dict) -> dict[str, bool]:
    from senforms.layout import Widget, fields
    from senforms.wordform import flatten

    specs = fields(KINDS["early-discussion"])
    return {p: bool(v) for p, v in flatten(data).items() if p in specs and specs[p].widget is Widget.check}


def test_the_header_kept_from_the_last_form_follows_a_change_of_school_name() -> None:
    """A part with few controls keeps its last filling; a form for another school name must not
    get it, and the same name again must get the same bytes."""
    kind = KINDS["review"]

    def header(school: str) -> tuple[bytes, bytes]:
        data = make_form(kind, school=school, values=values("review"))
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.read("word/header1.xml"), _raw(data)["word/header1.xml"]

    first, first_raw = header("Oakfield Primary School")
    other, _ = header("Elm Tree Academy")
    again, again_raw = header("Oakfield Primary School")
    assert b"Oakfield Primary School" in first and b"Oakfield" not in other and b"Elm Tree Academy" in other
    assert again == first and again_raw == first_raw


def test_a_part_no_answer_goes_in_is_the_blanks_own_bytes() -> None:
    from senforms.wordform import _template_bytes

    kind = KINDS["early-discussion"]
    blank = _raw(make_form(kind, school="Oakfield Primary School"))
    template = _raw(_template_bytes(kind, None, 0))
    assert blank["word/document.xml"] == template["word/document.xml"]  # copied, not rewritten
    assert blank["word/header1.xml"] != template["word/header1.xml"]  # the school's name went in
    model = extract(make_form(kind, school="Oakfield Primary School", values=values("early-discussion")))[0]
    assert model.pupil.upn == values("early-discussion")["pupil"]["upn"]  # type: ignore[attr-defined]
