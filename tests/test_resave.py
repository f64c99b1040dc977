"""Forms as a school really sends them (issue 13, points 1, 2 and 7): saved again with no answer
changed, dropped together in any order, and dated in ways that make no sense for the cycle.
Real Word forms through the pipeline, on SQLite and PostgreSQL (the fixtures of test_pipeline)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select

from senforms.archive import tables as t
from senforms.config import Settings
from senforms.pipeline import Pipeline
from tests import test_pipeline
from tests.pipeline_helpers import drop, filled, values
from tests.test_pipeline import FOLDER, count, docx_text, outbox_files

# The SQLite and PostgreSQL archives of test_pipeline, shared rather than copied.
archive_url = test_pipeline.archive_url
cfg = test_pipeline.cfg
pipeline = test_pipeline.pipeline

UPN = "H801200001001"


def resaved(data: bytes, when: str = "2026-11-22T09:41:00Z") -> bytes:
    """The same document saved again in Word: new document properties (revision, modified
    time), every answer unchanged; so new bytes and a new content hash."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            content = old.read(item.filename)
            if item.filename == "docProps/core.xml":
                text = content.decode("utf-8")
                text = re.sub(r"<cp:revision>\d+</cp:revision>", "<cp:revision>7</cp:revision>", text)
                text = re.sub(r"(<dcterms:modified[^>]*>)[^<]*", rf"\g<1>{when}", text)
                content = text.encode("utf-8")
            new.writestr(item, content)
    assert out.getvalue() != data
    return out.getvalue()


def early() -> dict[str, Any]:
    return values("early-discussion")


def plan(**changes: Any) -> dict[str, Any]:
    return values("support-plan", pupil=early()["pupil"], **changes)


def review(**changes: Any) -> dict[str, Any]:
    return values("review", pupil=early()["pupil"], **changes)


def events(cfg: Settings) -> list[tuple[str, str]]:
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(t.Event.action, t.Event.detail).order_by(t.Event.id)).all()
    engine.dispose()
    return [(r.action, r.detail) for r in rows]


# --- 13.1: a re-save is not a correction ----------------------------------------------------------


def test_a_form_saved_again_unchanged_is_already_processed(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    data = filled("early-discussion", early())
    assert pipeline.process_file(drop(tmp_path, "a.docx", data)).status == "processed"
    before = outbox_files(cfg)
    again = pipeline.process_file(drop(tmp_path, "a (saved again).docx", resaved(data)))
    assert (again.status, again.documents) == ("already processed", [])
    assert outbox_files(cfg) == before  # no "(corrected)" letters, no second pre-filled plan
    assert count(cfg, t.ReceivedForm) == 1
    assert ("received again", "early-discussion: same answers as form 1") in events(cfg)


def test_a_upn_typed_with_spaces_is_the_same_form(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.process_file(drop(tmp_path, "a.docx", filled("early-discussion", early())))
    before = outbox_files(cfg)
    spaced = values("early-discussion", pupil={"upn": "H801 2000 01001"})
    again = pipeline.process_file(drop(tmp_path, "b.docx", filled("early-discussion", spaced)))
    assert again.status == "already processed"
    assert outbox_files(cfg) == before
    assert count(cfg, t.ReceivedForm) == 1


def test_a_correction_says_what_changed(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early())))
    pipeline.process_file(drop(tmp_path, "plan.docx", filled("support-plan", plan())))
    done = pipeline.process_file(drop(tmp_path, "plan2.docx", filled("support-plan", plan(review_date="2026-03-16"))))
    assert done.status == "corrected"
    letter = cfg.outbox / f"parents/{FOLDER}/2026-11-22 Your child's SEN support plan (corrected).docx"
    text = docx_text(letter)
    assert "Corrected copy" in text
    assert "Corrected: the review date is now 16 March 2026" in text
    # The first copy said nothing of a correction.
    first = docx_text(cfg.outbox / f"parents/{FOLDER}/2026-11-22 Your child's SEN support plan.docx")
    assert "Corrected" not in first


def test_a_corrected_plan_does_not_reissue_a_review_record_once_reviewed(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early())))
    pipeline.process_file(drop(tmp_path, "plan.docx", filled("support-plan", plan())))
    pipeline.process_file(drop(tmp_path, "review.docx", filled("review", review())))
    senco_before = [f for f in outbox_files(cfg) if f.startswith("senco/") and "Review record" in f]
    assert len(senco_before) == 1
    done = pipeline.process_file(drop(tmp_path, "plan2.docx", filled("support-plan", plan(home="Reading at bedtime."))))
    assert done.status == "corrected"
    assert [d.name for d in done.documents if "Review record" in d.name] == []
    assert [f for f in outbox_files(cfg) if f.startswith("senco/") and "Review record" in f] == senco_before
    # The parents' copy is still re-issued, saying what changed.
    text = docx_text(cfg.outbox / f"parents/{FOLDER}/2026-11-22 Your child's SEN support plan (corrected).docx")
    assert "Corrected: “What parents will do at home” is now Reading at bedtime." in text


def test_a_corrected_plan_still_reissues_its_review_record_before_the_review(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early())))
    pipeline.process_file(drop(tmp_path, "plan.docx", filled("support-plan", plan())))
    done = pipeline.process_file(drop(tmp_path, "plan2.docx", filled("support-plan", plan(review_date="2026-03-16"))))
    assert [d.name for d in done.documents if "Review record for 16 March 2026" in d.name]
