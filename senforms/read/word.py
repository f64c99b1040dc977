"""Reading a Word form: by content-control tags, or by labels and row positions when a word
processor (LibreOffice 7.4) dropped the tags on save."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from functools import cache, lru_cache

from lxml import etree

from senforms.errors import NotAFormError, Problem, UnknownVersionError, UnreadableFileError
from senforms.kinds import KINDS, FormKind, UnknownFormVersion
from senforms.layout import Field, Grid, Section, Widget, blocks, fields, fold_label
from senforms.read import MAX_RATIO, MAX_UNPACKED_BYTES, Answer, RawForm, duplicate_problem, overflow_problem, refuse
from senforms.values import parse_tick_word
from senforms.wordml import (
    CHECKED_GLYPHS,
    CUSTOM_NS,
    FOOTER_MARK_RE,
    MC_NS,
    PLACEHOLDERS,
    PROP_KIND,
    PROP_VERSION,
    UNCHECKED,
    w,
    w14,
)

# A hostile file must not make the parser fetch, expand or recurse without bound.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)

# Tag names in Clark notation, built once: reading a form compares tens of thousands of tags, and
# building each name per comparison (w("t")) was a fifth of the reading time.
_BODY, _P, _R, _T, _TC, _TR, _TBL = w("body"), w("p"), w("r"), w("t"), w("tc"), w("tr"), w("tbl")
_SDT, _SDT_PR, _SDT_CONTENT, _TAG, _ALIAS, _VAL = (
    w("sdt"), w("sdtPr"), w("sdtContent"), w("tag"), w("alias"), w("val")
)  # fmt: skip
_RPR, _RSTYLE = w("rPr"), w("rStyle")
_CHECKED, _CHECKED_VAL = w14("checked"), w14("val")
_SKIP = {w("sdtPr"), w("rPr"), w("pPr"), w("delText"), w("instrText"), w("tblPr"), w("tcPr"), w("trPr")}
_FALLBACK = f"{{{MC_NS}}}Fallback"

# What the text walk does with each child, by its tag; any tag not listed is walked into.
_OMIT, _TEXT, _TAB, _HYPHEN, _BREAK, _CONTROL, _RUN, _PARAGRAPH = range(8)
_ACTIONS: dict[object, int] = {
    **dict.fromkeys(_SKIP | {_FALLBACK, w("softHyphen")}, _OMIT),
    # Comments, processing instructions and entities carry no text of the form.
    **dict.fromkeys((etree.Comment, etree.PI, etree.Entity), _OMIT),
    _T: _TEXT,
    w("tab"): _TAB,
    w("ptab"): _TAB,
    w("noBreakHyphen"): _HYPHEN,
    w("br"): _BREAK,
    w("cr"): _BREAK,
    _SDT: _CONTROL,
    _R: _RUN,
    _P: _PARAGRAPH,
}


def _unzip(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise UnreadableFileError(
            "The Word file is damaged or was not completely copied, so it cannot be opened."
        ) from exc
    unpacked = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if unpacked > MAX_UNPACKED_BYTES or unpacked / packed > MAX_RATIO or len(infos) > 2000:
        raise UnreadableFileError(
            "The Word file unpacks to far more than a form should (it may be a 'zip bomb'), so it was not opened.",
            advice="Do not open this file. Ask whoever sent it for the form again, or fill in a new blank form.",
        )
    return archive


def _xml(archive: zipfile.ZipFile, name: str) -> etree._Element | None:
    try:
        raw = archive.read(name)
    except KeyError:
        return None
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
        raise UnreadableFileError("Part of the Word file is damaged, so it cannot be read.") from exc
    try:
        return etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise UnreadableFileError("Part of the Word file is damaged, so it cannot be read.") from exc


# --- text ------------------------------------------------------------------------------------


def _shows_placeholder(run: etree._Element, style: etree._Element) -> bool:
    if style.get(_VAL) != "PlaceholderText":
        return False
    return "".join(t.text or "" for t in run.iter(_T)).strip().casefold() in PLACEHOLDERS


def _collect(element: etree._Element | list[etree._Element], out: list[str]) -> None:
    """The text of an element's children (or of a list of siblings), in order."""
    actions = _ACTIONS
    for child in element:
        action = actions.get(child.tag)
        if action is None:
            if isinstance(child.tag, str):
                _collect(child, out)
        elif action == _OMIT:
            # Properties, deleted or field-code text, a Fallback copy of a Choice, Ctrl+hyphen
            # (where a word may break at a line end; no character of the text).
            continue
        elif action == _RUN:
            _collect_run(child, out)
        elif action == _TEXT:
            # LibreOffice 7.4 saves a line typed in a text box (an input field to it) as a new
            # w:t in the same run with no w:br between; Word never puts two w:t side by side.
            previous = child.getprevious()
            if previous is not None and previous.tag == _T:
                out.append("\n")
            out.append(child.text or "")
        elif action == _PARAGRAPH:
            _collect(child, out)
            out.append("\n")
        elif action == _CONTROL:
            _collect_control(child, out)
        elif action == _TAB:
            out.append("\t")
        elif action == _HYPHEN:
            # Ctrl+Shift+hyphen in Word, as in "Łukasiewicz-Núñez": a hyphen that keeps the two
            # halves on one line. Word writes it as an element, not a character.
            out.append("-")
        else:  # _BREAK
            out.append("\n")


