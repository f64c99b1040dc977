"""Reading a form file into raw answers: ``read_form(data)`` for Word or PDF alike.

Reading only finds what was written in each box; ``validate`` decides whether it is right.
"""

from __future__ import annotations

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
    found = sniff(data)
    if found == "docx":
        from senforms.read.word import read_word

        return read_word(data, labels=labels)
    if found == "pdf":
        from senforms.read.pdf import read_pdf

        return read_pdf(data)
    raise UnsupportedFileError("This file is not a Word (.docx) or PDF file, whatever its name says.")
