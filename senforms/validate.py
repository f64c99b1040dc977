"""From raw answers to a validated model, with every problem named by the label on the form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from senforms.errors import FormInvalidError, Problem
from senforms.kinds import KINDS, FormKind, Pupil
from senforms.layout import Grid, blocks, fields
from senforms.read import Answer, RawForm
from senforms.values import upn_warnings

# pydantic's own words, in words office staff use.
_MESSAGES = {
    "missing": "this must be filled in",
    "int_parsing": "this must be a whole number",
    "int_type": "this must be a whole number",
    "greater_than_equal": "this number is too small",
    "less_than_equal": "this number is too large",
    "too_short": "at least one row must be filled in",
    "too_long": "there are more rows than the form allows",
    "bool_parsing": "tick the box or leave it empty",
    "date_from_datetime_parsing": "this is not a date senforms can read; write it like 12/03/2026",
    "decimal_parsing": "this is not an amount; write it like 12.50",
}


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """``{"a.0.b": 1}`` to ``{"a": {"0": {"b": 1}}}``; lists are made later, in ``_lists``."""
    tree: dict[str, Any] = {}
    for path, value in values.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _blank(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str) and not value.strip())


def _lists(kind: FormKind, tree: dict[str, Any]) -> dict[tuple[str, int], int]:
    """Turn each grid's numbered rows into a list, dropping empty rows. Returns where each list
    item came from on the form, so a problem in item 0 can name row 3 if rows 1 and 2 were empty."""
    rows_of: dict[tuple[str, int], int] = {}
    for grid in (b for b in blocks(kind) if isinstance(b, Grid)):
        *parents, name = grid.path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        numbered = node.get(name, {})
        items: list[dict[str, Any]] = []
        for index in range(grid.count):
            item = numbered.get(str(index), {})
            if any(not _blank(v) for v in item.values()):
                rows_of[(grid.path, len(items))] = index
                items.append({k: v for k, v in item.items() if not _blank(v) or v is False})
        node[name] = items
    return rows_of


def _drop_blanks(tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out[key] = _drop_blanks(value)
        elif isinstance(value, list):
            out[key] = [_drop_blanks(v) if isinstance(v, dict) else v for v in value]
        elif isinstance(value, bool) or not _blank(value):
            out[key] = value
    return out


def _problem(kind: FormKind, error: Any, rows_of: dict[tuple[str, int], int]) -> Problem:
    loc = [str(p) for p in error["loc"]]
    if (ctx := error.get("ctx")) and "field" in ctx:
        loc = loc + str(ctx["field"]).split(".")
    # Map list positions back to the numbered rows printed on the form.
    for i in range(1, len(loc)):
        if loc[i].isdigit():
            loc[i] = str(rows_of.get((".".join(loc[:i]), int(loc[i])), int(loc[i])))
    path = ".".join(loc)
    specs = fields(kind)
    if path in specs:
        label = specs[path].label
    else:
        # A whole list (no rows filled) or a whole section: name its heading.
        heading = next((b.heading for b in blocks(kind) if isinstance(b, Grid) and b.path == path), None)
        label = heading or path.replace("_", " ").replace(".", ", ").capitalize() or kind.title
    message = error["msg"] if error["type"] == "senforms" else _MESSAGES.get(error["type"], _clean(error["msg"]))
    if error["type"] == "enum":
        choices = specs[path].choices if path in specs else ()
        given = error.get("input")
        message = f"{given!r} is not one of the choices; choose " + " or ".join(repr(c[1]) for c in choices)
    return Problem(label=label, message=message, path=path)


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validate(raw: RawForm) -> tuple[BaseModel, list[str]]:
    """The validated model of a form, and any warnings. Raises ``FormInvalidError`` listing
    every problem, each named by the label printed on the form."""
    return validate_values(raw.kind, raw.values, raw.warnings)


def validate_values(
    kind: FormKind, values: dict[str, Answer], warnings: list[str] | None = None
) -> tuple[BaseModel, list[str]]:
    tree = nest(values)
    rows_of = _lists(kind, tree)
    tree = _drop_blanks(tree)
    try:
        model = kind.model.model_validate(tree)
    except ValidationError as exc:
        problems = [_problem(kind, e, rows_of) for e in exc.errors(include_url=False)]
        order = list(fields(kind))
        problems.sort(key=lambda p: order.index(p.path) if p.path in order else len(order))
        raise FormInvalidError(problems, kind_title=kind.title) from None
    if kind.version != KINDS[kind.slug].version:
        # Printed under an earlier version: checked against that version's labels above, and now
        # brought up to the current one, so the rest of senforms sees one model per kind.
        current = KINDS[kind.slug]
        try:
            model = kind.upgrade(model.model_dump(mode="json"), kind.version)
        except ValidationError as exc:
            problems = [_problem(current, e, {}) for e in exc.errors(include_url=False)]
            raise FormInvalidError(problems, kind_title=kind.title) from None
    found = list(warnings or [])
    pupil = getattr(model, "pupil", None)
    if isinstance(pupil, Pupil):
        found += upn_warnings(pupil.upn)
    return model, found
