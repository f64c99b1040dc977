"""Writing fillable PDF forms (AcroForm), blank or pre-filled, from a kind's declaration.

The page is drawn from ``layout.blocks(kind)``, the same walk the Word form uses, and every answer
box is an AcroForm field named by its dotted path (``pupil.upn``, ``outcomes.0.description``).

reportlab draws the page and the fields. Text values are then put in with pypdf, because
reportlab's own appearance streams neither wrap long text nor encode characters outside
Latin-1 (a curly apostrophe pasted from Word crashes it); pypdf does both. Choices and ticks are
set by reportlab, whose appearance shows a choice's words rather than its stored value.
NeedAppearances is also set, so viewers that can redraw fields with their own fonts do.
"""

from __future__ import annotations

import io
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, NumberObject, TextStringObject
from reportlab.lib.colors import Color
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from senforms.errors import TemplateError
from senforms.kinds import FormKind
from senforms.layout import Field, Grid, Section, Widget, blocks, fields
from senforms.values import format_uk_date, parse_uk_date
from senforms.wordform import flatten
from senforms.wordml import FOOTER_MARK, PLACEHOLDER_CHOICE, PROP_KIND, PROP_VERSION

PAGE_WIDTH, PAGE_HEIGHT = A4
LEFT = 42.0
RIGHT = PAGE_WIDTH - 42.0
TOP = PAGE_HEIGHT - 40.0
BOTTOM = 52.0  # room for the footer line
WIDTH = RIGHT - LEFT
LABEL_WIDTH = 170.0
GAP = 6.0

FONT, BOLD = "Helvetica", "Helvetica-Bold"
_FONT_RESOURCE = "Helv"  # reportlab's resource name for Helvetica in the form's /DR
ANSWER_SIZE = 10
GREY = Color(0.35, 0.35, 0.35)
BOX_FILL = Color(0.93, 0.93, 0.93)
BOX_BORDER = Color(0.6, 0.6, 0.6)
CHECK_SIZE = 12.0
NARROW = 150.0
# The metadata keys, as PDF names in the document information dictionary.
META_KIND = f"/{PROP_KIND}"
META_VERSION = f"/{PROP_VERSION}"


def box_height(f: Field) -> float:
    if f.widget is Widget.check:
        return CHECK_SIZE
    if f.widget is Widget.lines:
        return max(2, f.lines) * 12.0 + 8.0
    return 18.0