def _collect_run(run: etree._Element, out: list[str]) -> None:
    """A run's text, in one pass over its children that also finds its character style. The
    grey placeholder words of a box whose control was removed (Word's "Remove content
    control", Google Docs), with an answer typed beside them, are no text."""
    start = len(out)
    style = None
    previous = None
    for child in run:
        tag = child.tag
        if tag == _T:
            if previous == _T:  # two w:t side by side: see _collect
                out.append("\n")
            out.append(child.text or "")
        elif tag == _RPR:
            if style is None:
                for prop in child:
                    if prop.tag == _RSTYLE:
                        style = prop
                        break
        elif _ACTIONS.get(tag) != _OMIT:
            _collect([child], out)
        previous = tag
    if style is not None and _shows_placeholder(run, style):
        del out[start:]


def _collect_control(sdt: etree._Element, out: list[str]) -> None:
    """A content control's text, unless it shows only its placeholder (or has no content). The
    content is walked once: its text both decides whether it is a placeholder and is the text."""
    if len(sdt) == 2 and sdt[0].tag == _SDT_PR and (content := sdt[1]).tag == _SDT_CONTENT:  # the usual control
        inner: list[str] = []
        _collect(content, inner)
        if "".join(inner).strip().casefold() not in PLACEHOLDERS:
            out += inner
        return
    parts = list(sdt)
    tags = [part.tag for part in parts]
    try:
        at = tags.index(_SDT_CONTENT)
    except ValueError:
        return
    inner = []
    _collect(parts[at], inner)
    if "".join(inner).strip().casefold() in PLACEHOLDERS:
        return
    if all(tag == _SDT_PR for i, tag in enumerate(tags) if i != at):  # the usual control
        out += inner
        return
    # Anything else in the control is read as it always was (w:sdtEndPr holds only run properties).
    _collect(parts[:at], out)
    out += inner
    _collect(parts[at + 1 :], out)


def _text(element: etree._Element) -> str:
    out: list[str] = []
    _collect(element, out)
    return "".join(out)


_SPECIAL = str.maketrans({"\u2011": "-", "\u00ad": None})  # the same two hyphens typed as characters
_ONE_LINE_BREAKS = re.compile(r"[ ]*[\t\n]+[ ]*")
_BOX_GLYPHS = CHECKED_GLYPHS | {UNCHECKED}


