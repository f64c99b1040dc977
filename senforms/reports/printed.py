"""Word documents built in code for the reports (the evidence pack, the provision map), to the
print standards of the letters (issue 10): A4 with sensible margins, one font family throughout
(headings included), "Page N of M" in the footer, table rows that never split across pages,
headings kept with what follows, and the title and date in the document's properties.

Reports are built with python-docx rather than from docxtpl templates: their shape (a table per
cycle, a row per rating) follows the data, and every value goes in as a run's text, so what a
form says is always data and never template code.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

from senforms.values import clean_text

FONT = "Arial"  # the letters' font; LibreOffice shows it as Liberation Sans, same metrics
BODY_PT = 10.5


def new_document(title: str, written: date, *, landscape: bool = False) -> Any:
    """An empty A4 document with one font everywhere, page numbers and the title in its properties."""
    doc = Document()
    section = doc.sections[0]
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = Cm(29.7), Cm(21.0)
    else:
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    for side in ("left_margin", "right_margin"):
        setattr(section, side, Cm(2.0))
    section.top_margin, section.bottom_margin = Cm(2.0), Cm(2.0)
    for style in doc.styles:
        if getattr(style, "font", None) is None:
            continue
        _one_font(style)
    doc.styles["Normal"].font.size = Pt(BODY_PT)
    for level, size in ((0, 18), (1, 14), (2, 12), (3, 11)):
        name = "Title" if level == 0 else f"Heading {level}"
        style = doc.styles[name]
        style.font.size = Pt(size)
        style.font.bold = True
        style.font.color.rgb = RGBColor(0, 0, 0)  # readable in black and white
        style.paragraph_format.keep_with_next = True
        style.paragraph_format.space_before = Pt(10 if level else 0)
        style.paragraph_format.space_after = Pt(4)
    _page_footer(section)
    props = doc.core_properties
    props.title = title
    props.author = "senforms"
    written_at = datetime.combine(written, time(9, 0), tzinfo=UTC)
    props.created = props.modified = written_at
    props.revision = 1
    return doc


def _one_font(style: Any) -> None:
    """Every script slot and the theme fonts overridden: otherwise Word shows headings in the
    theme's heading font (Calibri Light) whatever the ascii font says."""
    style.font.name = FONT
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = OxmlElement("w:rFonts")
        rpr.insert(0, fonts)
    for attr in ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia"):
        fonts.set(qn(attr), FONT)
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme"):
        fonts.attrib.pop(qn(attr), None)


def _field(paragraph: Any, instruction: str) -> None:
    """A Word field (PAGE, NUMPAGES) that Word and LibreOffice fill in when they lay out pages."""
    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, instruction), ("separate", None), (None, "1"), ("end", None)):
        if kind is not None:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
            run._r.append(element)
        elif text == instruction:
            element = OxmlElement("w:instrText")
            element.set(qn("xml:space"), "preserve")
            element.text = f" {instruction} "
            run._r.append(element)
        else:
            element = OxmlElement("w:t")
            element.text = text
            run._r.append(element)


def _page_footer(section: Any) -> None:
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    footer.add_run("Page ")
    _field(footer, "PAGE")
    footer.add_run(" of ")
    _field(footer, "NUMPAGES")
    for run in footer.runs:
        run.font.size = Pt(9)


def text(value: Any) -> str:
    """A value from a form as printable text: control characters gone, None as empty."""
    if value is None:
        return ""
    return clean_text(str(value))


def paragraph(doc: Any, value: Any, *, bold_lead: str = "", style: str | None = None) -> Any:
    """A paragraph of a form's words, kept as data; ``bold_lead`` is a label before them."""
    p = doc.add_paragraph(style=style)
    if bold_lead:
        p.add_run(bold_lead).bold = True
    p.add_run(text(value))
    return p


def table(
    doc: Any, header: list[str], rows: list[list[Any]], *, widths: list[float] | None = None, size: float | None = None
) -> Any:
    """A bordered table with a repeated header row; no row splits across a page and every row but
    the last keeps with the next only in short tables (a long table may break between rows)."""
    grid = doc.add_table(rows=1, cols=len(header))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, label in zip(grid.rows[0].cells, header, strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(label).bold = True
    _row_props(grid.rows[0], header=True)
    for values in rows:
        row = grid.add_row()
        for cell, value in zip(row.cells, values, strict=True):
            lines = text(value).split("\n")
            cell.paragraphs[0].add_run(lines[0])
            for line in lines[1:]:
                cell.add_paragraph(line)
        _row_props(row)
    if widths:
        # LibreOffice lays a table out by its grid columns, Word by its cells: set both.
        grid.autofit = False
        for column, width in zip(grid.columns, widths, strict=True):
            column.width = Cm(width)
        for row in grid.rows:
            for cell, width in zip(row.cells, widths, strict=True):
                cell.width = Cm(width)
    if size is not None:
        # A wide table in a smaller size of the same font, so dates and sums fit their columns.
        for row in grid.rows:
            for cell in row.cells:
                for p in cell.paragraphs:
                    for run in p.runs:
                        run.font.size = Pt(size)
    if len(rows) <= 8:
        # A short table stays on one page with its heading.
        for row in grid.rows[:-1]:
            for cell in row.cells:
                for p in cell.paragraphs:
                    p.paragraph_format.keep_with_next = True
    return grid


def _row_props(row: Any, *, header: bool = False) -> None:
    trpr = row._tr.get_or_add_trPr()
    cant = OxmlElement("w:cantSplit")
    trpr.append(cant)
    if header:
        repeat = OxmlElement("w:tblHeader")
        trpr.append(repeat)


def picture(doc: Any, png: bytes, width_cm: float, caption: str) -> None:
    doc.add_paragraph().paragraph_format.keep_with_next = True
    doc.paragraphs[-1].add_run().add_picture(io.BytesIO(png), width=Cm(width_cm))
    doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
    note = doc.add_paragraph(caption)
    note.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for run in note.runs:
        run.italic = True


def to_bytes(doc: Any) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()
