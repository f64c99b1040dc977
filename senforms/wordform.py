"""Writing Word forms: blank or pre-filled, from a kind's declaration or a school's template.

Every answer is an inline content control whose ``w:tag`` is the field's dotted path. Repeated
items are pre-drawn numbered rows, never repeating sections, which LibreOffice drops.
"""

from __future__ import annotations

import copy
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import docx
from docx.document import Document
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.shared import Cm, Pt, RGBColor
from lxml import etree
from pydantic_core import PydanticCustomError

from senforms.errors import TemplateError
from senforms.kinds import FormKind
from senforms.layout import Field, Grid, Section, Widget, blocks, fields
from senforms.values import format_uk_date, parse_uk_date
from senforms.wordml import (
    CHECKED,
    CUSTOM_NS,
    FOOTER_MARK,
    PLACEHOLDER_CHOICE,
    PLACEHOLDER_DATE,
    PLACEHOLDER_TEXT,
    PROP_KIND,
    PROP_VERSION,
    UNCHECKED,
    VT_NS,
    W14_NS,
    W_NS,
    w,
    w14,
)
from senforms.zipparts import Stored, raw_member, stored, write_zip

SCHOOL_TAG = "school.name"
_PLACEHOLDER_STYLE = "Placeholder Text"
_GREY = RGBColor(0x59, 0x59, 0x59)


# --- one content control -----------------------------------------------------------------------


# Tag names made once: set_control runs for every answer of every pre-filled form.
_R, _RPR, _T, _BR, _VAL = w("r"), w("rPr"), w("t"), w("br"), w("val")
_SDT, _SDT_PR, _SDT_CONTENT, _SHOWING_PLACEHOLDER, _DATE, _FULL_DATE = (
    w("sdt"),
    w("sdtPr"),
    w("sdtContent"),
    w("showingPlcHdr"),
    w("date"),
    w("fullDate"),
)
_CHECKBOX, _CHECKED_STATE, _CHECKED_VAL = w14("checkbox"), w14("checked"), w14("val")
_SPACE = "{http://www.w3.org/XML/1998/namespace}space"


def _run(text: str, *, style: bool = False, font: str | None = None) -> etree._Element:
    r = etree.Element(_R)
    if style or font:
        rpr = etree.SubElement(r, _RPR)
        if style:
            etree.SubElement(rpr, w("rStyle"), {_VAL: "PlaceholderText"})
        if font:
            etree.SubElement(rpr, w("rFonts"), {w(a): font for a in ("ascii", "eastAsia", "hAnsi")})
    for i, line in enumerate(text.split("\n")):
        if i:
            etree.SubElement(r, _BR)
        if line:
            t = etree.SubElement(r, _T)
            t.text = line
            if line != line.strip():
                t.set(_SPACE, "preserve")
    return r


def control(field: Field, control_id: int) -> etree._Element:
    """An empty inline content control for one answer."""
    sdt = etree.Element(w("sdt"))
    pr = etree.SubElement(sdt, w("sdtPr"))
    etree.SubElement(pr, w("alias"), {w("val"): field.label[:255]})
    etree.SubElement(pr, w("tag"), {w("val"): field.path})
    etree.SubElement(pr, w("id"), {w("val"): str(control_id)})
    if field.widget is Widget.check:
        box = etree.SubElement(pr, w14("checkbox"))
        etree.SubElement(box, w14("checked"), {w14("val"): "0"})
        etree.SubElement(box, w14("checkedState"), {w14("val"): "2612", w14("font"): "MS Gothic"})
        etree.SubElement(box, w14("uncheckedState"), {w14("val"): "2610", w14("font"): "MS Gothic"})
    else:
        etree.SubElement(pr, w("showingPlcHdr"))
        if field.widget is Widget.date:
            d = etree.SubElement(pr, w("date"))
            etree.SubElement(d, w("dateFormat"), {w("val"): "dd/MM/yyyy"})
            etree.SubElement(d, w("lid"), {w("val"): "en-GB"})
            etree.SubElement(d, w("storeMappedDataAs"), {w("val"): "dateTime"})
            etree.SubElement(d, w("calendar"), {w("val"): "gregorian"})
        elif field.widget is Widget.choice:
            dd = etree.SubElement(pr, w("dropDownList"))
            etree.SubElement(dd, w("listItem"), {w("displayText"): PLACEHOLDER_CHOICE, w("value"): ""})
            for value, shown in field.choices:
                etree.SubElement(dd, w("listItem"), {w("displayText"): shown, w("value"): value})
        elif field.widget is Widget.text:
            etree.SubElement(pr, w("text"))
        # A box of several lines is a rich-text control (no w:text): LibreOffice 7.4 opens a
        # plain-text control as an input field and loses the line breaks typed in it in Word.
    content = etree.SubElement(sdt, w("sdtContent"))
    if field.widget is Widget.check:
        content.append(_run(UNCHECKED, font="MS Gothic"))
    else:
        placeholder = {Widget.date: PLACEHOLDER_DATE, Widget.choice: PLACEHOLDER_CHOICE}.get(
            field.widget, PLACEHOLDER_TEXT
        )
        content.append(_run(placeholder, style=True))
    return sdt