def _tick(text: str) -> Answer:
    """A check box's cell with no box in it: a glyph left behind, or a word typed in its place.
    A word that says neither yes nor no comes back as text, which ``_check_words`` turns
    into a problem."""
    shown = text.strip()
    if all(ch in _BOX_GLYPHS or ch.isspace() for ch in shown):
        return any(ch in CHECKED_GLYPHS for ch in shown)
    words = "".join(ch for ch in shown if ch not in _BOX_GLYPHS - {"x", "X"}).strip()
    said = parse_tick_word(words)
    return shown if said is None else said


def _cell_answer(cell: etree._Element, widget: Widget) -> Answer:
    if widget is Widget.check:
        for state in cell.iter(_CHECKED):
            return state.get(_CHECKED_VAL, "0").lower() in ("1", "true", "on")
        return _tick(_text(cell))
    # The trailing paragraph break is the cell's, not the answer's.
    out: list[str] = []
    _collect(cell, out)
    text = "".join(out).strip("\n")
    if "\u2011" in text or "\u00ad" in text:
        text = text.translate(_SPECIAL)
    # Placeholder words left as plain text (Google Docs keeps them when it drops the boxes).
    if text.strip().casefold() in PLACEHOLDERS:
        return ""
    if widget is not Widget.lines and ("\t" in text or "\n" in text):
        # A tab or Shift+Enter inside a one-line answer (a name, a date) separates words.
        text = _ONE_LINE_BREAKS.sub(" ", text.strip("\t\n"))
    return text


def _blank(answer: Answer) -> bool:
    return answer is False or (isinstance(answer, str) and not answer.strip())


def _same(answer: Answer) -> Answer:
    return " ".join(answer.split()) if isinstance(answer, str) else answer


Found = dict[str, list[Answer]]


def _merge(found: Found, specs: dict[str, Field], grids: list[Grid]) -> tuple[dict[str, Answer], list[Problem]]:
    """One answer per box from every place it was read. A box found twice (a row copied in
    Word keeps its tags) is read from the copy that was filled in; two different answers are a
    problem, never one silently dropped."""
    values: dict[str, Answer] = {}
    problems: list[Problem] = []
    overflowing: list[Grid] = []
    for path, answers in found.items():
        if len(answers) == 1:  # the usual case: nothing to choose between
            values[path] = answers[0]
            continue
        # Copies that differ only in spacing say the same thing.
        filled = list({_same(a): a for a in reversed(answers) if not _blank(a)}.values())[::-1]
        values[path] = filled[0] if filled else answers[0]
        if len(filled) < 2:
            continue
        grid = next((g for g in grids if path.startswith(g.path + ".")), None)
        if grid is None:
            problems.append(duplicate_problem(specs[path], filled))
        elif grid not in overflowing:
            overflowing.append(grid)
    problems += [overflow_problem(g) for g in overflowing]
    return values, problems


def _check_words(values: dict[str, Answer], specs: dict[str, Field]) -> list[Problem]:
    return [
        Problem(
            label=specs[path].label,
            message=f"{value!r} does not say yes or no; write Yes or No in this box (or tick it)",
            path=path,
        )
        for path, value in values.items()
        if specs[path].widget is Widget.check and isinstance(value, str)
    ]


# --- kind and version ------------------------------------------------------------------------


def _identify(archive: zipfile.ZipFile, body: etree._Element) -> tuple[FormKind, int]:
    found: dict[str, str] = {}
    props = _xml(archive, "docProps/custom.xml")
    if props is not None:
        for prop in props.iter(f"{{{CUSTOM_NS}}}property"):
            name = prop.get("name", "")
            if name in (PROP_KIND, PROP_VERSION):
                found[name] = "".join(prop.itertext()).strip()
    if PROP_KIND not in found:
        # Custom properties lost (some tools drop them): fall back to the footer mark.
        texts = [_text(body)]
        texts += [
            _text(x)
            for n in archive.namelist()
            if re.match(r"word/(footer|header)\d*\.xml$", n)
            if (x := _xml(archive, n)) is not None
        ]
        for text in texts:
            if m := FOOTER_MARK_RE.search(text):
                found = {PROP_KIND: m[1].lower(), PROP_VERSION: m[2]}
                break
    if PROP_KIND not in found:
        raise NotAFormError(
            "This Word document is not a senforms form (it has none of the marks a senforms form carries)."
        )
    slug = found[PROP_KIND]
    version = int(found.get(PROP_VERSION, "0") or 0) if found.get(PROP_VERSION, "").isdigit() else 0
    kind = KINDS.get(slug)
    if kind is None:
        raise UnknownVersionError(f"This is a senforms form of a kind this installation does not know ({slug!r}).")
    try:
        # A form printed under an earlier version is read with that version's layout and upgraded.
        return kind.at_version(version), version
    except UnknownFormVersion:
        known = ", ".join(str(v) for v in kind.versions)
        raise UnknownVersionError(
            f"This is version {version} of the {kind.title}; this installation reads versions {known}."
        ) from None


