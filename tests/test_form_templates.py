"""The Word forms shipped in senforms/templates/forms/ agree with the kinds' declaration, and a form made
from a copy of one reads back."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest

from senforms.config import load_settings
from senforms.forms import blank_form, extract
from senforms.kinds import KINDS
from senforms.read import read_form
from tests.conftest import case
from tests.wordfill import fill_like_word, typed

SHIPPED = Path(__file__).resolve().parent.parent / "senforms" / "templates" / "forms"


@pytest.mark.parametrize("slug", list(KINDS))
def test_shipped_form_template_is_current(slug: str) -> None:
    data = (SHIPPED / KINDS[slug].filename).read_bytes()
    raw = read_form(data, name="x.docx")
    assert (raw.kind.slug, raw.version) == (slug, KINDS[slug].version), "run scripts/make_form_templates.py"
    assert raw.method == "tags"


@pytest.mark.parametrize("slug", list(KINDS))
def test_a_copy_of_the_shipped_template_makes_forms_that_read_back(home: Path, slug: str) -> None:
    (home / "templates" / "forms").mkdir(parents=True)
    shutil.copy(SHIPPED / KINDS[slug].filename, home / "templates" / "forms" / KINDS[slug].filename)
    settings = load_settings(home)
    filled = fill_like_word(blank_form(settings, slug), typed(slug, case(f"{slug}.json")))
    model, _ = extract(filled, name="f.docx", settings=settings)
    assert model == KINDS[slug].model.model_validate(case(f"{slug}.json"))
    with zipfile.ZipFile(io.BytesIO(filled)) as package:
        headers = [package.read(n).decode() for n in package.namelist() if n.startswith("word/header")]
    assert any("Oakfield Primary School" in h for h in headers)