def _latin(text: str) -> str:
    """reportlab's field appearance only encodes Latin-1; choice words are shown through it."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2013", "-").replace("\u2014", "-")
    text = unicodedata.normalize("NFC", text)
    return text.encode("latin-1", "replace").decode("latin-1")


# --- the page cursor ---------------------------------------------------------------------------


@dataclass
class Pages:
    """A canvas with a cursor that moves down the page and starts a new one when it must."""

    canvas: Canvas
    kind: FormKind
    y: float = TOP
    page: int = 1
    widths: dict[str, float] = field(default_factory=dict)  # each text box's width, for fitting values

    def need(self, height: float) -> bool:
        """Make room for ``height`` points; True if that meant a new page."""
        if self.y - height >= BOTTOM:
            return False
        self.new_page()
        return True

    def new_page(self) -> None:
        self.footer()
        self.canvas.showPage()
        self.page += 1
        self.y = TOP

    def footer(self) -> None:
        c = self.canvas
        c.setFont(FONT, 7.5)
        c.setFillColor(GREY)
        # The mark is drawn as text on every page so a printed or flattened copy still says
        # what it is, and the reader can explain rather than call it "not a form".
        mark = FOOTER_MARK.format(slug=self.kind.slug, version=self.kind.version)
        c.drawString(LEFT, 30, f"{self.kind.title}. {mark}")
        c.drawRightString(RIGHT, 30, f"Page {self.page}")
        c.setFillColor(Color(0, 0, 0))


def _text_block(pages: Pages, text: str, font: str, size: float, width: float, *, color: Color | None = None) -> None:
    lines = simpleSplit(text, font, size, width)
    c = pages.canvas
    c.setFont(font, size)
    c.setFillColor(color or Color(0, 0, 0))
    for line in lines:
        pages.need(size * 1.25)
        pages.y -= size * 1.25
        c.drawString(LEFT, pages.y + 2, line)
    c.setFillColor(Color(0, 0, 0))


def _label_lines(f: Field, width: float, size: float = 9) -> list[tuple[str, str, float]]:
    """The label (bold, with * if required) and its help line (small, grey), wrapped."""
    out = [(line, BOLD, size) for line in simpleSplit(f.label + (" *" if f.required else ""), BOLD, size, width)]
    if f.help:
        out += [(line, FONT, 7.5) for line in simpleSplit(f.help, FONT, 7.5, width)]
    return out


def _draw_lines(c: Canvas, lines: list[tuple[str, str, float]], x: float, top: float) -> None:
    y = top
    for text, font, size in lines:
        y -= size * 1.2
        c.setFont(font, size)
        c.setFillColor(GREY if font == FONT else Color(0, 0, 0))
        c.drawString(x, y, text)
    c.setFillColor(Color(0, 0, 0))


def _lines_height(lines: list[tuple[str, str, float]]) -> float:
    return sum(size * 1.2 for _, _, size in lines)


# --- fields ------------------------------------------------------------------------------------


def _widget(pages: Pages, f: Field, x: float, top: float, width: float, value: Any) -> None:
    """One AcroForm field whose top-left corner is at (x, top)."""
    form = pages.canvas.acroForm
    height = box_height(f)
    y = top - height
    common = dict(
        name=f.path,
        x=x,
        y=y,
        fillColor=BOX_FILL,
        borderColor=BOX_BORDER,
        borderWidth=0.5,
        annotationFlags="print",
    )
    if f.widget is Widget.check:
        form.checkbox(
            checked=bool(value), size=CHECK_SIZE, tooltip=f.label, fieldFlags="", buttonStyle="cross", **common
        )
    elif f.widget is Widget.choice:
        # "Choose one" has itself as its value, never "": PyMuPDF refuses to set any list with
        # an empty-valued item ("bad choice field list"). The reader reads it (and "", from
        # forms printed before) as no choice.
        options = [(PLACEHOLDER_CHOICE, PLACEHOLDER_CHOICE)] + [(_latin(shown), stored) for stored, shown in f.choices]
        form.choice(
            value=[value or PLACEHOLDER_CHOICE],  # a list, because reportlab fails on an empty string
            options=options,
            tooltip=f.label,
            width=width,
            height=height,
            fontName=FONT,
            fontSize=ANSWER_SIZE,
            fieldFlags="combo",
            **common,
        )
    else:
        tooltip = f"{f.label} (dd/mm/yyyy)" if f.widget is Widget.date else f.label
        multi = f.widget is Widget.lines
        pages.widths[f.path] = width
        form.textfield(
            value="",  # filled afterwards by pypdf, see the module docstring
            tooltip=tooltip,
            width=width,
            height=height,
            fontName=FONT,
            # A narrow one-line box (a grid cell) is "auto" size, so viewers shrink long text to fit.
            fontSize=ANSWER_SIZE if multi or width >= NARROW else 0,
            fieldFlags="multiline" if multi else "",
            maxlen=0,
            **common,
        )


def _section(pages: Pages, section: Section, values: Mapping[str, Any]) -> None:
    _heading(pages, section.heading, _row_height(section.fields[0]) if section.fields else 0)
    box_x = LEFT + LABEL_WIDTH + GAP
    for f in section.fields:
        lines = _label_lines(f, LABEL_WIDTH)
        height = max(_lines_height(lines), box_height(f)) + GAP
        pages.need(height)
        top = pages.y - GAP / 2
        _draw_lines(pages.canvas, lines, LEFT, top)
        width = CHECK_SIZE if f.widget is Widget.check else RIGHT - box_x
        _widget(pages, f, box_x, top, width, values.get(f.path))
        pages.y -= height


def _row_height(f: Field) -> float:
    return max(_lines_height(_label_lines(f, LABEL_WIDTH)), box_height(f)) + GAP


def _heading(pages: Pages, text: str, first_row: float) -> None:
    """A heading is never left alone at the foot of a page: it moves with its first row."""
    pages.need(22 + first_row)
    pages.y -= 22
    pages.canvas.setFont(BOLD, 12)
    pages.canvas.drawString(LEFT, pages.y + 5, text)


def _grid_widths(grid: Grid) -> list[float]:
    """Column widths for a grid of rows: multi-line answers get twice the room."""
    number = 22.0
    weights = [2.0 if c.widget is Widget.lines else 1.0 for c in grid.columns]
    unit = (WIDTH - number - GAP * len(weights)) / sum(weights)
    return [number] + [w * unit for w in weights]


def _grid_rows(pages: Pages, grid: Grid, values: Mapping[str, Any]) -> None:
    widths = _grid_widths(grid)
    headers = [[("No.", BOLD, 8)]] + [
        [(line, BOLD, 8) for line in simpleSplit(c.label + (" *" if c.required else ""), BOLD, 8, w)]
        for c, w in zip(grid.columns, widths[1:], strict=True)
    ]
    header_height = max(_lines_height(h) for h in headers) + 4
    row_height = max(box_height(c) for c in grid.columns) + 4

    def header() -> None:
        x = LEFT
        top = pages.y
        for lines, w in zip(headers, widths, strict=True):
            _draw_lines(pages.canvas, lines, x, top)
            x += w + (GAP if x > LEFT else 0)
        pages.y -= header_height

    _heading(pages, grid.heading, header_height + row_height)
    header()
    for index in range(grid.count):
        if pages.need(row_height):
            header()  # a grid that runs on to a new page repeats its column headings there
        top = pages.y - 2
        pages.canvas.setFont(FONT, 9)
        pages.canvas.drawString(LEFT + 2, top - 12, str(index + 1))
        x = LEFT + widths[0]
        for column, w in zip(grid.columns, widths[1:], strict=True):
            f = grid.field(index, column)
            _widget(pages, f, x, top, CHECK_SIZE if f.widget is Widget.check else w, values.get(f.path))
            x += w + GAP
        pages.y -= row_height


def _grid_columns(pages: Pages, grid: Grid, values: Mapping[str, Any]) -> None:
    item_width = (WIDTH - LABEL_WIDTH - GAP * grid.count) / grid.count
    _heading(pages, grid.heading, 16 + max(_row_height(c) for c in grid.columns[:1]))
    pages.canvas.setFont(BOLD, 9)
    for index in range(grid.count):
        x = LEFT + LABEL_WIDTH + GAP + index * (item_width + GAP)
        pages.canvas.drawString(x, pages.y - 11, f"{grid.item_label} {index + 1}")
    pages.y -= 16
    for column in grid.columns:
        lines = _label_lines(column, LABEL_WIDTH)
        height = max(_lines_height(lines), box_height(column)) + GAP
        pages.need(height)
        top = pages.y - GAP / 2
        _draw_lines(pages.canvas, lines, LEFT, top)
        for index in range(grid.count):
            f = grid.field(index, column)
            x = LEFT + LABEL_WIDTH + GAP + index * (item_width + GAP)
            width = CHECK_SIZE if f.widget is Widget.check else item_width
            _widget(pages, f, x, top, width, values.get(f.path))
        pages.y -= height


def _draw(kind: FormKind, school: str, values: Mapping[str, Any]) -> tuple[bytes, dict[str, float]]:
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle(kind.title)
    canvas.setSubject(FOOTER_MARK.format(slug=kind.slug, version=kind.version))
    canvas.setCreator("senforms")
    pages = Pages(canvas, kind)
    if school:
        _text_block(pages, school, BOLD, 11, WIDTH)
    _text_block(pages, kind.title, BOLD, 16, WIDTH)
    pages.y -= 4
    _text_block(pages, kind.guidance, FONT, 9, WIDTH, color=GREY)
    _text_block(pages, "Boxes marked * must be filled in.", FONT, 9, WIDTH)
    for block in blocks(kind):
        if isinstance(block, Section):
            _section(pages, block, values)
        elif block.orientation == "rows":
            _grid_rows(pages, block, values)
        else:
            _grid_columns(pages, block, values)
    pages.footer()
    canvas.showPage()
    canvas.save()
    return out.getvalue(), pages.widths


# --- values ------------------------------------------------------------------------------------


def _as_text(f: Field, value: Any) -> str:
    if isinstance(value, date):
        return format_uk_date(value)
    if f.widget is Widget.date and isinstance(value, str):
        # Values from 'extract --json' carry ISO dates; the form shows them as people write them.
        try:
            parsed = parse_uk_date(value)
        except ValueError:
            return value
        return format_uk_date(parsed) if parsed else value
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _as_tick(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in {"true", "yes", "y", "1", "on", "x"}
    return bool(value)


def _as_choice(f: Field, value: Any) -> str:
    """The stored value for a choice given as stored value or as the words shown."""
    text = str(getattr(value, "value", value)).strip()
    for stored, shown in f.choices:
        if text.casefold() in (stored.casefold(), shown.casefold()):
            return stored
    raise TemplateError(f"{text!r} is not one of the choices for {f.label!r} on the form.")


def _prepared(kind: FormKind, values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Values by dotted path, as each kind of box takes them."""
    specs = fields(kind)
    flat = flatten(values or {})
    unknown = sorted(set(flat) - set(specs))
    if unknown:
        raise TemplateError(f"These values have no box on the {kind.title}: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for path, value in flat.items():
        f = specs[path]
        if f.widget is Widget.check:
            out[path] = _as_tick(value)
        elif f.widget is Widget.choice:
            out[path] = _as_choice(f, value) if str(value).strip() else ""
        else:
            out[path] = _as_text(f, value)
    return out


def _widgets(writer: PdfWriter) -> dict[str, DictionaryObject]:
    found: dict[str, DictionaryObject] = {}
    for page in writer.pages:
        for ref in page.get("/Annots", []):
            annot = ref.get_object()
            if annot.get("/Subtype") == "/Widget" and "/T" in annot:
                found[str(annot["/T"])] = annot
    return found


def _fitted(text: str, width: float) -> float:
    """The size at which a one-line value fits its box: the usual size, smaller if it must."""
    natural = stringWidth(text, FONT, 1) or 1
    return max(5.0, min(float(ANSWER_SIZE), round((width - 6) / natural, 1)))


def _fill_texts(writer: PdfWriter, texts: dict[str, str], multi_line: set[str], widths: dict[str, float]) -> None:
    """Put text values in with appearance streams drawn by pypdf.

    pypdf wraps a multi-line value only when the box's font size is "auto" (0), so those boxes
    are auto while pypdf draws, then set back to the fixed size that viewers redrawing the
    field (NeedAppearances) should use. A one-line value is drawn at the size that fits its box,
    and that size is kept for viewers that redraw, so every viewer shows the same thing.
    """
    widgets = _widgets(writer)
    sizes = {p: float(ANSWER_SIZE) if p in multi_line else _fitted(t, widths[p]) for p, t in texts.items()}
    for path in multi_line & set(texts):
        widgets[path][NameObject("/DA")] = TextStringObject(f"/{_FONT_RESOURCE} 0 Tf 0 g")
    sized: dict[str, Any] = {p: t if p in multi_line else (t, f"/{_FONT_RESOURCE}", sizes[p]) for p, t in texts.items()}
    writer.update_page_form_field_values(None, sized, auto_regenerate=True)
    for path, size in sizes.items():
        widgets[path][NameObject("/DA")] = TextStringObject(f"/{_FONT_RESOURCE} {size:g} Tf 0 g")


def _finish(drawn: bytes, widths: dict[str, float], kind: FormKind, texts: dict[str, str]) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(drawn)))
    multi_line = {p for p, f in fields(kind).items() if f.widget is Widget.lines}
    if texts:
        _fill_texts(writer, texts, multi_line, widths)
    writer.set_need_appearances_writer(True)
    _zapf_resource(writer)
    writer.add_metadata({META_KIND: kind.slug, META_VERSION: str(kind.version)})
    # Tools that keep only the standard keys still keep the title and subject (see _draw).
    info = writer._info.get_object() if writer._info is not None else None
    if isinstance(info, DictionaryObject):
        info[NameObject("/Title")] = TextStringObject(kind.title)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _zapf_resource(writer: PdfWriter) -> None:
    """Viewers that redraw ticks (NeedAppearances) look for ZapfDingbats as /ZaDb in the form's
    resources; reportlab does not put it there, and poppler then draws no tick."""
    form = writer._root_object["/AcroForm"].get_object()
    assert isinstance(form, DictionaryObject)
    resources = form.setdefault(NameObject("/DR"), DictionaryObject()).get_object()
    fonts = resources.setdefault(NameObject("/Font"), DictionaryObject()).get_object()
    if "/ZaDb" not in fonts:
        zapf = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/ZapfDingbats"),
            }
        )
        fonts[NameObject("/ZaDb")] = writer._add_object(zapf)