# --- reading by tags -------------------------------------------------------------------------


def _ancestor_cell(element: etree._Element) -> etree._Element | None:
    for parent in element.iterancestors(_TC):
        return parent
    return None


def _names(sdt: etree._Element) -> tuple[str | None, str | None]:
    """A control's tag and title (alias): the first w:tag and w:alias under its w:sdtPr, as
    ``sdt.find("w:sdtPr/w:tag")`` finds them, in one look at its properties."""
    # The shape senforms writes (and Word keeps): w:sdtPr first, starting with w:alias and w:tag.
    # Indexing reaches them without making an iterator over every child.
    if len(sdt) and (first := sdt[0]).tag == _SDT_PR and len(first) >= 2:
        one, two = first[0], first[1]
        if one.tag == _ALIAS and two.tag == _TAG:
            return two.get(_VAL), one.get(_VAL)
        if one.tag == _TAG and two.tag == _ALIAS:
            return one.get(_VAL), two.get(_VAL)
    tag = alias = None
    tag_seen = alias_seen = False
    for pr in sdt:
        if pr.tag != _SDT_PR:
            continue
        for prop in pr:
            name = prop.tag
            if name == _TAG and not tag_seen:
                tag, tag_seen = prop.get(_VAL), True
            elif name == _ALIAS and not alias_seen:
                alias, alias_seen = prop.get(_VAL), True
            else:
                continue
            if tag_seen and alias_seen:  # nothing later can change either
                return tag, alias
    return tag, alias


def _tag(sdt: etree._Element) -> str | None:
    return _names(sdt)[0]


def _alias(sdt: etree._Element) -> str | None:
    return _names(sdt)[1]


# Every control of a form and its names, found once per read and shared by the passes below. Keyed
# by element: lxml hands back the same element object for a node while one is held, and this
# dict holds them all.
Names = dict[etree._Element, tuple[str | None, str | None]]


def _all_names(body: etree._Element) -> Names:
    return {sdt: _names(sdt) for sdt in body.iter(_SDT)}


def _names_of(sdt: etree._Element, names: Names) -> tuple[str | None, str | None]:
    found = names.get(sdt)
    return _names(sdt) if found is None else found


@cache
def _by_label(kind: FormKind) -> dict[str, str]:
    """Folded label to path (the last field wins where two share a label)."""
    return {fold_label(f.label): path for path, f in fields(kind).items()}


@cache
def _grids(kind: FormKind) -> tuple[Grid, ...]:
    return tuple(b for b in blocks(kind) if isinstance(b, Grid))


@cache
def _grid_of(kind: FormKind) -> dict[str, int]:
    """Each grid field's path to the index of its grid: the first of the kind's grids whose
    path it is under. (Indices, not grids: hashing a frozen Grid hashes all its columns.)"""
    grids = _grids(kind)
    return {
        path: i for path in fields(kind) if (i := next((i for i, g in enumerate(grids) if path.startswith(g.path + ".")), -1)) >= 0
    }


_fold_short = lru_cache(maxsize=512)(fold_label)


def _fold(title: str) -> str:
    """``fold_label`` of a control's title, remembered across forms for titles of label length
    only, so a hostile file's huge titles are not kept in memory after it is read."""
    return _fold_short(title) if len(title) <= 200 else fold_label(title)


