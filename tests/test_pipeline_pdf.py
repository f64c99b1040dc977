"""With documents = "pdf": the SENCO fills the pre-filled PDF forms (as a browser viewer does,
by setting field values) and the parents' letters come out as PDFs, through LibreOffice."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from senforms.config import Settings, load_settings
from senforms.kinds import KINDS
from senforms.pipeline import Pipeline
from senforms.read import read_form
from tests.pipeline_helpers import drop, filled, values
from tests.test_pdf_forms import fill_with_pypdf, typed

pytestmark = [
    pytest.mark.libreoffice,
    pytest.mark.skipif(
        not (shutil.which("soffice") and shutil.which("pdftotext")), reason="needs LibreOffice and poppler"
    ),
]

FOLDER = "Hart Amelia (H801200001001)"


def pdf_text(path: Path) -> str:
    """The PDF's words in reading order, spacing and line breaks within table cells evened out."""
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


@pytest.fixture
def pdf_settings(home: Path) -> Settings:
    config = home / "senforms.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('format = "docx"', 'format = "pdf"'), encoding="utf-8")
    return load_settings(home)


def fill_pdf(prefilled: bytes, kind: str, answers: dict) -> bytes:
    """Complete a pre-filled PDF form: only the boxes still empty are typed into."""
    raw = read_form(prefilled, name="x.pdf")
    wanted = typed(KINDS[kind], answers)
    todo = {path: value for path, value in wanted.items() if raw.values.get(path) in ("", False, None)}
    return fill_with_pypdf(prefilled, todo, appearances=True)


def test_review_filled_as_pdf_gives_pdf_letters(pdf_settings: Settings, tmp_path: Path) -> None:
    cfg = pdf_settings
    with Pipeline(cfg, today=lambda: date(2026, 11, 22)) as pipeline:
        assert pipeline.notices == []
        early = values("early-discussion")
        pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early)))
        notice = cfg.outbox / f"parents/{FOLDER}/2026-11-22 Formal notification of SEN support.pdf"
        assert notice.read_bytes().startswith(b"%PDF")
        text = pdf_text(notice)
        assert "Millie" in text and "Oakfield Primary School" in text

        plan_pdf = cfg.outbox / f"senco/{FOLDER}/2026-11-22 SEN support plan (pre-filled).pdf"
        plan = values("support-plan", pupil=early["pupil"])
        plan = {k: v for k, v in plan.items() if k not in ("primary_need", "secondary_need", "cycle")}
        done = pipeline.process_file(drop(cfg.inbox, "plan.pdf", fill_pdf(plan_pdf.read_bytes(), "support-plan", plan)))
        assert done.kind == "support-plan"
        review_pdf = next(cfg.outbox.glob(f"senco/{FOLDER}/2026-11-22 Review record for *.pdf"))

        review = values("review", pupil=early["pupil"])
        review["outcomes"] = [
            {"description": o["description"], "rating": "partly", "evidence": "Running record: 7 errors a page."}
            for o in values("support-plan")["outcomes"]
        ]
        review = {k: v for k, v in review.items() if k not in ("cycle", "plan_date", "provision")}
        done = pipeline.process_file(drop(cfg.inbox, "review.pdf", fill_pdf(review_pdf.read_bytes(), "review", review)))
        assert (done.kind, done.status) == ("review", "processed")

    letter = cfg.outbox / f"parents/{FOLDER}/2026-11-22 Review of SEN support.pdf"
    text = pdf_text(letter)
    assert "Millie" in text
    assert "Running record: 7 errors a page." in text
    assert "Partly achieved" in text
    assert not list(cfg.outbox.glob("parents/**/*.docx"))


def test_without_libreoffice_letters_stay_word_and_start_up_says_so(
    pdf_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("senforms.documents.office_available", lambda: False)
    with Pipeline(pdf_settings, today=lambda: date(2026, 11, 22)) as pipeline:
        assert any("LibreOffice was not found" in n for n in pipeline.notices)
        pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    assert (pdf_settings.outbox / f"parents/{FOLDER}/2026-11-22 Formal notification of SEN support.docx").exists()
    # The SENCO's forms need no LibreOffice: they are fillable PDF forms.
    assert (pdf_settings.outbox / f"senco/{FOLDER}/2026-11-22 SEN support plan (pre-filled).pdf").exists()
