"""Fill Word forms as people and word processors do, independently of senforms' own writer.

- ``fill_like_word``: the XML Word writes when a person types in (or clicks) a content control;
- ``type_beside``: a person who typed next to the grey box instead of in it;
- ``fill_in_libreoffice``: really fill the form in LibreOffice 7.4 (headless, through UNO) and save
  it as .docx, which drops every ``w:tag``;
- ``resave_in_libreoffice``: open and save again, nothing typed.

Values are what a person types: ``typed(kind, case)`` turns a case in the nested shape that
``senforms extract --json`` prints into that (dates as 14/02/2016, list items by the words shown).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from lxml import etree

from senforms.kinds import KINDS, FormKind
from senforms.layout import Grid, Section, Widget, blocks, fields

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
HERE = Path(__file__).resolve().parent
UNO_SCRIPT = HERE / "lo_uno_fill.py"
LO_TIMEOUT = 180


def _w(tag: str) -> str:
    return f"{{{W}}}{tag}"


def _w14(tag: str) -> str:
    return f"{{{W14}}}{tag}"


# --- values as typed ---------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flat(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flat(v, f"{prefix}{i}.")
    elif value is not None:
        yield prefix[:-1], value


def typed(kind: FormKind | str, case: Mapping[str, Any]) -> dict[str, str | bool]:
    """What a person types or picks for each value of a case: dotted path to text or tick."""
    kind = KINDS[kind] if isinstance(kind, str) else kind
    specs = fields(kind)
    out: dict[str, str | bool] = {}
    for path, value in _flat(case):
        spec = specs[path]
        if spec.widget is Widget.check:
            out[path] = bool(value)
        elif spec.widget is Widget.date:
            out[path] = date.fromisoformat(str(value)).strftime("%d/%m/%Y")
        elif spec.choices:
            out[path] = dict(spec.choices).get(str(value), str(value))
        else:
            out[path] = str(value)
    return out


# --- the .docx package -------------------------------------------------------------------------


def replace_parts(docx: bytes, parts: Mapping[str, bytes | None]) -> bytes:
    """A copy of a .docx with some parts replaced (or removed, for ``None``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename in parts:
                if parts[info.filename] is not None:
                    dst.writestr(info.filename, parts[info.filename])
            else:
                dst.writestr(info, src.read(info.filename))
    return out.getvalue()


def document_xml(docx: bytes) -> etree._Element:
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        return etree.fromstring(archive.read("word/document.xml"), etree.XMLParser(resolve_entities=False))


def with_document(docx: bytes, root: etree._Element) -> bytes:
    return replace_parts(docx, {"word/document.xml": etree.tostring(root, xml_declaration=True, encoding="UTF-8")})


def control(root: etree._Element, path: str) -> etree._Element:
    """The content control tagged with a path."""
    for sdt in root.iter(_w("sdt")):
        tag = sdt.find(f"{_w('sdtPr')}/{_w('tag')}")
        if tag is not None and tag.get(_w("val")) == path:
            return sdt
    raise KeyError(f"no content control tagged {path!r}")


# --- Word ----------------------------------------------------------------------------------------


def _typed_runs(text: str) -> list[etree._Element]:
    """Runs as Word leaves them after typing: split where editing sessions (rsids) differ, a
    ``w:br`` for each Shift+Enter (a plain-text control's Enter), spaces preserved."""
    runs: list[etree._Element] = []
    for number, line in enumerate(text.split("\n")):
        if number:
            br_run = etree.Element(_w("r"), {_w("rsidR"): "00A1B2C3"})
            etree.SubElement(br_run, _w("br"))
            runs.append(br_run)
        # Word splits a line into runs at edits; cut after the first word, as a later correction would.
        head, sep, tail = line.partition(" ")
        for rsid, piece in (("00A1B2C3", head + sep), ("00D4E5F6", tail)):
            if not piece:
                continue
            r = etree.Element(_w("r"), {_w("rsidR"): rsid})
            t = etree.SubElement(r, _w("t"))
            t.text = piece
            if piece != piece.strip():
                t.set(XML_SPACE, "preserve")
            runs.append(r)
    return runs


def word_type_into(
    sdt: etree._Element, value: str | bool, *, keep_placeholder_mark: bool = False, glyph: str | None = None
) -> None:
    """Edit one content control as Word does when a person types in it or clicks it."""
    pr = sdt.find(_w("sdtPr"))
    content = sdt.find(_w("sdtContent"))
    assert pr is not None and content is not None
    if not keep_placeholder_mark:
        for mark in pr.findall(_w("showingPlcHdr")):
            pr.remove(mark)
    box = pr.find(_w14("checkbox"))
    if box is not None:
        state = box.find(_w14("checked"))
        assert state is not None
        state.set(_w14("val"), "1" if value else "0")
        wanted = box.find(_w14("checkedState" if value else "uncheckedState"))
        default = "\u2612" if value else "\u2610"
        shown = glyph or (chr(int(wanted.get(_w14("val"), ""), 16)) if wanted is not None else default)
        for t in content.iter(_w("t")):
            t.text = shown
        return
    assert isinstance(value, str)
    for child in list(content):
        content.remove(child)
    for run in _typed_runs(value):
        content.append(run)
    dropdown = pr.find(_w("dropDownList"))
    if dropdown is not None:
        for item in dropdown.iter(_w("listItem")):
            if item.get(_w("displayText")) == value:
                dropdown.set(_w("lastValue"), item.get(_w("value"), ""))
    # A date typed as text: Word leaves w:fullDate as it was (stale) until the picker is used.


def fill_like_word(
    docx: bytes,
    answers: Mapping[str, str | bool],
    *,
    keep_placeholder_mark: Iterable[str] = (),
    glyphs: Mapping[str, str] | None = None,
) -> bytes:
    """A form filled in Word: ``answers`` maps tags (dotted paths) to typed text or a tick.
    ``keep_placeholder_mark`` leaves ``w:showingPlcHdr`` on those controls, as other programs
    sometimes do; ``glyphs`` shows a checkbox glyph that disagrees with its state."""
    root = document_xml(docx)
    keep = set(keep_placeholder_mark)
    for path, value in answers.items():
        word_type_into(control(root, path), value, keep_placeholder_mark=path in keep, glyph=(glyphs or {}).get(path))
    return with_document(docx, root)


def type_beside(docx: bytes, path: str, text: str) -> bytes:
    """A person who typed after the grey box instead of in it: placeholder kept, text in a run
    after the control in the same paragraph."""
    root = document_xml(docx)
    sdt = control(root, path)
    run = etree.Element(_w("r"))
    t = etree.SubElement(run, _w("t"))
    t.text = text
    t.set(XML_SPACE, "preserve")
    sdt.addnext(run)
    return with_document(docx, root)


# --- LibreOffice -----------------------------------------------------------------------------------


def soffice() -> str | None:
    return shutil.which("soffice")


def uno_python() -> str | None:
    """A Python that can ``import uno``: LibreOffice's own, or the system's with python3-uno."""
    for candidate in ("/usr/lib/libreoffice/program/python", "/usr/bin/python3", shutil.which("python3")):
        if candidate and os.access(candidate, os.X_OK):
            probe = subprocess.run([candidate, "-c", "import uno"], capture_output=True, timeout=30)
            if probe.returncode == 0:
                return candidate
    return None


def kind_of(docx: bytes) -> FormKind:
    """The form's kind, from its custom property or its footer mark, read without senforms."""
    with zipfile.ZipFile(io.BytesIO(docx)) as archive:
        text = " ".join(
            archive.read(n).decode("utf-8", "replace")
            for n in archive.namelist()
            if n == "docProps/custom.xml" or re.match(r"word/footer\d*\.xml$", n)
        )
    m = re.search(r"senforms form:\s*([a-z-]+)", text) or re.search(r"<vt:lpwstr>([a-z-]+)</vt:lpwstr>", text)
    assert m, "not a senforms form"
    return KINDS[m[1]]


def edits_for(kind: FormKind, answers: Mapping[str, str | bool]) -> list[dict[str, Any]]:
    """Where a person finds each answer on the printed form: by row label, or column heading and
    row number, or item heading and row label. A key that is not a path is a printed label."""
    where: dict[str, dict[str, Any]] = {}
    for block in blocks(kind):
        if isinstance(block, Section):
            for f in block.fields:
                where[f.path] = {"row": f.label}
        elif isinstance(block, Grid):
            for i in range(block.count):
                for column in block.columns:
                    f = block.field(i, column)
                    if block.orientation == "rows":
                        where[f.path] = {"header": column.label, "number": i + 1}
                    else:
                        where[f.path] = {"item": f"{block.item_label} {i + 1}", "row": column.label}
    return [{**where.get(key, {"row": key}), "value": value} for key, value in answers.items()]


def fill_many_in_libreoffice(jobs: Iterable[tuple[Path, Mapping[str, str | bool], Path]]) -> list[Path]:
    """Fill several forms in one LibreOffice start (seconds each): (form, answers, out) each."""
    python = uno_python()
    if python is None or soffice() is None:
        raise RuntimeError("LibreOffice with Python-UNO (Debian: python3-uno) is needed")
    docs = []
    for src, answers, out in jobs:
        kind = kind_of(Path(src).read_bytes())
        docs.append({"src": str(src), "out": str(out), "edits": edits_for(kind, answers)})
    with tempfile.TemporaryDirectory(prefix="senforms-lo-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"profile": f"{tmp}/profile", "docs": docs}), encoding="utf-8")
        done = subprocess.run(
            [python, str(UNO_SCRIPT), str(job)], capture_output=True, text=True, timeout=LO_TIMEOUT, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"LibreOffice fill failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    counts = json.loads(done.stdout.strip().splitlines()[-1])["done"]
    assert counts == [len(d["edits"]) for d in docs], counts
    return [Path(d["out"]) for d in docs]


def fill_in_libreoffice(docx_path: Path, answers: Mapping[str, str | bool], out_path: Path) -> Path:
    """Really fill a form in LibreOffice 7.4 and save it as "MS Word 2007 XML" (.docx)."""
    return fill_many_in_libreoffice([(docx_path, answers, out_path)])[0]


def resave_in_libreoffice(path: Path, outdir: Path) -> Path:
    """Open a .docx in LibreOffice and save it again as .docx, as someone who only looked at it."""
    return resave_many_in_libreoffice([path], outdir)[0]


def resave_many_in_libreoffice(paths: Iterable[Path], outdir: Path) -> list[Path]:
    """Several re-saves in one LibreOffice start; the files must have different names."""
    paths = [Path(p) for p in paths]
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="senforms-lo-") as tmp:
        done = subprocess.run(
            [
                "soffice",
                f"-env:UserInstallation=file://{tmp}/profile",
                "--headless",
                "--norestore",
                "--convert-to",
                "docx:MS Word 2007 XML",
                "--outdir",
                str(outdir),
                *map(str, paths),
            ],
            capture_output=True,
            text=True,
            timeout=LO_TIMEOUT,
            check=False,
        )
    outs = [outdir / (p.stem + ".docx") for p in paths]
    if done.returncode != 0 or not all(o.exists() for o in outs):
        raise RuntimeError(f"LibreOffice re-save failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return outs


# --- a school's own copy of a form -------------------------------------------------------------


def tiny_png(width: int = 16, height: int = 8) -> bytes:
    """A small school-crest-coloured PNG, made by hand (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes((0x1F, 0x4E, 0x79)) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


SCHOOL_LABELS = {"pupil.date_of_birth": "Pupil's date of birth", "pupil.year_group": "School year"}
SCHOOL_GUIDANCE = "Oakfield's SEN support plan. Please complete with the family and return to the office."


def make_school_template(blank: bytes) -> bytes:
    """What a SENCO does to a blank form in Word to make it the school's own: a logo in the
    header, new guidance, two labels reworded (a date and a list, whose titles LibreOffice 7.4
    drops), and two rows of "About the pupil" swapped."""
    import docx
    from docx.shared import Cm

    document = docx.Document(io.BytesIO(blank))
    header = document.sections[0].header
    header.paragraphs[0].insert_paragraph_before().add_run().add_picture(io.BytesIO(tiny_png()), width=Cm(2.5))
    for para in document.paragraphs:
        if para.text.startswith("Agree this plan"):
            para.runs[0].text = SCHOOL_GUIDANCE
            for extra in para.runs[1:]:
                extra.text = ""
    pupil_table = document.tables[0]
    defaults = {fields(KINDS["support-plan"])[p].label: wording for p, wording in SCHOOL_LABELS.items()}
    rows: dict[str, Any] = {}
    for row in pupil_table.rows:
        first = row.cells[0].paragraphs[0]
        label = first.text.removesuffix(" *")
        rows[label] = row
        if label in defaults:
            first.runs[0].text = first.runs[0].text.replace(label, defaults[label])
    # Year group above date of birth.
    rows["Date of birth"]._tr.addprevious(rows["Year group"]._tr)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- what people do to a form's structure in Word or Google Docs --------------------------------


def plain_run(text: str) -> etree._Element:
    """A run of text typed outside any content control."""
    run = etree.Element(_w("r"))
    t = etree.SubElement(run, _w("t"))
    t.text = text
    t.set(XML_SPACE, "preserve")
    return run


def word_in_place_of(root: etree._Element, path: str, word: str) -> None:
    """A person who deleted a check box (or any box) and typed a word in its cell instead."""
    sdt = control(root, path)
    sdt.addprevious(plain_run(word))
    sdt.getparent().remove(sdt)


def strip_controls(root: etree._Element) -> None:
    """Every content control unwrapped to its plain content, as Google Docs leaves an imported
    form: the grey placeholder words and the box glyphs stay as ordinary text, the tags go."""
    for sdt in list(root.iter(_w("sdt"))):
        content = sdt.find(_w("sdtContent"))
        for child in list(content) if content is not None else []:
            sdt.addprevious(child)
        sdt.getparent().remove(sdt)


def copy_row(root: etree._Element, path: str) -> etree._Element:
    """Word's 'Insert row below' after copying the row: the copy keeps every tag. Returns it."""
    import copy

    row = next(control(root, path).iterancestors(_w("tr")))
    twin = copy.deepcopy(row)
    row.addnext(twin)
    return twin


def type_into_copy(twin: etree._Element, path: str, value: str | bool) -> None:
    """Type in the copied row's control whose tag is ``path``."""
    word_type_into(control(twin, path), value)