def _by_controls(body: etree._Element, kind: FormKind, names: Names) -> Found:
    """Answers from content controls named by tag, or by title (alias) where a word processor
    kept the titles but dropped the tags, as LibreOffice 7.4 does. Every place a tag is
    found is kept, so a copied box is seen rather than dropped."""
    specs = fields(kind)
    by_alias = _by_label(kind)
    # Every control that names a box (a tag of the form, or any title) counts in each cell it is
    # in; a box alone in its cell is read from the whole cell. One look up the tree per control,
    # rather than one look down every cell per box.
    boxes: list[tuple[str, etree._Element, etree._Element | None]] = []
    named_in: dict[etree._Element, int] = {}
    for sdt, (tag, alias) in names.items():
        if not (tag in specs or alias):
            continue
        cells = list(sdt.iterancestors(_TC))
        for cell in cells:
            named_in[cell] = named_in.get(cell, 0) + 1
        path = tag if tag is not None or not alias else by_alias.get(_fold(alias))
        if path in specs:
            boxes.append((path, sdt, cells[0] if cells else None))
    found: Found = {}
    for path, sdt, cell in boxes:
        # Read the whole cell when the control is alone in it, so text typed beside the
        # control instead of inside it is not lost.
        scope = cell if cell is not None and named_in[cell] == 1 else sdt
        found.setdefault(path, []).append(_cell_answer(scope, specs[path].widget))
    return found


def _added_to_grids(body: etree._Element, kind: FormKind, names: Names) -> list[Grid]:
    """Grids with text typed in cells that hold no answer box: a row or column added in Word
    ('Insert row below' makes plain cells). Its answers have nowhere to go, so they are a problem."""
    specs = fields(kind)
    grids, grid_of = _grids(kind), _grid_of(kind)
    labels = _by_label(kind)
    # Answer boxes: controls tagged with a path, or titled with a label of the form.
    answering = {sdt for sdt, (tag, alias) in names.items() if tag in specs or _fold(alias or "") in labels}

    def plain(cell: etree._Element) -> bool:
        for s in cell.iter(_SDT):
            if s in answering:
                return False
            if s not in names:  # never for a cell of the body; read it as any control would be
                tag, alias = _names(s)
                if tag in specs or _fold(alias or "") in labels:
                    return False
        return True

    found: list[Grid] = []
    for table in body.iter(_TBL):
        # The first grid, in the form's order, that any answer box in the table belongs to.
        hit = [grid_of[p] for s in table.iter(_SDT) if (p := _names_of(s, names)[0]) in grid_of]
        grid = grids[min(hit)] if hit else None
        if grid is None or grid in found:
            continue
        for cells in list(_rows(table))[1:]:
            if any(plain(c) and not _blank(_cell_answer(c, Widget.text)) for c in cells[1:]):
                found.append(grid)
                break
    return found


# --- reading by labels -----------------------------------------------------------------------


def _rows(table: etree._Element) -> Iterator[list[etree._Element]]:
    for row in table.iterchildren(_TR):
        yield list(row.iterchildren(_TC))


def _first_line(cell: etree._Element) -> str:
    for para in cell.iter(_P):
        if text := _text(para).strip():
            return text
    return ""


def _grid_columns(grid: Grid, header: list[etree._Element]) -> dict[int, Field] | None:
    by_label = {fold_label(c.label): c for c in grid.columns}
    mapped = {i: by_label[f] for i, cell in enumerate(header) if (f := fold_label(_first_line(cell))) in by_label}
    return mapped if len(mapped) * 2 >= len(grid.columns) else None


def _item_columns(grid: Grid, header: list[etree._Element]) -> dict[int, int] | None:
    pattern = re.compile(rf"^{re.escape(fold_label(grid.item_label))} (\d+)$")
    mapped = {}
    for i, cell in enumerate(header):
        if (m := pattern.match(fold_label(_first_line(cell)))) and 1 <= int(m[1]) <= grid.count:
            mapped[i] = int(m[1]) - 1
    return mapped or None


