"""Letters and documents from docxtpl templates that a school may restyle and reword.

A template is a Word document with Jinja tags (``{{ pupil.known_as }}``, ``{%p if ... %}``,
``{%tr for ... %}``). The names a template may use are listed in ``templates/letters/README.md``;
``documents.sample_context`` builds a context of exactly that shape from sample forms.

Safety: the values come from forms that parents and staff typed, so they are data and never
template code. Jinja does not re-read the text of a value, autoescape keeps ``& < >`` from
breaking the XML, the sandbox keeps an edited template from reaching Python internals, and
braces in values are written as character references so docxtpl's own ``{_{`` post-processing
cannot touch them. Every document written is parsed again (strictly) and checked for tags left
unfilled before it is handed back.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import io
import re
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from docx import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import nsmap, qn
from docx.oxml.parser import oxml_parser, parse_xml
from docx.text.paragraph import Paragraph
from docxtpl import DocxTemplate
from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing
from lxml import etree
from lxml.etree import XMLSyntaxError
from markupsafe import Markup, escape

from senforms.config import Settings
from senforms.errors import TemplateError
from senforms.values import clean_text
from senforms.zipparts import Stored, raw_member, stored, write_zip

# The templates senforms ships live inside the package, so an installed wheel has them.
TEMPLATES: Traversable = files("senforms") / "templates"
LETTERS_FOLDER = "letters"
README_HINT = "templates/letters/README.md"
# Real files for shipped templates that are not plain files (a zipped install), kept until exit.
_SHIPPED_FILES = contextlib.ExitStack()
atexit.register(_SHIPPED_FILES.close)


@functools.cache
def shipped_letter(name: str) -> Path | None:
    """The path of the letter template senforms ships, or None if it ships none of that name."""
    resource = TEMPLATES / LETTERS_FOLDER / f"{name}.docx"
    return _SHIPPED_FILES.enter_context(as_file(resource)) if resource.is_file() else None


_MARKERS = ("{{", "}}", "{%", "%}")


# --- the Jinja environment ----------------------------------------------------------------------


class _Node(dict):
    """A context mapping that knows where it sits, so an unknown name can be reported in full
    (``pupil.nickname`` rather than Jinja's "'dict object' has no attribute")."""

    senforms_path: str = ""


class _UnknownName(UndefinedError):
    """A name the template uses that the context does not have; its message is the dotted path."""


class _Undefined(StrictUndefined):
    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = None, name: str | None = None, exc: Any = None) -> None:
        # The sandbox passes SecurityError for a forbidden attribute; keep that one.
        exc = exc if exc is not None and exc is not UndefinedError else _UnknownName
        super().__init__(hint, missing if obj is None else obj, name, exc)

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = str(self._undefined_name)
        owner = getattr(self._undefined_obj, "senforms_path", "")
        return f"{owner}.{name}" if owner else name


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` value on its way into the XML: escaped, with braces and per cent signs as
    character references, because docxtpl rewrites ``{_{`` to ``{{`` after rendering."""
    if value is None:
        return Markup("")
    # Markup here comes from a filter over data (``join``), already escaped; braces still apply.
    escaped = value if isinstance(value, Markup) else escape(str(value))
    if "{" in escaped or "}" in escaped or "%" in escaped:
        return Markup(str(escaped).replace("{", "&#123;").replace("}", "&#125;").replace("%", "&#37;"))
    return escaped


class _Environment(SandboxedEnvironment):
    """Compiles each template part once: docxtpl asks for ``from_string`` on every render, and
    compiling a letter's XML is most of its cost."""

    def __init__(self) -> None:
        super().__init__(autoescape=True, undefined=_Undefined, finalize=_finalize)
        self._compiled: dict[str, Template] = {}
        self._lock = threading.Lock()

    def from_string(self, source: Any, globals: Any = None, template_class: Any = None) -> Template:
        if globals is not None or template_class is not None or not isinstance(source, str):
            return super().from_string(source, globals, template_class)
        with self._lock:
            found = self._compiled.get(source)
        if found is None:
            found = super().from_string(source)
            with self._lock:
                if len(self._compiled) > 256:  # a school edits templates rarely; stay bounded anyway
                    self._compiled.clear()
                self._compiled[source] = found
        return found


_ENV = _Environment()


# --- the context --------------------------------------------------------------------------------


def _prepare(value: Any, path: str, typed: list[str] | None = None) -> Any:
    """Clean every string (docxtpl turns \\a into a paragraph break and drops \\x00) and give
    every mapping its path for error messages. ``typed`` collects each cleaned string with a
    ``{{``/``{%`` marker in it: braces a parent typed, which the check on the text allows."""
    if isinstance(value, str):
        return _clean(value, typed)
    if isinstance(value, Mapping):
        node = _Node()
        node.senforms_path = path
        for key, item in value.items():
            name = str(key)
            if isinstance(item, str):
                node[name] = _clean(item, typed)
            elif isinstance(item, (Mapping, list, tuple)):  # only a container needs its path
                node[name] = _prepare(item, f"{path}.{key}" if path else name, typed)
            else:
                node[name] = item
        return node
    if isinstance(value, (list, tuple)):
        return [_prepare(item, f"{path}[{i}]", typed) for i, item in enumerate(value)]
    return value


def _clean(text: str, typed: list[str] | None) -> str:
    """``clean_text``, with a quick way through for the usual value: one line and no control
    character (a printable string has neither), for which clean_text comes to ``strip()``."""
    cleaned = text.strip() if text.isprintable() else clean_text(text)
    if typed is not None and ("{" in cleaned or "}" in cleaned):
        typed.append(cleaned)
    return cleaned


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


# --- the template cache -----------------------------------------------------------------------
#
# A template is compiled once into what changes from letter to letter and what does not. What
# changes is the body (word/document.xml) and any header, footer or footnotes part, or core
# property, that has tags; each is turned into a Jinja template exactly as docxtpl would (its
# ``patch_xml`` clean-up, which joins tags that Word split across runs, then ``{%p %}`` and
# ``{%tr %}`` handling in the sandboxed environment). Everything else (the 800 KB of styles, the
# theme, the fonts) is kept as the compressed bytes the template holds and copied into every
# letter unchanged: deep-copying, re-serialising and re-compressing it was most of a letter's
# cost. The letter is then checked on the XML it was rendered to, never by opening it again.

_HEADER = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/header"
_FOOTER = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer"
_FOOTNOTES = "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"
_CORE = "application/vnd.openxmlformats-package.core-properties+xml"
# The core properties docxtpl renders, as python-docx names them, and their elements.
_PROPERTIES = {
    "author": "{http://purl.org/dc/elements/1.1/}creator",
    "comments": "{http://purl.org/dc/elements/1.1/}description",
    "identifier": "{http://purl.org/dc/elements/1.1/}identifier",
    "language": "{http://purl.org/dc/elements/1.1/}language",
    "subject": "{http://purl.org/dc/elements/1.1/}subject",
    "title": "{http://purl.org/dc/elements/1.1/}title",
}
_CREATED = "{http://purl.org/dc/terms/}created"
_MODIFIED = "{http://purl.org/dc/terms/}modified"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _property(tree: Any, element: str) -> Any:
    """The core property's element, added when the template has none (a new Word file has no title)."""
    found = tree.find(element)
    return found if found is not None else etree.SubElement(tree, element)


# A part with none of these is the same after rendering as before (no tag, nothing for
# docxtpl's post-processing of {_{ or of tabs and line breaks in values), so it is copied raw.
_CHANGES = re.compile(r"[{}\t\a\f\n]")
# The body is parsed strictly: a malformed result is an error, never silently repaired.
_BODY_PARSER = etree.XMLParser(resolve_entities=False)
# docxtpl's XML helpers (patch_xml, resolve_listing, fix_tables) use no state of the template.
_DOCXTPL = DocxTemplate(io.BytesIO())


@dataclass(frozen=True)
class _Part:
    """A part with tags: its Jinja template and the source it was compiled from."""

    name: str
    source: str
    template: Template


@dataclass(frozen=True)
class _Core:
    """The template's core properties part: its name, tree, the properties with tags, and its
    compressed bytes (written back unchanged when a letter changes nothing in it)."""

    name: str
    tree: Any
    templated: dict[str, Template]
    raw: Stored | None


@dataclass(frozen=True)
class _Compiled:
    members: tuple[Stored | zipfile.ZipInfo, ...]  # in the template's order: raw, or a part rendered
    body: _Part
    shell: Any  # the document element without its body
    body_index: int
    parts: dict[str, _Part]  # headers and footers with tags
    footnotes: dict[str, _Part]
    core: _Core | None  # core.xml (title, dates): rendered for every letter
    hdrftr: dict[str, str]  # relationship id -> part name, for the headers and footers
    static_texts: dict[str, list[str]]  # the text of each header and footer that has no tags
    static_markers: bool  # whether a header or footer without tags has a {{ or {% in its text
    infos: dict[str, zipfile.ZipInfo]  # the zip entry of each part that is rendered
    # Each header and footer with tags as last rendered: its text, its tree (parsed strictly,
    # read only) and its compressed bytes. The school's details come out the same in every
    # letter; the same text parses to the same tree, so it is parsed and written once.
    last: dict[str, tuple[str, Any, Stored]] = field(default_factory=dict)
    # The core properties part as written for each title and date (and any property with tags,
    # as rendered) lately asked for.
    core_last: dict[tuple[tuple[tuple[str, str], ...], date | None], Stored] = field(default_factory=dict)


@dataclass
class _Entry:
    key: tuple[int, int]
    data: bytes
    document: Any  # python-docx's Document, until compiled
    compiled: _Compiled | None = None


_CACHE: dict[Path, _Entry] = {}
_CACHE_LOCK = threading.Lock()
_COMPILE_LOCK = threading.Lock()


def _entry(template: Path, where: Where) -> _Entry:
    """The template opened once, and again only when the file changes (mtime or size)."""
    try:
        stat = template.stat()
        key = (stat.st_mtime_ns, stat.st_size)
        with _CACHE_LOCK:
            cached = _CACHE.get(template)
        if cached and cached.key == key:
            return cached
        data = template.read_bytes()
    except OSError as exc:
        raise TemplateError(f"{where} cannot be opened: {exc.strerror or exc}.") from None
    try:
        document = Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, XMLSyntaxError) as exc:
        raise TemplateError(f"{where} cannot be opened as a Word document ({exc}).") from None
    entry = _Entry(key, data, document)
    with _CACHE_LOCK:
        _CACHE[template] = entry
    return entry


def _compiled(entry: _Entry) -> _Compiled:
    """Compiled on first use; a template with a mistake is not kept, so it fails the same way
    every time until it is corrected."""
    found = entry.compiled
    if found is None:
        with _COMPILE_LOCK:  # once, even when two watchers' threads ask at the same moment
            found = entry.compiled
            if found is None:
                found = _compile(entry.data, entry.document)
                entry.compiled, entry.document = found, None
    return found


def _jinja(name: str, xml: str) -> _Part:
    """A part's XML as docxtpl prepares it, compiled; a syntax error carries the paragraphs
    around it (``docx_context``), as docxtpl's ``render_xml_part`` gives them."""
    source = re.sub(r"<w:p([ >])", r"\n<w:p\1", _DOCXTPL.patch_xml(xml))
    try:
        return _Part(name, source, _ENV.from_string(source))
    except TemplateSyntaxError as exc:
        _add_context(exc, source)
        raise


def _add_context(exc: Exception, source: str) -> None:
    lineno = getattr(exc, "lineno", None)
    if lineno is not None:
        first = max(lineno - 4, 0)
        exc.docx_context = [re.sub(r"<[^>]+>", "", x) for x in source.splitlines()[first : first + 7]]  # type: ignore[attr-defined]


def _member(partname: str) -> str:
    return partname.lstrip("/")


def _compile(data: bytes, document: Any) -> _Compiled:
    main = document.part
    body = document.element.body
    body_part = _jinja(_member(main.partname), etree.tostring(body, encoding="unicode"))
    shell = copy.deepcopy(document.element)
    body_index = list(document.element).index(body)
    shell.remove(shell[body_index])

    parts: dict[str, _Part] = {}
    static_texts: dict[str, list[str]] = {}
    hdrftr: dict[str, str] = {}
    for rel_id, rel in main.rels.items():
        if rel.is_external or rel.reltype not in (_HEADER, _FOOTER):
            continue
        part = rel.target_part
        name = _member(part.partname)
        hdrftr[rel_id] = name
        if not part.blob or name in parts or name in static_texts:
            continue
        xml = etree.tostring(parse_xml(part.blob), encoding="unicode")
        if _CHANGES.search(_DOCXTPL.patch_xml(xml)):
            parts[name] = _jinja(name, xml)
        else:
            static_texts[name] = _part_texts(parse_xml(part.blob))

    footnotes: dict[str, _Part] = {}
    core: _Core | None = None
    for part in main.package.iter_parts():
        name = _member(part.partname)
        if part.content_type == _FOOTNOTES:
            xml = part.blob.decode("utf-8") if isinstance(part.blob, bytes) else part.blob
            if _CHANGES.search(_DOCXTPL.patch_xml(xml)):
                footnotes[name] = _jinja(name, xml)
        elif part.content_type == _CORE:
            tree = etree.fromstring(part.blob, etree.XMLParser(resolve_entities=False))
            templated = {}
            for element_name in _PROPERTIES.values():
                element = tree.find(element_name)
                if element is not None and element.text and re.search(r"[{}]", element.text):
                    templated[element_name] = _ENV.from_string(element.text)
            # Kept whether or not it has tags: each letter's title and date are written into it.
            core = _Core(name, tree, templated, None)

    rendered = {body_part.name, *parts, *footnotes, *([core.name] if core else [])}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if missing := rendered - set(archive.namelist()):
            raise KeyError(f"the package has no part named {', '.join(sorted(missing))}")
        if core is not None:
            # Its compressed bytes, as the template holds them: written as they are when a
            # letter changes nothing in it.
            raw = raw_member(data, archive, archive.getinfo(core.name))
            core = _Core(core.name, core.tree, core.templated, raw)
        members = tuple(
            info if info.filename in rendered else raw_member(data, archive, info)
            for info in archive.infolist()
            if not info.is_dir()
        )
    return _Compiled(
        members,
        body_part,
        shell,
        body_index,
        parts,
        footnotes,
        core,
        hdrftr,
        static_texts,
        any(marker in text for texts in static_texts.values() for text in texts for marker in _MARKERS),
        {m.filename: m for m in members if isinstance(m, zipfile.ZipInfo)},
    )


def _render_part(part: _Part, context: Mapping[str, Any]) -> str:
    """docxtpl's ``render_xml_part`` on a template compiled once."""
    try:
        xml = part.template.render(context)
    except TemplateSyntaxError as exc:
        _add_context(exc, part.source)
        raise
    # re.sub(r"\n<w:p([ >])", r"<w:p\1") and docxtpl's {_{ clean-up, as plain replaces.
    xml = xml.replace("\n<w:p ", "<w:p ").replace("\n<w:p>", "<w:p>")
    if "{_" in xml or "_}" in xml:
        xml = xml.replace("{_{", "{{").replace("}_}", "}}").replace("{_%", "{%").replace("%_}", "%}")
    return _resolve_listing(xml)


_PARAGRAPH = re.compile(r"<w:p(?: [^>]*)?>.*?</w:p>", re.DOTALL)
_LISTING = re.compile(r"[\t\a\n\f]")


def _resolve_listing(xml: str) -> str:
    """docxtpl's ``resolve_listing`` (tabs, line breaks, new paragraphs and pages in values),
    run only on the paragraphs that have one of those characters: on any other paragraph it
    gives back the same text, and running it on all of them was a third of a letter's time.

    The paragraphs are the matches of ``_PARAGRAPH`` (from ``<w:p>`` or ``<w:p ...>`` to the
    next ``</w:p>``, one after another), found with ``str.find``: the lazy regular expression
    took longer than the rest of the letter's rendering."""
    hit = _LISTING.search(xml)
    if hit is None:
        return xml
    out: list[str] = []
    copied = pos = 0
    plain = attributed = -1  # the next of each kind of start tag, each found again only once passed
    while hit is not None:
        if plain != -2 and plain < pos:
            plain = xml.find("<w:p>", pos)
            plain = -2 if plain < 0 else plain  # -2: there is none after pos
        if attributed != -2 and attributed < pos:
            attributed = xml.find("<w:p ", pos)
            attributed = -2 if attributed < 0 else attributed
        if plain == -2 and attributed == -2:
            break
        start = attributed if plain == -2 else plain if attributed == -2 else min(plain, attributed)
        opened = xml.find(">", start + 4)
        end = xml.find("</w:p>", opened + 1) if opened >= 0 else -1
        if end < 0:
            break
        end += len("</w:p>")
        if hit.start() < start:  # outside any paragraph: left as it is
            hit = _LISTING.search(xml, start)
        if hit is not None and hit.start() < end:  # this paragraph has one
            out += [xml[copied:start], _DOCXTPL.resolve_listing(xml[start:end])]
            copied = end
            hit = _LISTING.search(xml, end)
        pos = end
    out.append(xml[copied:])
    return "".join(out)


_T, _TAB, _PTAB, _BR, _CR, _HYPHEN = (qn(f"w:{t}") for t in ("t", "tab", "ptab", "br", "cr", "noBreakHyphen"))
_R, _HYPERLINK, _BR_TYPE, _P = qn("w:r"), qn("w:hyperlink"), qn("w:type"), qn("w:p")


def _run_text(run: Any) -> str:
    """python-docx's ``Run.text``, without an XPath query per run."""
    out = []
    for e in run.iterchildren(_T, _TAB, _PTAB, _BR, _CR, _HYPHEN):
        tag = e.tag
        if tag == _T:
            out.append(e.text or "")
        elif tag == _BR:
            out.append("\n" if e.get(_BR_TYPE, "textWrapping") == "textWrapping" else "")
        else:
            out.append({_TAB: "\t", _PTAB: "\t", _CR: "\n", _HYPHEN: "-"}[tag])
    return "".join(out)


def _paragraph_text(p: Any) -> str:
    """python-docx's ``Paragraph.text``: its runs and its hyperlinks' runs, in order."""
    out = []
    for e in p.iterchildren(_R, _HYPERLINK):
        if e.tag == _R:
            out.append(_run_text(e))
        else:
            out.extend(_run_text(r) for r in e.iterchildren(_R))
    return "".join(out)


def _part_texts(root: Any) -> list[str]:
    """A header's or footer's text as ``_document_text`` reads it: its own paragraphs, and the
    paragraphs of each cell of its own tables joined by line breaks."""
    texts = [_paragraph_text(p) for p in root.iterchildren(qn("w:p"))]
    for table in root.iterchildren(qn("w:tbl")):
        for row in table.iterchildren(qn("w:tr")):
            for cell in row.iterchildren(qn("w:tc")):
                texts.append("\n".join(_paragraph_text(p) for p in cell.iterchildren(qn("w:p"))))
    return texts


_TBL, _TBL_GRID, _GRID_COL, _TR, _TC = (qn(f"w:{t}") for t in ("tbl", "tblGrid", "gridCol", "tr", "tc"))
_GRID_SPAN, _GRID_SPAN_TAG, _VAL = f"{qn('w:tcPr')}/{qn('w:gridSpan')}", qn("w:gridSpan"), qn("w:val")


def _tables_to_fix(body: Any) -> bool:
    """Whether docxtpl's ``fix_tables`` would change a table: a ``{%tc %}`` loop can leave a
    row with more cells, or all rows with fewer, than the table's grid has columns."""
    for table in body.iter(_TBL):
        grid = table.find(_TBL_GRID)
        if grid is None:
            return True  # fix_tables fails on it, as docxtpl would
        columns = len(grid.findall(_GRID_COL))
        # Without a gridSpan in the table (nested ones included) each cell spans one column,
        # and reading each cell's properties (most of this check's time) can be left out.
        spans = next(table.iter(_GRID_SPAN_TAG), None) is not None
        widest = spanned = 0
        for row in table.iter(_TR):
            cells = row.findall(_TC)
            widest = max(widest, len(cells))
            if not spans:
                continue
            try:
                spanned = max(spanned, sum(_span(cell) for cell in cells))
            except (TypeError, ValueError):
                return True
        if widest > columns or (spanned if spans else widest) < columns:
            return True
    return False


def _span(cell: Any) -> int:
    span = cell.find(_GRID_SPAN)
    return 1 if span is None else int(span.get(_VAL))


def _sections(body: Any) -> list[Any]:
    """Each section's properties in document order, as python-docx's ``Document.sections``."""
    found = []
    for child in body.iterchildren(qn("w:p"), qn("w:sectPr")):
        sect = child if child.tag == qn("w:sectPr") else child.find(f"{qn('w:pPr')}/{qn('w:sectPr')}")
        if sect is not None:
            found.append(sect)
    return found


def _parse(xml: str | bytes, parser: Any, where: Where) -> Any:
    try:
        return etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml, parser)
    except XMLSyntaxError as exc:
        raise TemplateError(f"{where} produced a document that Word could not open ({exc}).") from None


def _label(template: Path) -> str:
    shipped = shipped_letter(template.stem)
    if shipped is None or shipped.resolve() != template.resolve():
        return f"{template.name} (the school's copy, {template})"
    return f"{template.name} (the copy that comes with senforms)"


class _Where:
    """"The template <name> (whose copy)", worked out only when a message needs it: telling the
    school's copy from senforms' own resolves both paths, which every letter paid for although
    only an error uses it."""

    __slots__ = ("_template", "_text")

    def __init__(self, template: Path) -> None:
        self._template = template
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = f"The template {_label(self._template)}"
        return self._text

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


Where = _Where | str


# --- rendering ----------------------------------------------------------------------------------


def render_docx(
    template: Path, context: Mapping[str, Any], *, title: str | None = None, written: date | None = None
) -> bytes:
    """Fill in a letter template and return the .docx bytes, checked on the XML they hold.

    ``title`` and ``written`` go into the document's properties (Word's File > Info): the
    letter's own title ("Review of SEN support for Mr Daniel Hart") and the day it was written,
    not the template's title and the day the template was made."""
    # Made absolute, not resolved (resolving reads every folder on the way, on every letter):
    # the cache still sees a changed file, by its modification time and size.
    template = Path(template)
    if not template.is_absolute():
        template = template.absolute()
    where = _Where(template)
    entry = _entry(template, where)
    data = entry.data
    typed: list[str] = []
    prepared = _prepare(context, "", typed)
    try:
        compiled = _compiled(entry)
        body_xml = _render_part(compiled.body, prepared)
        rendered_parts = {name: _render_part(part, prepared) for name, part in compiled.parts.items()}
        rendered_notes = {name: _render_part(part, prepared) for name, part in compiled.footnotes.items()}
        properties = {element: t.render(prepared) for element, t in compiled.core.templated.items()} if compiled.core else {}
        if title is not None:
            properties[_PROPERTIES["title"]] = title
    except _UnknownName as exc:
        raise TemplateError(
            f"{where}: the template uses {{{{ {_as_written(data, str(exc))} }}}}, which senforms does not "
            f"provide; the names you can use are listed in {README_HINT}."
        ) from None
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{where}: {_syntax_problem(exc)}") from None
    except SecurityError as exc:
        raise TemplateError(f"{where}: the template asks for something senforms does not allow ({exc}).") from None
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, XMLSyntaxError) as exc:
        raise TemplateError(f"{where} cannot be opened as a Word document ({exc}).") from None
    except Exception as exc:
        # An edited template can fail in many small ways (a filter on the wrong kind of value,
        # a loop over a name that is not a list); the school needs the message, not a traceback.
        raise TemplateError(f"{where} could not be filled in: {exc}.") from None
    return _assemble(compiled, body_xml, rendered_parts, rendered_notes, properties, where, typed, written)


def _assemble(
    compiled: _Compiled,
    body_xml: str,
    rendered_parts: dict[str, str],
    rendered_notes: dict[str, str],
    properties: dict[str, str],
    where: Where,
    typed: list[str],
    written: date | None = None,
) -> bytes:
    """Parse what was rendered (strictly: it must be well-formed), check it, and zip it with
    the parts that never change."""
    body = _parse(body_xml, _BODY_PARSER, where)
    part_trees: dict[str, Any] = {}
    kept: dict[str, Stored] = {}
    for name, xml in rendered_parts.items():
        last = compiled.last.get(name)
        if last is not None and last[0] == xml:
            part_trees[name], kept[name] = last[1], last[2]
        else:
            part_trees[name] = _parse(xml, oxml_parser, where)
    if not _plainly_filled(compiled, body, body_xml, rendered_parts):
        _check_texts(_letter_texts(compiled, body, part_trees), where, None, typed)

    if _tables_to_fix(body):
        body = _DOCXTPL.fix_tables(body_xml)
    for number, element in enumerate(body.iter(_DOC_PR), start=1001):
        element.attrib["id"] = str(number)  # as docxtpl does: unique ids for pictures
    root = copy.deepcopy(compiled.shell)  # the document element alone: a small copy
    root.insert(compiled.body_index, body)
    new: dict[str, bytes | Stored] = {compiled.body.name: etree.tostring(root, encoding="UTF-8", standalone=True)}

    for name, tree in part_trees.items():
        if name in kept:
            new[name] = kept[name]
        else:
            member = stored(compiled.infos[name], data=etree.tostring(tree, encoding="UTF-8", standalone=True))
            compiled.last[name] = (rendered_parts[name], tree, member)
            new[name] = member
    for name, xml in rendered_notes.items():
        _parse(xml, etree.XMLParser(resolve_entities=False), where)
        new[name] = xml.encode("utf-8")
    if compiled.core is not None and compiled.core.raw is not None and not properties and written is None:
        new[compiled.core.name] = compiled.core.raw  # nothing to change: the template's own bytes
    elif compiled.core is not None and (found := compiled.core_last.get((tuple(properties.items()), written))):
        # The same title and date as a letter before it (a form's letters are written the same
        # day, each kind of letter with its own title): the same properties, the same bytes.
        new[compiled.core.name] = found
    elif compiled.core is not None:
        tree = copy.deepcopy(compiled.core.tree)
        for element, value in properties.items():
            if len(value) > 255:
                raise TemplateError(f"{where} could not be filled in: a document property is over 255 characters.")
            _property(tree, element).text = value
        if written is not None:
            # The day the letter was written (settings.today(), so --today is honoured), at
            # midnight UTC: Word shows it as the document's Created and Modified date.
            stamp = f"{written.isoformat()}T00:00:00Z"
            for element in (_CREATED, _MODIFIED):
                found = _property(tree, element)
                found.set(_XSI_TYPE, "dcterms:W3CDTF")
                found.text = stamp
        member = stored(compiled.infos[compiled.core.name], data=etree.tostring(tree, encoding="UTF-8", standalone=True))
        if len(compiled.core_last) >= 64:  # a title per letter and household, one day at a time: stay bounded
            compiled.core_last.clear()
        compiled.core_last[(tuple(properties.items()), written)] = member
        new[compiled.core.name] = member

    members = []
    for m in compiled.members:
        if isinstance(m, zipfile.ZipInfo):
            part = new[m.filename]
            m = part if isinstance(part, Stored) else stored(m, data=part)
        members.append(m)
    return write_zip(members)


_DOC_PR = f"{{{nsmap['wp']}}}docPr"
# A character reference to a brace (a value's braces are written as &#123; and &#125;; a
# template may write any form). Searched for apart from the braces themselves: a pattern
# starting "&#" is found by a fast scan, an alternation with [{}] is not (0.1 ms a letter).
_BRACE_REFERENCE = re.compile(r"&#(?:0*12[35]|[xX]0*7[bBdD]);")


def _has_brace(xml: str) -> bool:
    """Whether text parsed from this XML could hold a brace."""
    return "{" in xml or "}" in xml or _BRACE_REFERENCE.search(xml) is not None


def _plainly_filled(compiled: _Compiled, body: Any, body_xml: str, rendered_parts: dict[str, str]) -> bool:
    """Whether the letter passes ``_check_texts`` on sight: no brace anywhere in the rendered
    XML (so no text can hold a ``{{`` or ``{%``, whatever a parent typed), none in the text of
    a header or footer without tags, and a paragraph of the body with text in it. Otherwise
    the full check reads every paragraph's text."""
    if compiled.static_markers or _has_brace(body_xml):
        return False
    if any(_has_brace(xml) for xml in rendered_parts.values()):
        return False
    return any(_paragraph_text(p).strip() for p in body.iter(_P))


def _letter_texts(compiled: _Compiled, body: Any, part_trees: dict[str, Any]) -> list[str]:
    """The text _document_text reads: body, then each section's headers and footers in use."""
    texts = [_paragraph_text(p) for p in body.iter(_P)]
    for section in _sections(body):
        for reference, kind in (
            ("headerReference", "default"),
            ("footerReference", "default"),
            ("headerReference", "first"),
            ("footerReference", "first"),
        ):
            ref = section.find(f"{qn('w:' + reference)}[@{qn('w:type')}='{kind}']")
            found = None if ref is None else compiled.hdrftr.get(ref.get(qn("r:id"), ""))
            if found is not None and found in part_trees:
                texts += _part_texts(part_trees[found])
            elif found is not None:
                texts += compiled.static_texts.get(found, [])
    return texts


def _as_written(data: bytes, expression: str) -> str:
    """The name as the template writes it (``item.nickname`` inside a loop), else its full path."""
    name = expression.rsplit(".", 1)[-1]
    for tag in _tags(data):
        for found in re.findall(r"[A-Za-z_][\w.\[\]]*", tag):
            if found == name or found.endswith("." + name):
                return found
    return re.sub(r"\[\d+\]", "[…]", expression)


def _tags(data: bytes) -> list[str]:
    try:
        text = " ".join(_document_text(Document(io.BytesIO(data))))
    except Exception:
        return []
    return re.findall(r"\{[{%](.*?)[%}]\}", text)


def _syntax_problem(exc: TemplateSyntaxError) -> str:
    lines = [line.strip() for line in getattr(exc, "docx_context", [])]
    text = ""
    if lines and exc.lineno:
        here = (exc.lineno - 1) - max(exc.lineno - 4, 0)
        for index in [here, *range(here - 1, -1, -1), *range(here + 1, len(lines))]:
            if 0 <= index < len(lines) and lines[index]:
                text = lines[index]
                break
    place = f' in or near the paragraph "{text[:120]}"' if text else ""
    return (
        f"a {{{{ }}}} or {{% %}} tag is written wrongly{place} ({exc.message}). "
        "Every {{ needs a matching }}, every {% if %} an {% endif %}, every {% for %} an {% endfor %}."
    )


def _document_text(doc: Any) -> list[str]:
    """Text of every paragraph: body, tables (nested too), headers and footers."""
    texts = [Paragraph(p, doc.part).text for p in doc.element.body.iter(qn("w:p"))]
    for section in doc.sections:
        for part in (section.header, section.footer, section.first_page_header, section.first_page_footer):
            if not part.is_linked_to_previous:
                texts += [p.text for p in part.paragraphs]
                texts += [c.text for t in part.tables for r in t.rows for c in r.cells]
    return texts


def _check_output(result: bytes, where: Where, context: Any) -> None:
    """The whole package opened again with python-docx and checked: the slow, independent
    check, kept for tests that compare it with the check ``render_docx`` makes on its XML."""
    try:
        doc = Document(io.BytesIO(result))
    except Exception as exc:
        raise TemplateError(f"{where} produced a document that Word could not open ({exc}).") from None
    _check_texts(_document_text(doc), where, context)


def _check_texts(texts: list[str], where: Where, context: Any, strings: list[str] | None = None) -> None:
    """No empty letter, and no tag left in its text. ``strings``: the context's strings with a
    brace in them, when ``_prepare`` collected them (else they are read from ``context``)."""
    text = "\n".join(texts)
    if not text.strip():
        raise TemplateError(f"{where} produced an empty document.")
    if not any(marker in text for marker in _MARKERS):
        return  # nothing to look into (joined by line breaks, so no marker spans two lines)
    # Braces a parent typed are data; only braces left over from the template are a problem.
    found = _strings(context) if strings is None else strings
    typed = sorted({s for s in found if any(m in s for m in _MARKERS)}, key=len, reverse=True)
    for line in texts:
        rest = line
        for value in typed:
            rest = rest.replace(value, "")
        if any(marker in rest for marker in _MARKERS):
            raise TemplateError(
                f'{where}: a tag was left unfilled in the paragraph "{line.strip()[:120]}". '
                "Check that each tag is typed with both braces, like {{ pupil.known_as }}."
            )


# --- which template, and checking them all ---------------------------------------------------------


def letter_template(settings: Settings, name: str) -> Path:
    """The school's copy in the home folder if there is one, else the one senforms ships."""
    own = settings.templates / LETTERS_FOLDER / f"{name}.docx"
    if own.is_file():
        return own
    shipped = shipped_letter(name)
    if shipped is None:
        raise TemplateError(f"There is no letter template called {name}.docx.")
    return shipped
