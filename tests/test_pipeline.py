"""The whole cycle through the pipeline: early discussion, the plan senforms pre-filled, the
review it pre-filled; with repeats, corrections and identity conflicts. Runs on SQLite and,
when SENFORMS_TEST_POSTGRES_URL is set (scripts/test.sh sets it), on PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
import uuid
from datetime import date
from pathlib import Path

import docx
import pytest
from sqlalchemy import create_engine, func, select, text

from senforms.archive import tables as t
from senforms.config import Settings, load_settings
from senforms.errors import FormInvalidError, IdentityConflictError
from senforms.forms import extract
from senforms.pipeline import Pipeline, process_files
from tests.pipeline_helpers import complete, drop, filled, values

TODAY = date(2026, 11, 22)
PG = os.environ.get("SENFORMS_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def archive_url(request: pytest.FixtureRequest, home: Path):
    if request.param == "sqlite":
        yield None
        return
    if not PG:
        if os.environ.get("CI"):
            pytest.fail("SENFORMS_TEST_POSTGRES_URL is not set; scripts/test.sh starts PostgreSQL")
        pytest.skip("no PostgreSQL server (run the tests through scripts/test.sh)")
    name = f"senforms_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG.replace("/postgres?", f"/{name}?")
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def cfg(home: Path, archive_url: str | None) -> Settings:
    return load_settings(home, archive_url=archive_url)


@pytest.fixture
def pipeline(cfg: Settings):
    with Pipeline(cfg, today=lambda: TODAY) as p:
        yield p


def docx_text(path: Path) -> str:
    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts += [c.text for c in row.cells]
    return "\n".join(parts)


def outbox_files(cfg: Settings) -> list[str]:
    """The documents in the outbox (not the office's daily "Letters to send" list, which is no
    one document but a list of them)."""
    return sorted(
        p.relative_to(cfg.outbox).as_posix()
        for p in cfg.outbox.rglob("*")
        if p.is_file() and not p.name.startswith("Letters to send ")
    )


def count(cfg: Settings, table: type) -> int:
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return n


FOLDER = "Hart Amelia (H801200001001)"


def test_a_whole_cycle(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    # 1. The early discussion note: SEN support decided.
    early = values("early-discussion")
    done = pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early)))
    assert (done.kind, done.upn, done.status) == ("early-discussion", "H801200001001", "processed")
    files = outbox_files(cfg)
    assert f"parents/{FOLDER}/2026-11-22 Note of our early discussion.docx" in files
    assert f"parents/{FOLDER}/2026-11-22 Formal notification of SEN support.docx" in files
    plan_path = cfg.outbox / f"senco/{FOLDER}/2026-11-22 SEN support plan (pre-filled).docx"
    assert plan_path.exists()
    notice = docx_text(cfg.outbox / f"parents/{FOLDER}/2026-11-22 Formal notification of SEN support.docx")
    assert "Millie" in notice
    register = [r for r in cfg.outbox.glob("senco/*SEND register.csv")]
    assert len(register) == 1
    rows = list(csv.DictReader(io.StringIO(register[0].read_text(encoding="utf-8-sig"))))
    assert [(r["UPN"], r["SEN provision"], r["Primary need"], r["Secondary need"]) for r in rows] == [
        ("H801200001001", "K", "SPLD", "SEMH")
    ]

    # 2. The SENCO completes the plan senforms pre-filled.
    prefilled = plan_path.read_bytes()
    known, _ = extract_partial(prefilled)
    assert known["pupil.upn"] == "H801200001001"
    assert known["primary_need"] == "SPLD - Specific learning difficulty"
    assert known["cycle"] == "1"
    assert known["outcomes.0.description"].startswith("Millie reads Year 3 texts")
    plan = values("support-plan", pupil=early["pupil"])
    plan_rest = {k: v for k, v in plan.items() if k not in ("pupil", "primary_need", "secondary_need", "cycle")}
    completed = complete(prefilled, "support-plan", plan_rest)
    done = pipeline.process_file(drop(tmp_path, "plan.docx", completed))
    assert (done.kind, done.status) == ("support-plan", "processed")
    files = outbox_files(cfg)
    assert f"parents/{FOLDER}/2026-11-22 Your child's SEN support plan.docx" in files
    assert f"staff/{FOLDER}/2026-11-22 Staff briefing.docx" in files
    review_path = next(cfg.outbox.glob(f"senco/{FOLDER}/2026-11-22 Review record for *"))
    copy_text = docx_text(cfg.outbox / f"parents/{FOLDER}/2026-11-22 Your child's SEN support plan.docx")
    assert "Precision teaching of high-frequency words" in copy_text

    # 3. The SENCO completes the review record senforms pre-filled.
    prefilled = review_path.read_bytes()
    known, _ = extract_partial(prefilled)
    assert known["cycle"] == "1"
    assert known["outcomes.1.description"] == plan["outcomes"][1]["description"]
    assert known["provision.0.what"] == plan["provision"][0]["what"]
    review = values("review", pupil=early["pupil"])
    review["outcomes"] = [
        {
            "description": o["description"],
            "rating": "not-achieved" if i == 0 else "partly",
            "evidence": "Checked in class.",
        }
        for i, o in enumerate(plan["outcomes"])
    ]
    review_rest = {k: v for k, v in review.items() if k not in ("pupil", "cycle", "plan_date", "provision")}
    review_rest["decision"] = "continue"
    done = pipeline.process_file(drop(tmp_path, "review.docx", complete(prefilled, "review", review_rest)))
    assert (done.kind, done.status) == ("review", "processed")
    files = outbox_files(cfg)
    assert f"parents/{FOLDER}/2026-11-22 Review of SEN support.docx" in files
    next_plan = cfg.outbox / f"senco/{FOLDER}/2026-11-22 SEN support plan, cycle 2 (pre-filled).docx"
    known, _ = extract_partial(next_plan.read_bytes())
    assert known["cycle"] == "2"
    assert known["outcomes.0.last_rating"] == "Not achieved"
    assert known["provision.0.what"] == plan["provision"][0]["what"]

    # The archive holds the whole cycle.
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        cycle = conn.execute(select(t.Cycle)).one()
        assert (cycle.number, cycle.decision, cycle.plan_date) == (1, "continue", date.fromisoformat(plan["plan_date"]))
        ratings = conn.execute(select(t.OutcomeRating.rating).order_by(t.OutcomeRating.id)).scalars().all()
        assert ratings[0] == "not-achieved" and len(ratings) == len(plan["outcomes"])
        assert conn.execute(select(func.count()).select_from(t.ReceivedForm)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(t.Provision)).scalar_one() == len(plan["provision"])
        documents = conn.execute(select(func.count()).select_from(t.Document)).scalar_one()
        # Every document in the outbox is in the archive; the register's XLSX is its living copy only.
        assert documents == len(files) - 1
        actions = conn.execute(select(t.Event.action).order_by(t.Event.id)).scalars().all()
        assert actions.count("received") == 3 and actions.count("delivered") == 3
    engine.dispose()


def extract_partial(data: bytes) -> tuple[dict[str, str | bool], str]:
    from senforms.read import read_form

    raw = read_form(data, name="x.docx")
    return {k: v for k, v in raw.values.items() if v not in ("", False)}, raw.kind.slug


def test_the_same_file_twice_changes_nothing(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    data = filled("early-discussion", values("early-discussion"))
    first = pipeline.process_file(drop(tmp_path, "a.docx", data))
    before = outbox_files(cfg)
    again = pipeline.process_file(drop(tmp_path, "copy of a.docx", data))
    assert first.status == "processed" and again.status == "already processed"
    assert again.documents == []
    assert outbox_files(cfg) == before
    assert count(cfg, t.ReceivedForm) == 1


def test_a_form_on_record_is_known_even_when_it_would_not_be_read_today(cfg: Settings, tmp_path: Path) -> None:
    """Forms are read before the archive is asked whether it has them; one it has is never set
    aside, even if reading it today fails (here: a clock set back, so its meeting looks weeks
    ahead)."""
    data = filled("early-discussion", values("early-discussion"))
    with Pipeline(cfg, today=lambda: TODAY) as p:
        assert p.process_file(drop(tmp_path, "a.docx", data)).status == "processed"
    before = outbox_files(cfg)
    with Pipeline(cfg, today=lambda: date(2025, 9, 1)) as p:
        again = p.process_file(drop(tmp_path, "copy of a.docx", data))
        assert again.status == "already processed" and again.documents == []
        # A form not on record, with that date, is still refused.
        changed = filled("early-discussion", values("early-discussion", secondary_need="SLCN"))
        with pytest.raises(FormInvalidError, match="days after today"):
            p.process_file(drop(tmp_path, "changed.docx", changed))
    assert outbox_files(cfg) == before and count(cfg, t.ReceivedForm) == 1


def test_a_corrected_form_supersedes_and_reissues(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    first = values("early-discussion")
    pipeline.process_file(drop(tmp_path, "a.docx", filled("early-discussion", first)))
    corrected = values("early-discussion", secondary_need="SLCN")
    done = pipeline.process_file(drop(tmp_path, "b.docx", filled("early-discussion", corrected)))
    assert done.status == "corrected"
    files = outbox_files(cfg)
    assert f"parents/{FOLDER}/2026-11-22 Formal notification of SEN support (corrected).docx" in files
    assert f"parents/{FOLDER}/2026-11-22 Formal notification of SEN support.docx" in files  # nothing overwritten
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        forms = conn.execute(
            select(t.ReceivedForm.id, t.ReceivedForm.superseded_by_id).order_by(t.ReceivedForm.id)
        ).all()
        assert forms[0].superseded_by_id == forms[1].id and forms[1].superseded_by_id is None
        status = conn.execute(select(t.SenStatus.provision, t.SenStatus.secondary_need)).all()
        assert status == [("K", "SLCN")]
    engine.dispose()


def test_identity_conflicts_are_set_aside_with_a_note(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.process_file(drop(tmp_path, "a.docx", filled("early-discussion", values("early-discussion"))))
    wrong_birthday = values(
        "early-discussion",
        pupil={"date_of_birth": "2016-03-14"},
        meeting_date="2025-12-01",
        next_meeting_date="2026-01-10",
    )
    with pytest.raises(IdentityConflictError, match="date of birth 14/03/2016 on the form, 14/02/2016 in the archive"):
        pipeline.process_file(drop(tmp_path, "b.docx", filled("early-discussion", wrong_birthday)))
    # Same child under another (valid) UPN: one of the two is mistyped.
    other_upn = values(
        "early-discussion", pupil={"upn": "B801200005001"}, meeting_date="2025-12-01", next_meeting_date="2026-01-10"
    )
    with pytest.raises(IdentityConflictError, match="under UPN H801200001001"):
        pipeline.process_file(drop(tmp_path, "c.docx", filled("early-discussion", other_upn)))
    # A plan for a pupil the archive has never seen.
    stranger = values("support-plan", pupil={"upn": "B801200005001", "legal_surname": "Other"})
    path = drop(cfg.inbox, "plan.docx", filled("support-plan", stranger))
    report = process_files([path], cfg)
    assert report.exit_code == 11
    [(_, target, _error)] = report.set_aside
    assert target.exists() and not path.exists()
    note = target.with_name(target.name + ".txt").read_text(encoding="utf-8")
    assert "no pupil with UPN B801200005001" in note and "What to do" in note
    assert count(cfg, t.ReceivedForm) == 1


def test_extract_of_generated_prefilled_form_round_trips(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.process_file(
        drop(tmp_path, "a.docx", filled("early-discussion", values("early-discussion", decision="monitor")))
    )
    monitor = next(cfg.outbox.glob(f"senco/{FOLDER}/*Early discussion note for the next meeting*"))
    known, kind = extract_partial(monitor.read_bytes())
    assert kind == "early-discussion"
    assert known["meeting_date"] == "04/11/2025"
    assert known["pupil.legal_surname"] == "Hart"
    with pytest.raises(Exception, match="must be filled in"):
        extract(monitor.read_bytes(), name="m.docx")


def test_files_are_stored_as_they_are_on_postgresql(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    """The original forms and the documents are zip files already: PostgreSQL keeps them out of
    line without trying to compress them again (migration 0009), which halved the time to store
    each one. Read back, they are the same bytes."""
    if not cfg.database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting; SQLite stores values as they are")
    data = filled("early-discussion", values("early-discussion"))
    pipeline.process_file(drop(tmp_path, "a.docx", data))
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        storage = dict(
            conn.execute(
                text(
                    "SELECT attrelid::regclass::text || '.' || attname, attstorage FROM pg_attribute "
                    "WHERE (attrelid, attname) IN (('received_forms'::regclass, 'original'), "
                    "('documents'::regclass, 'content'))"
                )
            ).all()
        )
        assert storage == {"received_forms.original": "e", "documents.content": "e"}
        assert conn.execute(select(t.ReceivedForm.original)).scalar_one() == data
    engine.dispose()
