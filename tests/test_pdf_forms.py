"""PDF forms on real files: written by senforms, filled as other software fills them, read back.

"Other software" is pypdf used directly, the way a viewer or a script would fill the form: with
appearance streams drawn, with none at all, and with the checkbox on-state some tools use (/On).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, BooleanObject, DictionaryObject, NameObject, TextStringObject
from reportlab.pdfgen.canvas import Canvas

from senforms.cli import main
from senforms.errors import NotAFormError, UnknownVersionError, UnreadableFileError
from senforms.forms import extract
from senforms.kinds import KINDS, FormKind
from senforms.layout import Widget, fields
from senforms.pdfform import make_pdf_form
from senforms.read.pdf import FlattenedFormError, XfaFormError
from senforms.values import format_uk_date
from senforms.wordform import flatten
from senforms.wordml import FOOTER_MARK
from tests.conftest import CASES, case

SCHOOL = "St Mary’s C of E Primary School"
SLUGS = sorted(KINDS)


def values_for(slug: str) -> dict[str, Any]:
    return case(f"{slug}.json")


def expected(slug: str) -> Any:
    return KINDS[slug].model.model_validate(values_for(slug))


def blank(slug: str) -> bytes:
    return make_pdf_form(KINDS[slug], school=SCHOOL, values=None)


def prefilled(slug: str) -> bytes:
    return make_pdf_form(KINDS[slug], school=SCHOOL, values=values_for(slug))


def read_back(data: bytes) -> Any:
    model, _warnings = extract(data, name="x.pdf")
    return model


# --- filling as other software would ---------------------------------------------------------


def typed(kind: FormKind, values: dict[str, Any], *, shown_choices: bool = False) -> dict[str, Any]:
    """What a person types or picks in each box: dates as dd/mm/yyyy, choices as stored values
    (or as the words shown, as some viewers store them), ticks as True."""
    specs = fields(kind)
    out: dict[str, Any] = {}
    for path, value in flatten(values).items():
        spec = specs[path]
        if spec.widget is Widget.date:
            out[path] = format_uk_date(date.fromisoformat(value))
        elif spec.widget is Widget.choice and shown_choices:
            out[path] = dict(spec.choices)[value]
        elif spec.widget is Widget.check:
            out[path] = bool(value)
        else:
            out[path] = str(value)
    return out


def _widgets(writer: PdfWriter) -> dict[str, DictionaryObject]:
    return {
        str(a.get_object()["/T"]): a.get_object()
        for page in writer.pages
        for a in page.get("/Annots", [])
        if "/T" in a.get_object()
    }


def _rename_on_state(widget: DictionaryObject, state: str) -> None:
    """Make a checkbox whose on-state is ``state`` (/On, /1), as LibreOffice and others write."""
    for key in ("/N", "/D"):
        ap = widget["/AP"].get_object().get(key)
        if ap is not None and "/Yes" in ap.get_object():
            ap = ap.get_object()
            ap[NameObject(state)] = ap.pop("/Yes")


def fill_with_pypdf(
    data: bytes, answers: dict[str, Any], *, appearances: bool, on_state: str = "/Yes", need_appearances: bool = True
) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    widgets = _widgets(writer)
    ticks = {p: v for p, v in answers.items() if isinstance(v, bool)}
    texts = {p: v for p, v in answers.items() if not isinstance(v, bool)}
    for path, ticked in ticks.items():
        if on_state != "/Yes":
            _rename_on_state(widgets[path], on_state)
        state = NameObject(on_state if ticked else "/Off")
        widgets[path][NameObject("/V")] = state
        widgets[path][NameObject("/AS")] = state
    if appearances:
        writer.update_page_form_field_values(None, texts, auto_regenerate=need_appearances)
    else:
        for path, text in texts.items():
            widgets[path][NameObject("/V")] = TextStringObject(text)
            widgets[path].pop("/AP", None)
        if not need_appearances:
            writer._root_object["/AcroForm"][NameObject("/NeedAppearances")] = BooleanObject(False)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- written by senforms -----------------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
def test_blank_form_has_every_field_named_by_path(slug: str) -> None:
    data = blank(slug)
    reader = PdfReader(io.BytesIO(data))
    found = reader.get_fields() or {}
    assert set(found) == set(fields(KINDS[slug]))
    assert reader.metadata["/senforms.kind"] == slug
    assert reader.metadata["/senforms.version"] == str(KINDS[slug].version)
    assert reader.trailer["/Root"]["/AcroForm"]["/NeedAppearances"] == True  # noqa: E712 (a BooleanObject)
    for page in reader.pages:
        assert [round(float(x)) for x in page.mediabox] == [0, 0, 595, 842]  # A4
        text = page.extract_text()
        assert FOOTER_MARK.format(slug=slug, version=KINDS[slug].version) in " ".join(text.split())


def test_field_types_follow_the_layout() -> None:
    kind = KINDS["support-plan"]
    found = PdfReader(io.BytesIO(blank(kind.slug))).get_fields() or {}
    assert found["pupil.upn"]["/FT"] == "/Tx"
    assert found["needs"]["/Ff"] & (1 << 12)  # multi-line
    assert not found["pupil.upn"].get("/Ff", 0) & (1 << 12)
    assert found["parents_agree"]["/FT"] == "/Btn"
    choice = found["pupil.year_group"]
    assert choice["/FT"] == "/Ch"
    assert ["4", "Year 4"] in [list(o) for o in choice["/Opt"]]  # export value, words shown
    assert "dd/mm/yyyy" in found["plan_date"]["/TU"]
    assert "outcomes.5.description" in found and "provision.7.weekly_cost" in found


@pytest.mark.parametrize("slug", SLUGS)
def test_blank_form_reads_back_as_invalid_not_broken(slug: str) -> None:
    from senforms.errors import FormInvalidError

    with pytest.raises(FormInvalidError) as caught:
        read_back(blank(slug))
    assert "must be filled in" in caught.value.message


@pytest.mark.parametrize("slug", SLUGS)
def test_prefilled_form_reads_back_to_the_same_model(slug: str) -> None:
    assert read_back(prefilled(slug)) == expected(slug)


def _pdftotext(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "form.pdf"
    path.write_bytes(data)
    done = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(done.stdout.decode("utf-8").split())


def _shown(slug: str) -> list[str]:
    """Short values that must appear on the page, as the form shows them."""
    kind = KINDS[slug]
    specs = fields(kind)
    shown = []
    for path, value in typed(kind, values_for(slug), shown_choices=True).items():
        if isinstance(value, bool) or "\n" in value or len(value) > 30 or specs[path].widget is Widget.lines:
            continue
        shown.append(value)
    return shown


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext is not installed")
@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("redraw", [True, False], ids=["viewer-redraws", "own-appearances"])
def test_prefilled_values_are_visible_to_poppler(slug: str, redraw: bool, tmp_path: Path) -> None:
    data = prefilled(slug)
    if not redraw:
        # A viewer that ignores NeedAppearances shows only the appearance streams senforms drew.
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer._root_object["/AcroForm"][NameObject("/NeedAppearances")] = BooleanObject(False)
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    text = _pdftotext(data, tmp_path)
    assert SCHOOL in text
    missing = [v for v in _shown(slug) if " ".join(v.split()) not in text]
    assert not missing
    assert values_for(slug)["pupil"]["upn"] in text


# --- filled by other software ------------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("appearances", [True, False], ids=["with-appearances", "without-appearances"])
def test_filled_by_other_software_reads_back(slug: str, appearances: bool) -> None:
    kind = KINDS[slug]
    answers = typed(kind, values_for(slug))
    data = fill_with_pypdf(blank(slug), answers, appearances=appearances, need_appearances=appearances)
    assert read_back(data) == expected(slug)


@pytest.mark.parametrize("state", ["/On", "/1"])
def test_checkbox_on_states_other_than_yes_count_as_ticked(state: str) -> None:
    kind = KINDS["support-plan"]
    answers = typed(kind, values_for(kind.slug))
    answers["parents_agree"] = True
    data = fill_with_pypdf(blank(kind.slug), answers, appearances=True, on_state=state)
    assert read_back(data).parents_agree is True
    answers["parents_agree"] = False
    data = fill_with_pypdf(blank(kind.slug), answers, appearances=True, on_state=state)
    assert read_back(data).parents_agree is False


def test_choices_given_as_the_words_shown() -> None:
    kind = KINDS["review"]
    answers = typed(kind, values_for(kind.slug), shown_choices=True)
    data = fill_with_pypdf(blank(kind.slug), answers, appearances=False)
    assert read_back(data) == expected(kind.slug)


def test_accents_and_markup_characters_survive() -> None:
    kind = KINDS["support-plan"]
    values = values_for(kind.slug)
    values["pupil"] = dict(values["pupil"], legal_forename="Zoë-Siân", legal_surname="O’Brien & <Sons> > 1")
    values["needs"] = "Łódź «quoted» — 10% & <b>not bold</b>\nsecond line"
    for data in (
        make_pdf_form(kind, school=SCHOOL, values=values),
        fill_with_pypdf(blank(kind.slug), typed(kind, values), appearances=True),
        fill_with_pypdf(blank(kind.slug), typed(kind, values), appearances=False),
    ):
        model = read_back(data)
        assert model.pupil.legal_forename == "Zoë-Siân"
        assert model.pupil.legal_surname == "O’Brien & <Sons> > 1"
        assert model.needs == values["needs"]


def test_hierarchical_field_names_read_the_same() -> None:
    """Acrobat and others may store ``pupil.upn`` as a field ``upn`` inside a field ``pupil``."""
    kind = KINDS["review"]
    data = fill_with_pypdf(blank(kind.slug), typed(kind, values_for(kind.slug)), appearances=True)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    form = writer._root_object["/AcroForm"]
    parent = DictionaryObject({NameObject("/T"): TextStringObject("pupil"), NameObject("/Kids"): ArrayObject()})
    parent_ref = writer._add_object(parent)
    kept = ArrayObject()
    for ref in form["/Fields"]:
        node = ref.get_object()
        name = str(node["/T"])
        if name.startswith("pupil.") and name.count(".") == 1:
            node[NameObject("/T")] = TextStringObject(name.split(".", 1)[1])
            node[NameObject("/Parent")] = parent_ref
            parent["/Kids"].append(ref)
        else:
            kept.append(ref)
    kept.append(parent_ref)
    form[NameObject("/Fields")] = kept
    out = io.BytesIO()
    writer.write(out)
    assert read_back(out.getvalue()) == expected(kind.slug)


# --- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("how", ["suffix", "flag"])
def test_cli_blank_and_extract(slug: str, how: str, home: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / ("form.pdf" if how == "suffix" else "form.out")
    args = ["--home", str(home), "blank", slug, "-o", str(out), "--data", str(CASES / f"{slug}.json")]
    assert main([*args, "--pdf"] if how == "flag" else args) == 0
    assert out.read_bytes().startswith(b"%PDF-")
    capsys.readouterr()
    assert main(["--home", str(home), "extract", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(expected(slug).model_dump_json())


def test_cli_blank_pdf_shows_the_school(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "blank.pdf"
    assert main(["--home", str(home), "blank", "early-discussion", "-o", str(out)]) == 0
    text = " ".join(PdfReader(out).pages[0].extract_text().split())
    assert "Oakfield Primary School" in text and KINDS["early-discussion"].title in text


def test_cli_refuses_an_encrypted_pdf_in_plain_words(home: Path, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(_encrypted(prefilled("review"), "secret"))
    assert main(["--home", str(home), "extract", str(path)]) == int(UnreadableFileError.exit_code)
    err = capsys.readouterr().err
    assert "password" in err and "Traceback" not in err


# --- PDFs that are not (or no longer) a senforms form -----------------------------------------


def _rewrite(data: bytes, change: Any) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _encrypted(data: bytes, password: str, algorithm: str = "RC4-128") -> bytes:
    return _rewrite(data, lambda w: w.encrypt(user_password=password, owner_password="owner", algorithm=algorithm))


def test_encrypted_pdf() -> None:
    with pytest.raises(UnreadableFileError, match="password"):
        read_back(_encrypted(prefilled("review"), "secret"))


@pytest.mark.parametrize("password", ["secret", ""])
def test_aes_encrypted_pdf_is_refused_plainly_or_read(password: str) -> None:
    pytest.importorskip("cryptography", reason="pypdf needs cryptography to write AES")
    data = _encrypted(prefilled("review"), password, "AES-256")
    if password:
        with pytest.raises(UnreadableFileError, match="password"):
            read_back(data)
    else:
        assert read_back(data) == expected("review")


def test_pdf_encrypted_only_against_editing_still_reads() -> None:
    # An empty open password (restrictions only) is common and opens without asking anyone.
    assert read_back(_encrypted(prefilled("review"), "")) == expected("review")


def _add_xfa(writer: PdfWriter) -> None:
    writer._root_object["/AcroForm"][NameObject("/XFA")] = ArrayObject(
        [TextStringObject("template"), writer._add_object(DictionaryObject())]
    )


def test_xfa_form() -> None:
    with pytest.raises(XfaFormError, match="XFA") as caught:
        read_back(_rewrite(prefilled("review"), _add_xfa))
    assert isinstance(caught.value, NotAFormError)


def test_dynamic_xfa_form() -> None:
    def dynamic(writer: PdfWriter) -> None:
        _add_xfa(writer)
        writer._root_object[NameObject("/NeedsRendering")] = BooleanObject(True)

    with pytest.raises(XfaFormError, match="Adobe Reader"):
        read_back(_rewrite(prefilled("review"), dynamic))


def _printed_copy(slug: str) -> bytes:
    """What 'Print to PDF' makes of a form: the same words, no fields."""
    kind = KINDS[slug]
    out = io.BytesIO()
    canvas = Canvas(out)
    y = 800
    for line in (SCHOOL, kind.title, "UPN * " + values_for(slug)["pupil"]["upn"]):
        canvas.drawString(40, y, line)
        y -= 20
    canvas.drawString(40, 30, f"{kind.title}. " + FOOTER_MARK.format(slug=slug, version=kind.version))
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def test_printed_to_pdf_form() -> None:
    with pytest.raises(FlattenedFormError) as caught:
        read_back(_printed_copy("support-plan"))
    assert "printed to PDF" in caught.value.message
    assert "Word form" in caught.value.advice


def test_form_with_its_fields_removed() -> None:
    def strip(writer: PdfWriter) -> None:
        writer.update_page_form_field_values(None, {}, flatten=True)
        writer.remove_annotations(subtypes="/Widget")
        del writer._root_object["/AcroForm"]

    with pytest.raises(FlattenedFormError, match="SEN support review record"):
        read_back(_rewrite(prefilled("review"), strip))


def test_pdf_that_is_not_a_senforms_form() -> None:
    out = io.BytesIO()
    canvas = Canvas(out)
    canvas.drawString(72, 720, "Minutes of the governors' meeting")
    canvas.acroForm.textfield(name="comments", x=72, y=600)
    canvas.showPage()
    canvas.save()
    with pytest.raises(NotAFormError, match="not a senforms form") as caught:
        read_back(out.getvalue())
    assert not isinstance(caught.value, FlattenedFormError)


def test_form_of_an_unknown_version() -> None:
    changed = _rewrite(prefilled("review"), lambda w: w.add_metadata({"/senforms.version": "99"}))
    with pytest.raises(UnknownVersionError, match="version 99"):
        read_back(changed)


def test_form_whose_metadata_was_rewritten_still_reads() -> None:
    def scrub(writer: PdfWriter) -> None:
        info = writer._info.get_object()
        for key in ("/senforms.kind", "/senforms.version", "/Subject"):
            info.pop(key, None)

    assert read_back(_rewrite(prefilled("review"), scrub)) == expected("review")


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_pdf(keep: float) -> None:
    data = prefilled("support-plan")
    with pytest.raises(UnreadableFileError, match=r"cut off|damaged"):
        read_back(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n%%EOF\n",
        b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 1 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
    ],
    ids=["header-only", "garbage", "self-referencing-pages"],
)
def test_damaged_pdf(data: bytes) -> None:
    with pytest.raises((UnreadableFileError, NotAFormError)):
        read_back(data)