def _filled(cells: list[etree._Element], columns: list[int]) -> bool:
    return any(i < len(cells) and not _blank(_cell_answer(cells[i], Widget.text)) for i in columns)


def _by_labels(body: etree._Element, kind: FormKind, extra: dict[str, str]) -> tuple[Found, list[Grid]]:
    """Answers found by their printed labels, and the grids with rows or columns beyond those
    the form has (numbered 7 of 6, unnumbered, "Parent or carer 3")."""
    specs = fields(kind)
    singles = {fold_label(f.label): f for b in blocks(kind) if isinstance(b, Section) for f in b.fields}
    singles.update({label: specs[path] for label, path in extra.items() if path in specs})
    grids = [b for b in blocks(kind) if isinstance(b, Grid)]
    found: Found = {}
    overflowing: list[Grid] = []

    def add(f: Field, cell: etree._Element) -> None:
        found.setdefault(f.path, []).append(_cell_answer(cell, f.widget))

    for table in body.iter(_TBL):
        rows = list(_rows(table))
        if not rows:
            continue
        grid_done = False
        for grid in grids:
            if grid.orientation == "rows" and (columns := _grid_columns(grid, rows[0])):
                for cells in rows[1:]:
                    number = _first_line(cells[0]) if cells else ""
                    if number.isdigit() and 1 <= int(number) <= grid.count:
                        for i, column in columns.items():
                            if i < len(cells):
                                add(grid.field(int(number) - 1, column), cells[i])
                    elif _filled(cells, list(columns)) and grid not in overflowing:
                        overflowing.append(grid)
                grid_done = True
            elif grid.orientation == "columns" and (items := _item_columns(grid, rows[0])):
                by_label = {fold_label(c.label): c for c in grid.columns}
                unknown = [i for i in range(1, len(rows[0])) if i not in items]
                for cells in rows[1:]:
                    if _filled(cells, unknown) and grid not in overflowing:
                        overflowing.append(grid)
                    labelled = by_label.get(fold_label(_first_line(cells[0]))) if cells else None
                    if labelled is None:
                        continue
                    for i, index in items.items():
                        if i < len(cells):
                            add(grid.field(index, labelled), cells[i])
                grid_done = True
            if grid_done:
                break
        if grid_done:
            continue
        for cells in rows:
            if len(cells) >= 2 and (f := singles.get(fold_label(_first_line(cells[0])))):
                add(f, cells[1])
    return found, overflowing


def read_word(data: bytes, *, labels: dict[str, dict[str, str]] | None = None) -> RawForm:
    """Read a senforms Word form. ``labels`` maps, per form kind, a school's own (folded) label
    wording to paths."""
    archive = _unzip(data)
    root = _xml(archive, "word/document.xml")
    if root is None:
        raise NotAFormError("This file is a zip archive but not a Word document.")
    body = root.find(_BODY)
    if body is None:
        raise UnreadableFileError("The Word file has no text in it.")
    kind, version = _identify(archive, body)
    specs = fields(kind)
    grids = list(_grids(kind))
    names = _all_names(body)
    values, problems = _merge(_by_controls(body, kind, names), specs, grids)
    added = _added_to_grids(body, kind, names)
    method = "tags"
    if len(values) < len(specs):
        found, beyond = _by_labels(body, kind, (labels or {}).get(kind.slug, {}))
        if not any(tag in specs for tag, _ in names.values()):
            method = "labels"
        by_labels, label_problems = _merge({p: a for p, a in found.items() if p not in values}, specs, grids)
        values |= by_labels
        problems += label_problems
        added += beyond
    if not values:
        raise NotAFormError(f"This looks like a {kind.title}, but none of its answer boxes could be found.")
    problems += [overflow_problem(g) for g in dict.fromkeys(added) if g.path not in {p.path for p in problems}]
    problems += _check_words(values, specs)
    if problems:
        refuse(kind, values, problems)
    return RawForm(kind=kind, version=version, values=values, method=method)
