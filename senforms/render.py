"""Letters and documents from docxtpl templates that a school may restyle and reword.

A template is a Word document with Jinja tags (``{{ pupil.known_as }}``, ``{%p if ... %}``,
``{%tr for ... %}``). The names a template may use are listed in ``templates/letters/README.md``;
``documents.sample_context`` builds a context of exactly that shape from sample forms.

Safety: the values come from forms that parents and staff typed, so they are data and never
template code. Jinja does not re-read the text of a value, autoescape keeps ``& < >`` from
breaking the XML, the sandbox keeps an edited template from reaching Python internals, and
braces in values are written as character references so docxtpl's own ``{_{`` post-processing
cannot touch them. Every document written is opened again before it is handed back.
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
from dataclasses import dataclass
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, ClassVar

from docx import Document
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph
from docxtpl import DocxTemplate
from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing
from lxml.etree import XMLSyntaxError
from markupsafe import Markup, escape

from senforms.config import Settings
from senforms.errors import TemplateError
from senforms.values import clean_text

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
    text = str(value) if isinstance(value, Markup) else str(escape(str(value)))
    return Markup(text.replace("{", "&#123;").replace("}", "&#125;").replace("%", "&#37;"))


class _Environment(SandboxedEnvironment):
    """Compiles each template part once: docxtpl asks for ``from_string`` on every render, and
    compiling a letter's XML is most of its cost."""

    def __init__(self) -> None:
        super().__init__(autoescape=True, undefined=_Undefined, finalize=_finalize)
        self._compiled: dict[str, Template] = {}
        self._lock = threading.Lock()

    def from_string(self, source: Any, globals: Any = None, template_class: Any = None) -> Template:  # type: ignore[override]
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


def _prepare(value: Any, path: str) -> Any:
    """Clean every string (docxtpl turns \\a into a paragraph break and drops \\x00) and give
    every mapping its path for error messages."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        node = _Node()
        node.senforms_path = path
        for key, item in value.items():
            node[str(key)] = _prepare(item, f"{path}.{key}" if path else str(key))
        return node
    if isinstance(value, (list, tuple)):
        return [_prepare(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


# --- the template cache -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    key: tuple[int, int]
    data: bytes
    # Never rendered itself: docxtpl changes the document it renders, so each render works on a
    # deep copy, which costs less than opening the .docx again.
    document: Any


_CACHE: dict[Path, _Parsed] = {}
_CACHE_LOCK = threading.Lock()


def _parsed(template: Path, where: str) -> _Parsed:
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
    parsed = _Parsed(key, data, document)
    with _CACHE_LOCK:
        _CACHE[template] = parsed
    return parsed


class _Template(DocxTemplate):
    """docxtpl's clean-up of the XML (joining tags that Word split across runs) depends only on
    the XML, so it is done once per template part rather than on every render."""

    _patched: ClassVar[dict[str, str]] = {}

    def patch_xml(self, src_xml: str) -> str:
        found = self._patched.get(src_xml)
        if found is None:
            found = super().patch_xml(src_xml)
            if len(self._patched) > 256:
                self._patched.clear()
            self._patched[src_xml] = found
        return found


def _label(template: Path) -> str:
    shipped = shipped_letter(template.stem)
    if shipped is None or shipped.resolve() != template.resolve():
        return f"{template.name} (the school's copy, {template})"
    return f"{template.name} (the copy that comes with senforms)"


# --- rendering ----------------------------------------------------------------------------------


def render_docx(template: Path, context: Mapping[str, Any]) -> bytes:
    """Fill in a letter template and return the .docx bytes, checked by opening them again."""
    template = Path(template).resolve()
    where = f"The template {_label(template)}"
    parsed = _parsed(template, where)
    data = parsed.data
    prepared = _prepare(context, "")
    try:
        doc = _Template(io.BytesIO(data))
        doc.docx = copy.deepcopy(parsed.document)
        doc.render(prepared, _ENV)
        out = io.BytesIO()
        doc.save(out)
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
    result = out.getvalue()
    _check_output(result, where, prepared)
    return result


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


def _check_output(result: bytes, where: str, context: Any) -> None:
    try:
        doc = Document(io.BytesIO(result))
    except Exception as exc:
        raise TemplateError(f"{where} produced a document that Word could not open ({exc}).") from None
    texts = _document_text(doc)
    text = "\n".join(texts)
    if not text.strip():
        raise TemplateError(f"{where} produced an empty document.")
    # Braces a parent typed are data; only braces left over from the template are a problem.
    typed = sorted({s for s in _strings(context) if any(m in s for m in _MARKERS)}, key=len, reverse=True)
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
