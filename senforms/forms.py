"""The form API: write a blank or pre-filled form, and extract a filled one into its model.

A school may keep its own copy of each Word form in ``<home>/templates/forms/<kind>.docx`` (its
logo, its wording, its order of rows). Blank forms are made from that copy when it exists, and
its label wording is learned so that forms whose tags a word processor dropped still read back.
"""

from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import BaseModel

from senforms.config import Settings
from senforms.errors import UnknownVersionError
from senforms.kinds import KINDS, FormKind
from senforms.layout import fold_label
from senforms.read import RawForm, read_form
from senforms.validate import validate
from senforms.wordml import w


def kind_for(slug: str) -> FormKind:
    if slug not in KINDS:
        raise UnknownVersionError(f"There is no form called {slug!r}; the forms are: {', '.join(KINDS)}.")
    return KINDS[slug]


def form_template(settings: Settings, kind: FormKind) -> Path | None:
    """The school's own copy of a Word form, if it keeps one."""
    path = settings.templates / "forms" / kind.filename
    return path if path.is_file() else None


def blank_form(settings: Settings, slug: str, *, values: dict[str, Any] | None = None, pdf: bool = False) -> bytes:
    kind = kind_for(slug)
    if pdf:
        from senforms.pdfform import make_pdf_form

        return make_pdf_form(kind, school=settings.school_name, values=values)
    from senforms.wordform import make_form

    return make_form(kind, school=settings.school_name, values=values, template=form_template(settings, kind))


def school_labels(settings: Settings | None) -> dict[str, dict[str, str]]:
    """Label wording learned from the school's own form templates: per kind, folded label to
    path. Per kind, because two forms may use the same words for different answers."""
    if settings is None or not (settings.templates / "forms").is_dir():
        # The usual case, a school keeping no copies of its own: one look at the folder for
        # every form read, rather than one per kind of form.
        return {}
    return {
        kind.slug: _labels_in(str(path), path.stat().st_mtime_ns)
        for kind in KINDS.values()
        if (path := form_template(settings, kind))
    }


@lru_cache(maxsize=16)
def _labels_in(path: str, _mtime: int) -> dict[str, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            root = etree.fromstring(archive.read("word/document.xml"), etree.XMLParser(resolve_entities=False))
    except (OSError, KeyError, zipfile.BadZipFile, etree.XMLSyntaxError):
        return {}
    learned: dict[str, str] = {}
    for row in root.iter(w("tr")):
        cells = list(row.iterchildren(w("tc")))
        if len(cells) != 2:
            continue
        tag = cells[1].find(f".//{w('sdtPr')}/{w('tag')}")
        label = "".join(cells[0].itertext()).strip()
        if tag is not None and label:
            learned[fold_label(label.removesuffix("*"))] = tag.get(w("val"), "")
            first = next((p for p in cells[0].iter(w("p")) if "".join(p.itertext()).strip()), None)
            if first is not None:
                learned[fold_label("".join(first.itertext()))] = tag.get(w("val"), "")
    return learned


def read(data: bytes, *, name: str = "", settings: Settings | None = None) -> RawForm:
    return read_form(data, name=name, labels=school_labels(settings))


def extract(data: bytes, *, name: str = "", settings: Settings | None = None) -> tuple[BaseModel, list[str]]:
    """Read and validate a form. Raises a ``SenformsError`` subclass on any problem."""
    return validate(read(data, name=name, settings=settings))
