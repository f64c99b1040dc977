"""Forms as a school really sends them (issue 13, points 1, 2 and 7): saved again with no answer
changed, dropped together in any order, and dated in ways that make no sense for the cycle.
Real Word forms through the pipeline, on SQLite and PostgreSQL (the fixtures of test_pipeline)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from senforms import pipeline as pipeline_module
from senforms.archive import tables as t
from senforms.config import Settings
from senforms.errors import CycleError, FormInvalidError
from senforms.pipeline import Pipeline, process_files
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


# --- 13.2: forms dropped together are taken in the cycle's order --------------------------------


def test_forms_dropped_together_are_taken_in_the_cycles_order(cfg: Settings, tmp_path: Path) -> None:
    # Named so that name order is the wrong order: review, plan, early discussion.
    paths = [
        drop(cfg.inbox, "1 review.docx", filled("review", review())),
        drop(cfg.inbox, "2 plan.docx", filled("support-plan", plan())),
        drop(cfg.inbox, "3 early.docx", filled("early-discussion", early())),
    ]
    report = process_files(paths, cfg)
    assert report.set_aside == []
    assert report.exit_code == 0
    assert [(p.name, r.kind, r.status) for p, r in report.processed] == [
        ("1 review.docx", "review", "processed"),
        ("2 plan.docx", "support-plan", "processed"),
        ("3 early.docx", "early-discussion", "processed"),
    ]
    assert [a for a, _ in events(cfg) if a == "received"] == ["received"] * 3


def test_a_plan_waiting_for_its_early_discussion_is_retried_in_the_same_run(
    cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even when the cheap ordering cannot tell (here: forced to name order), the plan held up
    # only because its pupil had no record yet goes through once the early discussion is filed.
    monkeypatch.setattr(pipeline_module, "cycle_order", lambda path, settings: path.name)
    paths = [
        drop(cfg.inbox, "a plan.docx", filled("support-plan", plan())),
        drop(cfg.inbox, "b early.docx", filled("early-discussion", early())),
    ]
    report = process_files(paths, cfg)
    assert report.set_aside == []
    assert [r.kind for _, r in report.processed] == ["support-plan", "early-discussion"]
    assert count(cfg, t.ReceivedForm) == 2


# --- 13.7: the cycle's sense -------------------------------------------------------------------


def test_a_review_with_no_plan_on_record_is_set_aside_with_a_note(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early())))
    with pytest.raises(CycleError, match="no SEN support plan for cycle 1"):
        pipeline.process_file(drop(tmp_path, "review.docx", filled("review", review())))
    path = drop(cfg.inbox, "review.docx", filled("review", review()))
    report = process_files([path], cfg)
    [(_, target, error)] = report.set_aside
    assert error.exit_code == 5
    note = target.with_name(target.name + ".txt").read_text(encoding="utf-8")
    assert "Drop in the plan of cycle 1 first" in note
    assert count(cfg, t.ReceivedForm) == 1
    assert not list(cfg.outbox.glob("parents/*/*Review of SEN support*"))


def test_a_meeting_dated_months_ahead_is_a_problem_not_a_letter(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    # TODAY is 22 November 2026: 10 January 2027 is 49 days ahead, a slip for 2026.
    ahead = values("early-discussion", meeting_date="2027-01-10", next_meeting_date="2027-02-10")
    with pytest.raises(FormInvalidError, match=r"Date of meeting: 10/01/2027 is more than 30 days after today"):
        pipeline.process_file(drop(tmp_path, "ahead.docx", filled("early-discussion", ahead)))
    assert count(cfg, t.ReceivedForm) == 0
    assert outbox_files(cfg) == []
    # A date a little ahead (a form filled in before a meeting next week) is accepted.
    soon = values("early-discussion", meeting_date="2026-12-10", next_meeting_date="2027-01-10")
    assert pipeline.process_file(drop(tmp_path, "soon.docx", filled("early-discussion", soon))).status == "processed"


def test_a_review_dated_months_ahead_is_a_problem(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early())))
    pipeline.process_file(drop(tmp_path, "plan.docx", filled("support-plan", plan())))
    ahead = review(review_date="2027-02-10", next_review_date="2027-05-19")
    with pytest.raises(FormInvalidError, match="Date of review: 10/02/2027"):
        pipeline.process_file(drop(tmp_path, "review.docx", filled("review", ahead)))