# --- drawn once per kind and school, then only filled ----------------------------------------------

_CLONE_LOCK = threading.Lock()


@lru_cache(maxsize=32)
def _blank(kind: FormKind, school: str) -> tuple[PdfReader, dict[str, float]]:
    """The empty form drawn by reportlab and finished (metadata, fonts, NeedAppearances) once
    per kind and school, held parsed: drawing it again for every pre-filled form was most of
    the cost, and parsing it again most of the rest."""
    drawn, widths = _draw(kind, school, {})
    reader = PdfReader(io.BytesIO(_finish(drawn, widths, kind, {})))
    PdfWriter(clone_from=reader)  # reads every object once, so later copies only copy
    return reader, widths


def _fill_choices_and_ticks(writer: PdfWriter, kind: FormKind, prepared: Mapping[str, Any]) -> None:
    """Ticks and choices put in the blank as reportlab puts them when it draws a value: a tick
    is the box's "on" appearance; a choice stores its value (``/V``, ``/I``) and shows its words,
    drawn by pypdf from the words and then given back the stored value."""
    specs = fields(kind)
    widgets = _widgets(writer)
    shown: dict[str, str] = {}
    for path, value in prepared.items():
        f = specs[path]
        if f.widget is Widget.check and value:
            annot = widgets[path]
            on = next((k for k in annot["/AP"]["/N"] if k != "/Off"), "/Yes")  # type: ignore[index]
            annot[NameObject("/V")] = annot[NameObject("/AS")] = NameObject(on)
        elif f.widget is Widget.choice and value:
            shown[path] = _latin(dict(f.choices)[value])
    if not shown:
        return
    writer.update_page_form_field_values(None, shown, auto_regenerate=True)
    for path in shown:
        annot = widgets[path]
        options = [str(o[0]) if isinstance(o, list) else str(o) for o in annot.get("/Opt", [])]
        annot[NameObject("/V")] = TextStringObject(prepared[path])
        if prepared[path] in options:
            annot[NameObject("/I")] = ArrayObject([NumberObject(options.index(prepared[path]))])


def make_pdf_form(kind: FormKind, *, school: str, values: Mapping[str, Any] | None = None) -> bytes:
    """A fillable PDF form, blank or pre-filled, as bytes.

    ``values`` has the same nested shape as ``senforms extract --json``; any subset will do.
    """
    prepared = _prepared(kind, values)
    specs = fields(kind)
    reader, widths = _blank(kind, school)
    if not prepared:
        return _finish_copy(reader)
    with _CLONE_LOCK:  # the reader's stream is shared; a copy is the caller's own
        writer = PdfWriter(clone_from=reader)
    texts = {p: v for p, v in prepared.items() if specs[p].widget not in (Widget.check, Widget.choice) and v}
    multi_line = {p for p, f in specs.items() if f.widget is Widget.lines}
    if texts:
        _fill_texts(writer, texts, multi_line, widths)
    _fill_choices_and_ticks(writer, kind, prepared)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _finish_copy(reader: PdfReader) -> bytes:
    with _CLONE_LOCK:
        writer = PdfWriter(clone_from=reader)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


__all__ = ["META_KIND", "META_VERSION", "make_pdf_form"]
