"""How a form kind's fields are laid out on paper, derived from its model alone.

The Word form, the PDF form and the label reader all walk the same ``Block`` list, so a kind's
layout is never written down twice. A block is either a ``Section`` (rows of label and answer) or
a ``Grid`` (pre-drawn numbered rows, or columns, of repeated items such as outcomes or parents).
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum
from functools import cache
from typing import Any, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from senforms.kinds import FormKind
from senforms.values import Choice, need_codes, parse_need_code


class Widget(StrEnum):
    text = "text"
    lines = "lines"
    date = "date"
    choice = "choice"
    check = "check"


@dataclass(frozen=True)
class Field:
    path: str  # dotted path in the extracted JSON: "pupil.upn", "outcomes.0.description"
    label: str  # the label printed on the form, unique within it
    widget: Widget
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (stored value, words shown)
    help: str = ""
    lines: int = 1


@dataclass(frozen=True)
class Section:
    heading: str
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class Grid:
    """Repeated items. ``rows``: one numbered row per item, one column per field (outcomes).
    ``columns``: one column per item, one row per field (parents or carers)."""

    heading: str
    path: str
    item_label: str
    count: int
    orientation: str  # "rows" | "columns"
    columns: tuple[Field, ...]  # the item's fields, with the path of item 0

    def field(self, index: int, column: Field) -> Field:
        name = column.path.rsplit(".", 1)[1]
        path = f"{self.path}.{index}.{name}"
        if self.orientation == "rows":
            label = f"{self.heading}, row {index + 1}, {column.label}"
        else:
            label = f"{self.item_label} {index + 1}, {column.label}"
        return Field(path, label, column.widget, column.required, column.choices, column.help, column.lines)

    def fields(self) -> list[Field]:
        return [self.field(i, c) for i in range(self.count) for c in self.columns]


Block = Section | Grid


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _unwrap(annotation: Any) -> Any:
    """The type inside ``X | None`` and ``Annotated[X, ...]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        else:
            return annotation


def _is_need_code(info: FieldInfo) -> bool:
    def validators(annotation: Any) -> list[Any]:
        found = list(typing.get_args(annotation)[1:]) if typing.get_origin(annotation) is typing.Annotated else []
        return found + [v for a in typing.get_args(annotation) for v in validators(a)]

    metadata = list(info.metadata) + validators(info.annotation)
    return any(getattr(m, "func", None) is parse_need_code for m in metadata)


def _leaf(path: str, info: FieldInfo) -> Field:
    extra = _extra(info)
    kind = _unwrap(info.annotation)
    choices: tuple[tuple[str, str], ...] = ()
    lines = int(extra.get("lines", 1) or 1)
    if extra.get("lines"):
        widget = Widget.lines
    elif kind is bool:
        widget = Widget.check
    elif kind is date:
        widget = Widget.date
    elif isinstance(kind, type) and issubclass(kind, Enum):
        widget = Widget.choice
        choices = tuple((m.value, m.label if isinstance(m, Choice) else str(m.value)) for m in kind)
    elif _is_need_code(info):
        widget = Widget.choice
        choices = tuple((code, f"{code} - {text}") for code, text in need_codes().items())
    else:
        widget = Widget.text
    return Field(path, str(info.title), widget, info.is_required(), choices, str(extra.get("help", "")), lines)


def _walk(model: type[BaseModel], prefix: str, heading: str) -> list[Block]:
    blocks: list[Block] = []
    current: list[Field] = []
    current_heading = heading

    def close() -> None:
        nonlocal current
        if current:
            blocks.append(Section(current_heading, tuple(current)))
        current = []

    for name, info in model.model_fields.items():
        extra = _extra(info)
        path = f"{prefix}{name}"
        inner = _unwrap(info.annotation)
        if typing.get_origin(inner) is list:
            close()
            item = typing.get_args(inner)[0]
            columns = tuple(_leaf(f"{path}.0.{n}", i) for n, i in item.model_fields.items())
            blocks.append(
                Grid(str(info.title), path, str(info.title), int(extra["rows"]), extra.get("layout", "rows"), columns)
            )
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            close()
            blocks += _walk(inner, f"{path}.", str(info.title))
            current_heading = heading
        else:
            section = extra.get("section", current_heading)
            if section != current_heading:
                close()
                current_heading = section
            current.append(_leaf(path, info))
    close()
    return blocks


@cache
def blocks(kind: FormKind) -> tuple[Block, ...]:
    return tuple(_walk(kind.model, "", kind.title))


@cache
def fields(kind: FormKind) -> dict[str, Field]:
    """Every answer box on the form, by dotted path, in the order printed."""
    found: dict[str, Field] = {}
    for block in blocks(kind):
        for f in block.fields if isinstance(block, Section) else block.fields():
            found[f.path] = f
    return found


def fold_label(text: str) -> str:
    """A label as compared when reading: case, punctuation, required marks and spacing ignored."""
    return re.sub(r"[^a-z0-9£]+", " ", text.casefold().replace("&", "and")).strip()
