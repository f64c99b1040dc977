"""Letters on paper a school would send: A4, one font family, "Page N of M", rows and headings
that do not break badly, and the title in the document's properties.

The Word-level tests read the rendered .docx; the LibreOffice tests convert every rendered letter
to PDF and measure what would be printed (page size with pypdf, fonts with pdffonts).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from docx import Document
from docx.oxml.ns import qn
from docx.shared import Cm
from pypdf import PdfReader

from senforms.config import Settings, load_settings, write_default_settings
from senforms.documents import sample_context
from senforms.letters import LETTERS
from senforms.office import Office, find_office
from senforms.pipeline import Pipeline
from senforms.render import letter_template, render_docx
from tests.pipeline_helpers import filled, values

NAMES = sorted(LETTERS)


def rendered(name: str) -> bytes:
    return render_docx(letter_template(Settings(home=Path(".")), name), sample_context(name))


@pytest.fixture(scope="module")
def documents() -> dict[str, bytes]:
    return {name: rendered(name) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_every_letter_is_a4_with_page_numbers_and_its_title(documents: dict[str, bytes], name: str) -> None:
    doc = Document(io.BytesIO(documents[name]))
    section = doc.sections[0]
    assert abs(section.page_width - Cm(21.0)) < Cm(0.01) and abs(section.page_height - Cm(29.7)) < Cm(0.01)
    # Parent letters have 2 cm margins; the staff briefing 1.5 cm, to stay on one page.
    least = Cm(2.0) if LETTERS[name].audience == "parents" else Cm(1.5)
    for margin in (section.left_margin, section.right_margin, section.top_margin, section.bottom_margin):
        assert margin >= least - Cm(0.01)
    footer_xml = section.footer._element.xml
    instructions = " ".join(re.findall(r"<w:instrText[^>]*>([^<]*)<", footer_xml))
    assert "PAGE" in instructions.split() and "NUMPAGES" in instructions.split()
    assert doc.core_properties.title
    # Headings keep with what follows; every table row is kept whole on one page.
    assert doc.styles["Heading 1"].paragraph_format.keep_with_next
    assert doc.styles["Heading 2"].paragraph_format.keep_with_next
    for table in doc.tables:
        for row in table.rows:
            assert row._tr.trPr is not None and row._tr.trPr.find(qn("w:cantSplit")) is not None


@pytest.mark.parametrize("name", NAMES)
def test_no_style_falls_back_to_a_theme_font(documents: dict[str, bytes], name: str) -> None:
    doc = Document(io.BytesIO(documents[name]))
    # A theme reference (asciiTheme) overrides a named font: that is how headings came out in
    # Calibri Light beside an Arial body.
    for element in doc.styles.element.iter(qn("w:rFonts")):
        assert not any(key.endswith("Theme") or key.endswith("theme") for key in element.attrib), element.attrib
        assert element.get(qn("w:ascii")) == "Arial"


def test_the_sign_off_keeps_with_the_paragraph_before_it(documents: dict[str, bytes]) -> None:
    for name, letter in LETTERS.items():
        if letter.audience != "parents":
            continue
        paragraphs = Document(io.BytesIO(documents[name])).paragraphs
        at = next(i for i, p in enumerate(paragraphs) if p.text.startswith("Yours sincerely"))
        # One paragraph, kept whole, from the closing to the role, after one kept with it.
        signed = paragraphs[at]
        assert signed.text.splitlines()[-2:] == ["Mr Samuel Okafor", "SENCO, Oakfield Primary School"], name
        assert signed.paragraph_format.keep_together, name
        assert paragraphs[at - 1].paragraph_format.keep_with_next, (name, paragraphs[at - 1].text)


# --- in LibreOffice ---------------------------------------------------------------------------------

needs_office = pytest.mark.skipif(
    find_office() is None or shutil.which("pdffonts") is None,
    reason="LibreOffice (soffice) or pdffonts (poppler-utils) is not installed",
)


@pytest.fixture(scope="module")
def pdfs(documents: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if find_office() is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    folder = tmp_path_factory.mktemp("print")
    sources = []
    for name, content in documents.items():
        sources.append(folder / f"{name}.docx")
        sources[-1].write_bytes(content)
    with Office(timeout=120) as office:
        converted = office.convert(sources, folder / "pdf")
    yield {source.stem: pdf for source, pdf in zip(sources, converted, strict=True)}


def font_families(pdf: Path) -> set[str]:
    done = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True, timeout=60)
    families = set()
    for line in done.stdout.splitlines()[2:]:
        name = line.split()[0]
        name = name.split("+", 1)[-1]  # subset prefix, ABCDEF+
        # "LiberationSans-Bold" and "Arial-BoldMT" are one family each: LiberationSans, Arial.
        families.add(re.split(r"[-,]", name)[0].removesuffix("MT"))
    return families


@pytest.mark.libreoffice
@needs_office
@pytest.mark.parametrize("name", NAMES)
def test_printed_on_a4_in_one_font_family(pdfs: dict[str, Path], name: str) -> None:
    reader = PdfReader(pdfs[name])
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert (round(width), round(height)) == (595, 842), (name, width, height)
    families = font_families(pdfs[name])
    # The ballot boxes and scissors of the reply slip may come from a symbol font; letters are one family.
    text_families = {f for f in families if not f.startswith(("OpenSymbol", "DejaVu", "Symbol"))}
    assert len(text_families) == 1, (name, families)


@pytest.mark.libreoffice
@needs_office
@pytest.mark.parametrize("name", NAMES)
def test_page_n_of_m_is_printed(pdfs: dict[str, Path], name: str) -> None:
    reader = PdfReader(pdfs[name])
    pages = len(reader.pages)
    for number, page in enumerate(reader.pages, start=1):
        text = " ".join(page.extract_text().split())
        assert f"Page {number} of {pages}" in text, (name, number, text[-200:])


@pytest.mark.libreoffice
@needs_office
def test_no_last_page_holds_only_the_signature(pdfs: dict[str, Path]) -> None:
    for name, letter in LETTERS.items():
        if letter.audience != "parents":
            continue
        for page in PdfReader(pdfs[name]).pages:
            text = " ".join(page.extract_text().split())
            if "Yours sincerely" in text:
                before = text.split("Yours sincerely")[0]
                # A closing paragraph (contact us, free advice, the Local Offer) is on the same page.
                closing = ("contact", "advice", "office", "Local Offer")
                assert any(words in before for words in closing), (name, before[-200:])


def _pushed_down(content: bytes, lines: int) -> bytes:
    """The letter with ``lines`` one-line paragraphs added at the top, so its page breaks fall
    that many lines earlier in its text."""
    with zipfile.ZipFile(io.BytesIO(content)) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    filler = b"<w:p><w:r><w:t>Filler.</w:t></w:r></w:p>" * lines
    members["word/document.xml"] = members["word/document.xml"].replace(b"<w:body>", b"<w:body>" + filler, 1)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members.items():
            target.writestr(name, data)
    return out.getvalue()


@pytest.mark.libreoffice
@needs_office
def test_the_role_under_the_signature_never_goes_over_to_a_page_alone(tmp_path: Path) -> None:
    """Seen in LibreOffice, on the first letter of a school that has not filled in senforms.toml
    yet: the formal notification's last page held only "SENCO". The sign-off was a paragraph a
    line, each kept with the next, and LibreOffice does not keep an empty paragraph with the
    next one. Now it is one paragraph, kept whole.

    That letter, and the same pushed down a line at a time, so the end of the page falls on
    each line of its ending. (LibreOffice can still move the whole sign-off to a new last page
    without the paragraph before it, at one of these places; Word keeps them together.)"""
    home = tmp_path / "school"
    home.mkdir()
    write_default_settings(home)
    with Pipeline(load_settings(home), today=lambda: date(2026, 11, 24)) as pipeline:
        done = pipeline.process_bytes(filled("early-discussion", values("early-discussion")), name="early.docx")
    letter = next(d for d in done.documents if "Formal notification" in d.name).read_bytes()
    sources = []
    for lines in range(6):
        sources.append(tmp_path / f"pushed-{lines}.docx")
        sources[-1].write_bytes(_pushed_down(letter, lines))
    with Office(timeout=300) as office:
        converted = office.convert(sources, tmp_path / "pdf")
    for source, pdf in zip(sources, converted, strict=True):
        pages = [[line.strip() for line in page.extract_text().splitlines()] for page in PdfReader(pdf).pages]
        signed = [lines for lines in pages if "Yours sincerely" in lines]
        assert len(signed) == 1, source.name
        assert "SENCO" in signed[0][signed[0].index("Yours sincerely") :], (source.name, pages[-1][:3])


# --- addressing families ------------------------------------------------------------------------

PUPIL = {
    "upn": "A123456789012",
    "legal_forename": "Amara",
    "legal_surname": "Adeyemi",
    "date_of_birth": "2018-04-01",
    "year_group": "3",
}


def pupil_with(*parents: dict[str, str]):
    from senforms.kinds import Pupil

    return Pupil.model_validate(PUPIL | {"parents": list(parents)})


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["Mrs Joanne Clarke", "Mr Tunde Adeyemi"], "Dear Mrs Clarke and Mr Adeyemi"),
        (["Dr. Amy Lee"], "Dear Dr Lee"),
        (["Miss Jo Bell", "Mx Sam Bell"], "Dear Miss Bell and Mx Bell"),
        (["Joanne Clarke"], "Dear Joanne Clarke"),  # no title written: the full name, never a guess
        (["Mrs Joanne Clarke", "Tunde Adeyemi"], "Dear Mrs Clarke and Tunde Adeyemi"),
        (["Mrsjones"], "Dear Mrsjones"),
        ([], "Dear Parent or Carer"),
    ],
)
def test_the_greeting_uses_title_and_surname_only_when_the_form_gives_a_title(names: list[str], expected: str) -> None:
    from senforms.context import greeting

    assert greeting(pupil_with(*({"name": n} for n in names))) == expected


def test_one_address_block_for_parents_at_one_address() -> None:
    from senforms.context import address_block, recipients

    pupil = pupil_with(
        {"name": "Mrs Joanne Clarke", "address": "4 Mill Street\nOakfield\nOK2 3EF", "email": "jc@example.org"},
        {"name": "Mr Tunde Adeyemi", "address": "4 Mill Street, Oakfield, OK2 3EF"},
    )
    households = recipients(pupil)
    assert len(households) == 1
    assert households[0]["greeting"] == "Dear Mrs Clarke and Mr Adeyemi"
    assert address_block(households) == "Mrs Joanne Clarke and Mr Tunde Adeyemi\n4 Mill Street\nOakfield\nOK2 3EF"


def test_parents_living_apart_are_two_households_each_with_their_own_greeting() -> None:
    from senforms.context import address_block, recipients

    pupil = pupil_with(
        {"name": "Mrs Joanne Clarke", "address": "4 Mill Street\nOakfield"},
        {"name": "Mr Tunde Adeyemi", "address": "Flat 2, 9 Quay Road\nPortbury", "preferred_contact": "letter"},
    )
    households = recipients(pupil)
    assert [h["greeting"] for h in households] == ["Dear Mrs Clarke", "Dear Mr Adeyemi"]
    assert households[1]["preferred_contact"] == "Letter"
    assert (
        address_block(households)
        == "Mrs Joanne Clarke\n4 Mill Street\nOakfield\n\nMr Tunde Adeyemi\nFlat 2, 9 Quay Road\nPortbury"
    )


def test_the_letter_prints_the_recipient_block_and_a_carers_reply_slip(documents: dict[str, bytes]) -> None:
    text = "\n".join(p.text for p in Document(io.BytesIO(documents["specialist-letter"])).paragraphs)
    assert "Ms Rachel Hart and Mr Daniel Hart\n12 Beech Lane\nOakfield\nOK1 2AB" in text
    assert "Dear Ms Hart and Mr Hart" in text
    assert "my child" not in text
    assert "advice about Ollie, and to the school sharing" in text


# --- the staff briefing is one page -------------------------------------------------------------

# The form's text boxes are 11.5 cm wide at 11 pt (senforms/wordform.py): about 60 characters a
# line. Each box below is filled to its lines; the table cells (2.4 cm to 5 cm wide on the form,
# 15 to 30 characters a line, growing as staff type) get two full-width lines, twice and more
# what the form shows, and every table has its most rows.
LINE = 60
SENTENCE = "Amara works best with a short list of steps, a quiet place to start and a word of praise. "


def full(lines: int, start: str = "") -> str:
    """Realistic text that fills a box of ``lines`` lines: whole words, ending with a full stop."""
    text = (start + SENTENCE * (lines * 2))[: lines * LINE]
    return text.rsplit(" ", 1)[0].rstrip(".,") + "."


def briefing_at_most_rows() -> bytes:
    from senforms.context import letter_context
    from senforms.history import History
    from senforms.kinds import EarlyDiscussion, SupportPlan

    most_outcomes, most_provision = 6, 8
    # The limits as the model states them, so a form that allows more rows fails this test.
    assert SupportPlan.model_json_schema()["properties"]["outcomes"]["maxItems"] == most_outcomes
    assert SupportPlan.model_json_schema()["properties"]["provision"]["maxItems"] == most_provision
    pupil = PUPIL | {
        "preferred_name": "Mara",
        "class_name": "Chestnut",
        "parents": [{"name": "Mrs Joanne Clarke", "address": "4 Mill Street\nOakfield"}],
    }
    early = EarlyDiscussion.model_validate(
        {
            "pupil": pupil,
            "meeting_date": "2025-10-01",
            "attendees": "Mrs Clarke, Miss Shah",
            "strengths": full(3, "Amara is kind, loves drawing and is a fine helper in class. "),
            "difficulties": full(3),
            "outcomes_sought": full(3),
            "next_steps": full(3),
            "decision": "sen-support",
            "primary_need": "SLCN",
            "completed_by": "Mr Okafor",
        }
    )
    plan = SupportPlan.model_validate(
        {
            "pupil": pupil,
            "plan_date": "2025-11-20",
            "cycle": 1,
            "needs": full(3, "Amara finds it hard to hold a set of spoken steps in mind. "),
            "primary_need": "SLCN",
            "outcomes": [{"description": full(2, f"By the review, outcome {n + 1}: ")} for n in range(most_outcomes)],
            "provision": [
                {
                    "what": full(2, f"Support {n + 1}: "),
                    "who": "Mrs Lee (teaching assistant)",
                    "frequency": "3 x 20 minutes a week, Mon Wed Fri",
                }
                for n in range(most_provision)
            ],
            "strategies": full(4, "Give one step at a time and check she has it before the next. "),
            "pupil_views": full(3, "I like it when I can draw my ideas first. "),
            "expected_impact": full(3),
            "review_date": "2026-03-12",
            "class_teacher": "Miss Priyanka Shah",
            "senco": "Mr Samuel Okafor",
        }
    )
    from senforms.documents import _sample_settings

    context = letter_context(
        _sample_settings(),  # the school's name and contact details filled in, as in use
        plan,
        history=History((early, plan)),
        flags=[],
        corrected=True,  # the correction's lines too: the longest a briefing can be
        correction=["Corrected: the review date is now 12 March 2026", "Corrected: the needs have changed"],
        today=date(2025, 11, 21),
    )
    return render_docx(letter_template(Settings(home=Path(".")), "staff-briefing"), context)


def test_the_staff_briefing_puts_strengths_first() -> None:
    from senforms.documents import letter_text

    # The body in reading order, tables included (strengths and needs sit side by side in one).
    text = letter_text(briefing_at_most_rows())
    headings = ["Strengths", "Needs", "Outcomes we are working towards", "What helps in every lesson", "Support in place"]
    at = [text.index(f"\n{h}.\n") for h in headings]
    assert at == sorted(at), at
    assert "Amara is kind, loves drawing" in text


@pytest.mark.libreoffice
@pytest.mark.skipif(find_office() is None, reason="LibreOffice (soffice) is not installed")
def test_the_staff_briefing_is_one_page_at_the_most_rows(tmp_path: Path) -> None:
    source = tmp_path / "staff-briefing.docx"
    source.write_bytes(briefing_at_most_rows())
    with Office(timeout=120) as office:
        (pdf,) = office.convert([source], tmp_path / "pdf")
    reader = PdfReader(pdf)
    text = " ".join(reader.pages[0].extract_text().split())
    assert len(reader.pages) == 1, f"{len(reader.pages)} pages"
    # Everything is on it: the last row of support and the pupil's words.
    assert "Support 8:" in text and "I like it when I can draw" in text
