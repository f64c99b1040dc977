"""Reading a filled PDF form: the AcroForm fields named by dotted path, whatever filled them.

Values are read from each field's /V, never from its appearance, so a form filled by software
that draws no appearance streams reads the same as one that does. What a PDF can be instead of
a senforms form (encrypted, XFA, flattened or printed, damaged) is told apart first, so the note
beside a refused file says what happened and what to do.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject

from senforms.errors import NotAFormError, SenformsError, UnknownVersionError, UnreadableFileError
from senforms.kinds import KINDS, FormKind, UnknownFormVersion
from senforms.layout import Field, Widget, fields
from senforms.read import Answer, RawForm
from senforms.wordml import FOOTER_MARK_RE, PLACEHOLDERS, PROP_KIND, PROP_VERSION

# Limits on what one file may cost. A senforms form is 2-4 pages and a few thousand objects.
MAX_PAGES = 60
MAX_OBJECTS = 200_000
MAX_FIELDS = 5_000

_ADVICE_PDF = (
    "Open the form PDF on your computer to check it, save it again (not 'Print to PDF'), and drop it in again. "
    "If that does not work, fill in the Word form instead."
)
_OFF = {"", "/Off", "Off", "/off", "off"}


class FlattenedFormError(NotAFormError):
    """A senforms PDF form whose fields are gone: printed to PDF, scanned or flattened."""

    advice = (
        "Fill in the form PDF itself (type in its boxes and save), or use the Word form. "
        "'Print to PDF', scanning and 'flatten' turn the boxes into plain text that senforms cannot read."
    )


class XfaFormError(NotAFormError):
    advice = "Use the senforms form PDF or the Word form (ask the SENCO for a blank one) and drop that in instead."


# --- opening -----------------------------------------------------------------------------------


def _truncated(data: bytes) -> bool:
    # Every complete PDF ends with %%EOF; a file still being copied, or cut off, does not.
    return b"%%EOF" not in data[-2048:]


def _open(data: bytes) -> PdfReader:
    if _truncated(data):
        raise UnreadableFileError(
            "The PDF file is incomplete: it was cut off or has not finished copying, so it cannot be read.",
            advice="Wait until the file has finished copying, or save the form again, and drop it in again.",
        )
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _unlock(reader)
        size = int(reader.trailer.get("/Size", 0) or 0)
        pages = len(reader.pages)
    except SenformsError:
        raise
    except FileNotDecryptedError as exc:
        raise UnreadableFileError("The PDF file is protected by a password, so senforms cannot open it.") from exc
    except Exception as exc:  # pypdf raises many types (KeyError, ValueError...) on a damaged file
        raise _damaged() from exc
    if pages > MAX_PAGES or size > MAX_OBJECTS:
        raise NotAFormError(
            f"This PDF is far larger than a senforms form ({pages} pages), so it was not read as one.",
        )
    return reader


_UNLOCK_ADVICE = "Open it, save a copy without the password or protection, and drop that in again."


def _unlock(reader: PdfReader) -> None:
    """Many PDFs are 'encrypted' only to restrict editing, with an empty password to open them."""
    try:
        opened = bool(reader.decrypt(""))
    except DependencyError as exc:
        # AES needs the optional 'cryptography' package, which pypdf does not require.
        raise UnreadableFileError(
            "The PDF file is encrypted (protected), and this installation of senforms cannot open "
            "that kind of protection.",
            advice=_UNLOCK_ADVICE + " (Whoever looks after senforms can install the 'cryptography' package.)",
        ) from exc
    except (PdfReadError, PyPdfError, NotImplementedError, ValueError):
        opened = False
    if not opened:
        raise UnreadableFileError(
            "The PDF file is protected by a password, so senforms cannot open it.", advice=_UNLOCK_ADVICE
        )


def _damaged() -> UnreadableFileError:
    return UnreadableFileError("The PDF file is damaged, so it cannot be read.", advice=_ADVICE_PDF)


# --- what the file is --------------------------------------------------------------------------


def _acroform(reader: PdfReader) -> DictionaryObject | None:
    form = reader.trailer["/Root"].get("/AcroForm")  # type: ignore[attr-defined]
    form = form.get_object() if form is not None else None
    return form if isinstance(form, DictionaryObject) else None


def _refuse_xfa(reader: PdfReader) -> None:
    root = reader.trailer["/Root"]
    form = _acroform(reader)
    dynamic = bool(root.get("/NeedsRendering", False))  # type: ignore[attr-defined]
    if dynamic or (form is not None and "/XFA" in form):
        raise XfaFormError(
            "This PDF is an Adobe XFA ('LiveCycle') form"
            + (", which draws itself only in Adobe Reader" if dynamic else "")
            + ". senforms reads its own PDF forms and Word forms, not XFA forms."
        )


def _marks(reader: PdfReader) -> tuple[str, str] | None:
    """The kind and version: from the document information, else from the footer text."""
    info: Any = reader.metadata or {}
    kind = info.get(f"/{PROP_KIND}")
    if kind:
        return str(kind).strip().lower(), str(info.get(f"/{PROP_VERSION}", "")).strip()
    for key in ("/Subject", "/Keywords"):
        if (text := info.get(key)) and (m := FOOTER_MARK_RE.search(str(text))):
            return m[1].lower(), m[2]
    # Some tools rewrite the document information; the footer drawn on each page survives.
    for index in {0, len(reader.pages) - 1}:
        try:
            text = reader.pages[index].extract_text()
        except Exception:  # text extraction on a damaged page is not worth failing for
            continue
        if m := FOOTER_MARK_RE.search(" ".join(text.split())):
            return m[1].lower(), m[2]
    return None


def _kind(reader: PdfReader) -> tuple[FormKind, int]:
    found = _marks(reader)
    if found is None:
        raise NotAFormError("This PDF is not a senforms form (it has none of the marks a senforms form carries).")
    slug, version_text = found
    kind = KINDS.get(slug)
    if kind is None:
        raise UnknownVersionError(f"This is a senforms form of a kind this installation does not know ({slug!r}).")
    version = int(version_text) if version_text.isdigit() else 0
    try:
        # A form printed under an earlier version is read with that version's layout and upgraded.
        return kind.at_version(version), version
    except UnknownFormVersion:
        known = ", ".join(str(v) for v in kind.versions)
        raise UnknownVersionError(
            f"This is version {version} of the {kind.title}; this installation reads versions {known}."
        ) from None


# --- the fields --------------------------------------------------------------------------------


def _terminal_fields(form: DictionaryObject) -> Iterator[tuple[str, DictionaryObject]]:
    """Every field with its fully qualified name. Walked by hand rather than with
    ``get_fields`` so that a loop in /Kids or a huge tree stops here, not in a recursion."""
    stack: list[tuple[str, Any]] = [("", ref) for ref in reversed(_array(form.get("/Fields")))]
    seen: set[int] = set()
    while stack:
        prefix, ref = stack.pop()
        key = id(ref) if getattr(ref, "idnum", None) is None else ref.idnum
        if key in seen or len(seen) > MAX_FIELDS:
            continue
        seen.add(key)
        node = ref.get_object()
        if not isinstance(node, DictionaryObject):
            continue
        name = str(node.get("/T", ""))
        full = f"{prefix}.{name}" if prefix and name else prefix or name
        kids = [k for k in _array(node.get("/Kids")) if "/T" in k.get_object()]
        if kids:
            stack += [(full, k) for k in reversed(kids)]
        elif full:
            yield full, node


def _array(value: Any) -> list[Any]:
    value = value.get_object() if value is not None else None
    return list(value) if isinstance(value, ArrayObject) else []


def _inherited(node: DictionaryObject, key: str) -> Any:
    for _ in range(32):  # a /Parent chain is short; a loop in one must not hang the reader
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        if parent is None:
            return None
        node = parent.get_object()
    return None


def _ticked(node: DictionaryObject) -> bool:
    """The field's value decides: any state other than Off is ticked (other software uses /On,
    /1 or its own names for /Yes), and Off is unticked whatever an old appearance state says,
    since a filler may clear /V and leave /AS as it was."""
    value = _inherited(node, "/V")
    if value is not None:
        return str(value) not in _OFF
    # No value at all: some software sets only the widget's appearance state.
    widgets = [k.get_object() for k in _array(node.get("/Kids"))] or [node]
    return any(str(w.get("/AS", "/Off")) not in _OFF for w in widgets)


def _choice(node: DictionaryObject, spec: Field, value: Any) -> str:
    """A choice given as its export value or as the words shown; validation checks it."""
    if isinstance(value, ArrayObject):
        value = value[0] if value else ""
    text = str(value or "").strip()
    if text.casefold() in PLACEHOLDERS:
        return ""  # "Choose one" (its own export value) or "" (forms printed by senforms 0.1.0)
    for stored, shown in spec.choices:
        if text.casefold() in (stored.casefold(), shown.casefold()):
            return stored
    for option in _array(_inherited(node, "/Opt")):
        pair = _array(option)
        if len(pair) == 2 and text == str(pair[1]).strip():  # shown words of an option we did not write
            return str(pair[0]).strip()
    return text


def _answer(node: DictionaryObject, spec: Field) -> Answer:
    if spec.widget is Widget.check:
        return _ticked(node)
    value = _inherited(node, "/V")
    if spec.widget is Widget.choice:
        return _choice(node, spec, value)
    if value is None:
        return ""
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _values(reader: PdfReader, kind: FormKind) -> tuple[dict[str, Answer], int]:
    form = _acroform(reader)
    specs = fields(kind)
    values: dict[str, Answer] = {}
    count = 0
    for name, node in _terminal_fields(form) if form is not None else ():
        count += 1
        if name in specs:
            values[name] = _answer(node, specs[name])
    return values, count


def read_pdf(data: bytes) -> RawForm:
    """Read a filled senforms PDF form into raw answers. Raises a ``SenformsError`` on any problem."""
    reader = _open(data)
    try:
        _refuse_xfa(reader)
        kind, version = _kind(reader)
        values, count = _values(reader, kind)
    except SenformsError:
        raise
    except RecursionError as exc:
        raise _damaged() from exc
    except Exception as exc:  # see _open: a damaged object can surface as almost any error
        raise _damaged() from exc
    if not values:
        what = "has no answer boxes left" if count == 0 else "has none of its answer boxes left"
        raise FlattenedFormError(
            f"This is a {kind.title} PDF, but it {what}: it was printed to PDF, scanned or flattened, "
            "so what was written in it cannot be read."
        )
    return RawForm(kind=kind, version=version, values=values, method="pdf")


__all__ = ["FlattenedFormError", "XfaFormError", "read_pdf"]