def set_control(sdt: etree._Element, widget: Widget, value: Any, choices: Mapping[str, str] | None = None) -> None:
    """Put a value in a content control as if a person had typed or chosen it."""
    # Properties first and content last, as Word writes a control; looked for otherwise.
    pr, content = sdt[0] if len(sdt) else None, sdt[-1] if len(sdt) else None
    if pr is None or pr.tag != _SDT_PR:
        pr = sdt.find(_SDT_PR)
    if content is None or content.tag != _SDT_CONTENT:
        content = sdt.find(_SDT_CONTENT)
    assert pr is not None and content is not None
    for mark in pr.findall(_SHOWING_PLACEHOLDER):
        pr.remove(mark)
    del content[:]  # as a slice: no proxy made for each child only to remove it
    if widget is Widget.check:
        checked = bool(value)
        box = pr.find(_CHECKBOX)
        if box is not None and (state := box.find(_CHECKED_STATE)) is not None:
            state.set(_CHECKED_VAL, "1" if checked else "0")
        content.append(_run(CHECKED if checked else UNCHECKED, font="MS Gothic"))
        return
    if isinstance(value, date):
        if (d := pr.find(_DATE)) is not None:
            d.set(_FULL_DATE, f"{value:%Y-%m-%d}T00:00:00Z")
        text = format_uk_date(value)
    else:
        text = str(value)
        if choices is not None:
            text = choices.get(text, text)
    content.append(_run(text))


# --- the document ------------------------------------------------------------------------------


def _styles(document: Document) -> None:
    styles = document.styles
    if _PLACEHOLDER_STYLE not in [s.name for s in styles]:
        style = styles.add_style(_PLACEHOLDER_STYLE, WD_STYLE_TYPE.CHARACTER)
        style.element.set(w("styleId"), "PlaceholderText")
        style.font.color.rgb = RGBColor(0x80, 0x80, 0x80)
    normal = styles["Normal"]
    normal.font.name = "Arial"
    normal.font.size = Pt(10.5)


def _label_cell(cell: Any, field: Field) -> None:
    para = cell.paragraphs[0]
    para.add_run(field.label + (" *" if field.required else "")).bold = True
    if field.help:
        note = cell.add_paragraph().add_run(field.help)
        note.font.size = Pt(8.5)
        note.font.color.rgb = _GREY


def _answer_cell(cell: Any, field: Field, ids: list[int]) -> None:
    ids.append(ids[-1] + 1)
    cell.paragraphs[0]._p.append(control(field, ids[-1]))


def _section(document: Document, section: Section, ids: list[int]) -> None:
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for field in section.fields:
        row = table.add_row()
        row.cells[0].width, row.cells[1].width = Cm(5.5), Cm(11.5)
        _label_cell(row.cells[0], field)
        _answer_cell(row.cells[1], field, ids)


def _grid(document: Document, grid: Grid, ids: list[int]) -> None:
    if grid.orientation == "rows":
        table = document.add_table(rows=1, cols=len(grid.columns) + 1)
        table.style = "Table Grid"
        head = table.rows[0].cells
        head[0].paragraphs[0].add_run("No.").bold = True
        for cell, column in zip(head[1:], grid.columns, strict=True):
            cell.paragraphs[0].add_run(column.label).bold = True
        for index in range(grid.count):
            cells = table.add_row().cells
            cells[0].text = str(index + 1)
            for cell, column in zip(cells[1:], grid.columns, strict=True):
                _answer_cell(cell, grid.field(index, column), ids)
    else:
        table = document.add_table(rows=1, cols=grid.count + 1)
        table.style = "Table Grid"
        for index, cell in enumerate(table.rows[0].cells[1:]):
            cell.paragraphs[0].add_run(f"{grid.item_label} {index + 1}").bold = True
        for column in grid.columns:
            cells = table.add_row().cells
            _label_cell(cells[0], column)
            for index, cell in enumerate(cells[1:]):
                _answer_cell(cell, grid.field(index, column), ids)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER


def build_template(kind: FormKind) -> Document:
    """The default Word form for a kind, straight from its declaration."""
    document = docx.Document()
    _styles(document)
    page = document.sections[0]
    page.orientation = WD_ORIENT.PORTRAIT
    page.page_width, page.page_height = Cm(21), Cm(29.7)
    for side in ("left_margin", "right_margin"):
        setattr(page, side, Cm(1.8))
    page.top_margin = page.bottom_margin = Cm(1.5)

    school = page.header.paragraphs[0]
    school._p.append(control(Field(SCHOOL_TAG, "School", Widget.text), 1))

    document.add_heading(kind.title, level=1)
    guidance = document.add_paragraph(kind.guidance)
    guidance.runs[0].font.color.rgb = _GREY
    document.add_paragraph("Boxes marked * must be filled in.").runs[0].italic = True
    ids = [100]
    for block in blocks(kind):
        document.add_heading(block.heading, level=2)
        if isinstance(block, Section):
            _section(document, block, ids)
        else:
            _grid(document, block, ids)
    footer = page.footer.paragraphs[0]
    mark = footer.add_run(f"{kind.title}. " + FOOTER_MARK.format(slug=kind.slug, version=kind.version))
    mark.font.size = Pt(7.5)
    mark.font.color.rgb = _GREY
    _set_properties(document, kind)
    return document


def _set_properties(document: Document, kind: FormKind) -> None:
    """Kind and version as custom document properties, which Word and LibreOffice both keep."""
    xml = (
        f'<Properties xmlns="{CUSTOM_NS}" xmlns:vt="{VT_NS}">'
        f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="2" name="{PROP_KIND}">'
        f"<vt:lpwstr>{kind.slug}</vt:lpwstr></property>"
        f'<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="3" name="{PROP_VERSION}">'
        f"<vt:lpwstr>{kind.version}</vt:lpwstr></property></Properties>"
    ).encode()
    package = document.part.package
    for rel in list(package.rels.values()):
        if rel.reltype == RT.CUSTOM_PROPERTIES:
            rel.target_part._blob = xml
            return
    part = Part(
        PackURI("/docProps/custom.xml"),
        "application/vnd.openxmlformats-officedocument.custom-properties+xml",
        xml,
        package,
    )
    package.relate_to(part, RT.CUSTOM_PROPERTIES)
    document.core_properties.title = kind.title


def _controls(document: Document) -> list[etree._Element]:
    found: list[etree._Element] = []
    parts = [document.part] + [s.header.part for s in document.sections if s.header is not None]
    for part in parts:
        found += part.element.iter(w("sdt"))
    return found


