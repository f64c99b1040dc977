"""Reading a form file into raw answers: ``read_form(data)`` for Word or PDF alike.

Reading only finds what was written in each box; ``validate`` decides whether it is right.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from senforms.errors import FormInvalidError, Problem, UnreadableFileError, UnsupportedFileError
from senforms.kinds import FormKind

if TYPE_CHECKING:
    from senforms.layout import Field, Grid

Answer = str | bool


@dataclass
class RawForm:
    """What was written on a form, before validation."""

    kind: FormKind
    version: int
    values: dict[str, Answer]
    method: str  # "tags", "labels" (a word processor dropped the tags) or "pdf"
    warnings: list[str] = field(default_factory=list)


# --- what reading itself finds wrong ----------------------------------------------------------
# Reading finds a few things that validation cannot see, because they are lost once the form is a
# dict of answers: a box present twice with two answers, a row added beyond the form's rows, a
# word in a tick box's place. They are problems named by the printed label, like validation's.


def overflow_problem(grid: Grid) -> Problem:
    """A grid with more rows (or columns) filled in than the form has."""
    if grid.orientation == "columns":
        room = f"{grid.count} columns ({grid.item_label} 1 to {grid.count})"
        added = "a column was added to this table"
    else:
        heading = grid.heading.lower()
        room = f"{grid.count} {heading}" if " " not in heading and heading.endswith("s") else f"{grid.count} rows"
        added = "a row was added to this table"
    return Problem(
        label=grid.heading,
        message=f"the form has room for {room}, but {added} and filled in. Put what it says in the form's own "
        f"{'columns' if grid.orientation == 'columns' else 'rows'} (or on the next form) and delete the added one",
        path=grid.path,
    )


def duplicate_problem(spec: Field, answers: list[Answer]) -> Problem:
    """A box that appears twice (copied in Word with its tag) with different answers."""
    shown = " and ".join(repr(a) if isinstance(a, str) else ("ticked" if a else "not ticked") for a in answers)
    return Problem(
        label=spec.label,
        message=f"this box appears more than once on the form, with different answers ({shown}); keep one",
        path=spec.path,
    )


def refuse(kind: FormKind, values: dict[str, Answer], problems: list[Problem]) -> NoReturn:
    """Raise ``FormInvalidError`` for problems found in reading, listed with every problem
    validation finds in the other answers, so the form is put right in one go."""
    from senforms.layout import fields
    from senforms.validate import validate_values  # validate imports this module

    own = {p.path for p in problems}
    others: list[Problem] = []
    try:
        validate_values(kind, {p: v for p, v in values.items() if p not in own})
    except FormInvalidError as exc:
        others = [p for p in exc.problems if p.path not in own]
    order = list(fields(kind))

    def position(problem: Problem) -> int:
        prefix = problem.path + "."
        return next((i for i, path in enumerate(order) if path == problem.path or path.startswith(prefix)), len(order))

    raise FormInvalidError(sorted(problems + others, key=position), kind_title=kind.title)


# Limits on what a single file may cost to open. A real form is well under a megabyte.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
MAX_RATIO = 200

_REFUSED = {
    ".doc": "This is an old-style Word file (.doc).",
    ".docm": "This Word file contains macros (.docm), which senforms does not open.",
    ".dotx": "This is a Word template (.dotx), not a filled-in form.",
    ".odt": "This is an OpenDocument file (.odt).",
    ".rtf": "This is a Rich Text file (.rtf).",
    ".txt": "This is a plain text file.",
    ".jpg": "This is a picture, not a form.",
    ".jpeg": "This is a picture, not a form.",
    ".png": "This is a picture, not a form.",
    ".heic": "This is a picture, not a form.",
    ".tif": "This is a scanned picture, not a form.",
    ".tiff": "This is a scanned picture, not a form.",
}


def sniff(data: bytes) -> str:
    """What the bytes are, whatever the file is called: "docx", "pdf" or "other"."""
    if data[:4] == b"PK\x03\x04":
        return "docx"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return "other"


def read_form(data: bytes, *, name: str = "", labels: dict[str, dict[str, str]] | None = None) -> RawForm:
    """Read a Word or PDF form. ``labels`` adds, per form kind, a school's own wording of labels
    (folded) to paths."""
    suffix = Path(name).suffix.lower()
    if suffix in _REFUSED:
        raise UnsupportedFileError(f"{_REFUSED[suffix]} senforms reads Word (.docx) and PDF forms only.")
    if not data:
        raise UnreadableFileError(
            "The file is empty (0 bytes). It may not have finished copying.",
            advice="Copy the form into the inbox again. If it is empty on your computer too, it was never "
            "saved: fill in the form again.",
        )
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFileError(
            f"The file is too large ({len(data) // (1024 * 1024)} MB); a form is usually well under 1 MB.",
            advice="Remove any large pictures pasted into the form, save it, and drop it in again.",
        )
    key = _key(data)
    kept = _recall(key, data, labels)
    if kept is not None:
        return kept
    found = sniff(data)
    if found == "docx":
        from senforms.read.word import read_word

        raw = read_word(data, labels=labels)
    elif found == "pdf":
        from senforms.read.pdf import read_pdf

        raw = read_pdf(data)
    else:
        raise UnsupportedFileError("This file is not a Word (.docx) or PDF file, whatever its name says.")
    _keep(key, data, labels, raw)
    return raw


# --- the forms read last ------------------------------------------------------------------------
# A batch reads every file twice: once to put the files in the cycle's order (``cycle_order``)
# and once to process each. The forms read last are kept with their bytes, so reading the same
# bytes again (with the same labels) is a copy of the first reading rather than a second one.
# Only forms read without a problem are kept: a file that is refused is read, and refused, afresh
# every time. Looked up by length and CRC-32, and kept only when the bytes are exactly equal,
# so a file made to share a CRC with another is read as itself. Bounded in bytes, so a watcher
# running for weeks holds 16 MB of them at most.

_KEEP_BYTES = 16 * 1024 * 1024
_KEEP_FILE_BYTES = 1024 * 1024
_Labels = dict[str, dict[str, str]]
_kept: OrderedDict[tuple[int, int], tuple[bytes, _Labels, RawForm]] = OrderedDict()
_kept_bytes = 0
_kept_lock = threading.Lock()


def _copy(raw: RawForm) -> RawForm:
    """A reading no caller shares with another: its answers and warnings are its own lists."""
    return RawForm(kind=raw.kind, version=raw.version, values=dict(raw.values), method=raw.method, warnings=list(raw.warnings))


def _key(data: bytes) -> tuple[int, int] | None:
    """Where a file's reading is kept: None for a file too large to keep."""
    return (len(data), zlib.crc32(data)) if len(data) <= _KEEP_FILE_BYTES else None


def _recall(key: tuple[int, int] | None, data: bytes, labels: _Labels | None) -> RawForm | None:
    if key is None:
        return None
    with _kept_lock:
        found = _kept.get(key)
        if found is None or found[0] != data or found[1] != (labels or {}):
            return None
        _kept.move_to_end(key)
        return _copy(found[2])


def _keep(key: tuple[int, int] | None, data: bytes, labels: _Labels | None, raw: RawForm) -> None:
    global _kept_bytes
    if key is None:
        return
    entry = (data, {kind: dict(words) for kind, words in (labels or {}).items()}, _copy(raw))
    with _kept_lock:
        old = _kept.pop(key, None)
        if old is not None:
            _kept_bytes -= len(old[0])
        _kept[key] = entry
        _kept_bytes += len(data)
        while _kept_bytes > _KEEP_BYTES:
            _, (dropped, _, _) = _kept.popitem(last=False)
            _kept_bytes -= len(dropped)


def forget_read_forms() -> None:
    """Drop the forms kept from the last readings (tests, and a watcher after a batch)."""
    global _kept_bytes
    with _kept_lock:
        _kept.clear()
        _kept_bytes = 0