def _tag(sdt: etree._Element) -> str | None:
    tag = sdt.find(f"{w('sdtPr')}/{w('tag')}")
    return None if tag is None else tag.get(w("val"))


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"pupil": {"upn": ...}}`` and lists as ``{"pupil.upn": ..., "outcomes.0.description": ...}``."""
    flat: dict[str, Any] = {}
    items = values.items() if isinstance(values, Mapping) else enumerate(values)
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, Mapping | list | tuple):
            flat.update(flatten(value, f"{path}."))  # type: ignore[arg-type]  # a list flattens by index
        elif value is not None:
            flat[path] = value
    return flat


def make_form(
    kind: FormKind,
    *,
    school: str,
    values: Mapping[str, Any] | None = None,
    template: Path | None = None,
) -> bytes:
    """A Word form, blank or pre-filled, as .docx bytes.

    ``values`` has the same nested shape as ``senforms extract --json``; any subset will do.
    ``template`` is a school's own copy of the form; without one the declaration is used.
    """
    specs = fields(kind)
    flat = flatten(values or {})
    unknown = sorted(set(flat) - set(specs))
    if unknown:
        raise TemplateError(f"These values have no box on the {kind.title}: {', '.join(unknown)}")
    answers: dict[str, tuple[Widget, Any, dict[str, str] | None]] = {SCHOOL_TAG: (Widget.text, school, None)}
    for path, value in flat.items():
        spec = specs[path]
        if spec.widget is Widget.date and isinstance(value, str):
            value = _known_date(value, spec.label)
        answers[path] = (spec.widget, value, dict(spec.choices) if spec.choices else None)
    stamp = template.stat().st_mtime_ns if template else 0
    return _fill_package(_blank(kind, str(template) if template else None, stamp), answers)


@lru_cache(maxsize=16)
def _template_bytes(kind: FormKind, template: str | None, _stamp: int) -> bytes:
    """The empty form as .docx bytes, built (or checked) once: python-docx is far too slow to
    build a form for every pre-filled document the pipeline writes."""
    document = _open_template(kind, Path(template)) if template else build_template(kind)
    _set_properties(document, kind)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


_FILLED_PARTS = re.compile(r"^word/(document|header\d*)\.xml$")


@dataclass(frozen=True)
class _Blank:
    """A blank form taken apart once: the parts answers go in, parsed, with the tag of each of
    their content controls in document order; every part as its compressed bytes."""

    members: tuple[Stored, ...]
    trees: dict[str, tuple[etree._Element, tuple[str | None, ...]]]
    infos: dict[str, zipfile.ZipInfo]
    # A part with few controls (the header with the school's name) as it was last filled, and
    # with what: the next form with the same answers in it takes the same bytes.
    last: dict[str, tuple[list[tuple[Any, ...]], Stored]] = dataclass_field(default_factory=dict)


# A part with at most this many controls keeps its last filling (comparing the answers costs
# less than copying, filling, serialising and compressing it again).
_FEW = 8


@lru_cache(maxsize=16)
def _blank(kind: FormKind, template: str | None, stamp: int) -> _Blank:
    source = _template_bytes(kind, template, stamp)
    members: list[Stored] = []
    trees = {}
    infos = {}
    with zipfile.ZipFile(io.BytesIO(source)) as archive:
        for info in archive.infolist():
            members.append(raw_member(source, archive, info))
            if _FILLED_PARTS.match(info.filename):
                root = etree.fromstring(archive.read(info), etree.XMLParser(resolve_entities=False))
                trees[info.filename] = (root, tuple(_tag(sdt) for sdt in root.iter(_SDT)))
                infos[info.filename] = info
    return _Blank(tuple(members), trees, infos)


Answers = Mapping[str, tuple[Widget, Any, dict[str, str] | None]]


def _fill_package(blank: _Blank, answers: Answers) -> bytes:
    """The blank's package with each answer in the control tagged with its path: only the parts
    with an answer in them are written again, each from a copy of its tree parsed once."""
    filled: dict[bytes, Stored] = {}
    for name, (tree, tags) in blank.trees.items():
        if len(tags) <= _FEW:
            used = _used(tags, answers)
            if not used:
                continue  # nothing to fill in: the blank's own bytes
            last = blank.last.get(name)
            if last is not None and last[0] == used:
                filled[last[1].name] = last[1]
                continue
        elif not any(tag in answers for tag in tags):
            continue
        member = stored(blank.infos[name], data=_filled_part(tree, tags, answers))
        filled[member.name] = member
        if len(tags) <= _FEW:
            blank.last[name] = (used, member)
    return write_zip([filled.get(m.name, m) for m in blank.members])


def _used(tags: tuple[str | None, ...], answers: Answers) -> list[tuple[Any, ...]]:
    """What the answers put in these controls, to compare one form's with the last one's: the
    value's type too, since True == 1 but a box shows "True" and "1" differently."""
    found = []
    for tag in tags:
        if tag is not None and tag in answers:
            widget, value, choices = answers[tag]
            found.append((tag, widget, type(value), value, None if choices is None else list(choices.items())))
    return found


def _filled_part(tree: etree._Element, tags: tuple[str | None, ...], answers: Answers) -> bytes:
    root = copy.deepcopy(tree)
    for sdt, tag in list(zip(root.iter(_SDT), tags, strict=True)):
        if tag is not None and tag in answers:
            set_control(sdt, *answers[tag])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def _known_date(text: str, label: str) -> date:
    """A date from a values file (ISO as JSON has it, or as people type it)."""
    try:
        found = parse_uk_date(text)
    except PydanticCustomError as exc:
        raise TemplateError(f"{label}: {exc.message()}") from None
    if found is None:
        raise TemplateError(f"{label}: the date is empty")
    return found


def _open_template(kind: FormKind, template: Path) -> Document:
    try:
        document = docx.Document(str(template))
    except Exception as exc:  # python-docx raises many types for a damaged file
        raise TemplateError(f"The form template {template.name} cannot be opened ({exc}).") from exc
    tags = {_tag(sdt) for sdt in _controls(document)}
    missing = [f.label for path, f in fields(kind).items() if path not in tags]
    if missing:
        raise TemplateError(
            f"The form template {template.name} has lost the answer boxes for: {', '.join(missing[:8])}"
            + (" and more" if len(missing) > 8 else "")
        )
    return document


__all__ = ["SCHOOL_TAG", "W14_NS", "W_NS", "build_template", "control", "flatten", "make_form", "set_control"]
