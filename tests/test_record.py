"""One pupil's whole record (issue 12.1, 12.2, 12.5): ``senforms pupil UPN`` and its JSON, the
export zip for the next school or a subject access request, leaving, legal hold and the retention
review. Pupils are taken through real Word forms with the pipeline, a corrected form among them;
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import stat
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from senforms.archive import tables as t
from senforms.cli import main
from senforms.config import Settings
from senforms.pipeline import Pipeline
from senforms.reports.retention import add_years
from tests import test_pipeline
from tests.pipeline_helpers import complete, drop, filled, pupil_upn, values

archive_url, cfg, pipeline = test_pipeline.archive_url, test_pipeline.cfg, test_pipeline.pipeline
extract_partial = test_pipeline.extract_partial

UPN = "H801200001001"
FOLDER = "Hart Amelia (H801200001001)"


def run(cfg: Settings, *args: str) -> int:
    archive = ["--archive", cfg.database_url] if cfg.archive_url else []
    return main(["--home", str(cfg.home), *archive, *args])


def take_through_a_cycle(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> dict[str, Any]:
    """An early discussion, a corrected copy of it, the plan senforms pre-filled, and the review
    it pre-filled, each completed as in Word and processed."""
    early = values("early-discussion")
    first = filled("early-discussion", early)
    pipeline.process_file(drop(tmp_path, 'Hart: early "draft".docx', first))
    corrected = values("early-discussion", secondary_need="SLCN")
    assert pipeline.process_file(drop(tmp_path, "early corrected.docx", filled("early-discussion", corrected))).status == "corrected"
    plan_path = cfg.outbox / f"senco/{FOLDER}/2026-11-22 SEN support plan (pre-filled).docx"
    plan = values("support-plan", pupil=early["pupil"])
    rest = {k: v for k, v in plan.items() if k not in ("pupil", "primary_need", "secondary_need", "cycle")}
    pipeline.process_file(drop(tmp_path, "plan.docx", complete(plan_path.read_bytes(), "support-plan", rest)))
    review_path = next(cfg.outbox.glob(f"senco/{FOLDER}/2026-11-22 Review record for *"))
    review = values("review", pupil=early["pupil"])
    review["outcomes"] = [
        {"description": o["description"], "rating": "not-achieved" if i == 0 else "partly", "evidence": f"Evidence {i}."}
        for i, o in enumerate(plan["outcomes"])
    ]
    review_rest = {k: v for k, v in review.items() if k not in ("pupil", "cycle", "plan_date", "provision")}
    review_rest["decision"] = "continue"
    pipeline.process_file(drop(tmp_path, "review.docx", complete(review_path.read_bytes(), "review", review_rest)))
    return {"early": early, "plan": plan, "review": review}


def test_the_history_in_date_order_with_corrections_and_ratings(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forms = take_through_a_cycle(cfg, pipeline, tmp_path)
    capsys.readouterr()
    assert run(cfg, "pupil", UPN.lower()) == 0
    out = capsys.readouterr().out
    assert out.startswith("Amelia Hart (known as Millie), UPN H801200001001")
    assert "Parent or carer: Joanna Hart (Mother)" in out
    assert "On SEN support since 07/10/2025 (need SPLD, SEMH)" in out
    assert "Retention: review for destruction on 14/02/2047: date of birth 14/02/2016 plus 31 years" in out
    # Dated lines are in date order; the corrected form comes after the one it replaced.
    dates = [date(int(y), int(m), int(d)) for d, m, y in re.findall(r"^(\d\d)/(\d\d)/(\d{4})  ", out, re.M)]
    assert dates == sorted(dates) and len(dates) >= 10
    superseded = out.index("Early discussion note (superseded)")
    assert "Replaced by a corrected form received" in out[superseded:]
    assert superseded < out.index("Corrects the form received") < out.index("SEN support plan, cycle 1")
    assert out.index("SEN support plan, cycle 1") < out.index("SEN support review record, cycle 1")
    outcome = forms["plan"]["outcomes"][0]["description"]
    assert f"Outcome 1, {outcome}: Not achieved (evidence: Evidence 0.)" in out
    assert "Decision: Continue the plan" in out
    assert "Provision: " + forms["plan"]["provision"][0]["what"] in out
    assert "To parents: Formal notification of SEN support (corrected)" in out
    assert f"parents/{FOLDER}/2026-11-22 Formal notification of SEN support.docx (delivered " in out


def test_the_record_as_json(cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forms = take_through_a_cycle(cfg, pipeline, tmp_path)
    capsys.readouterr()
    assert run(cfg, "--today", "2026-12-01", "pupil", UPN, "--json") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["schema"] == "senforms.pupil-record/1" and record["as_of"] == "2026-12-01"
    assert record["pupil"]["upn"] == UPN and record["pupil"]["date_of_birth"] == "2016-02-14"
    assert record["status"] | {} == record["status"] and record["status"]["sen_provision"] == "K"
    assert record["status"]["sen_support_since"] == "2025-10-07" and record["status"]["legal_hold"] is None
    kinds = [(f["kind"], f["current"]) for f in record["forms"]]
    assert kinds == [("early-discussion", False), ("early-discussion", True), ("support-plan", True), ("review", True)]
    old, new = record["forms"][0], record["forms"][1]
    assert old["superseded_by"] == new["id"] and new["corrects"] == [old["id"]]
    assert new["decision"] == "sen-support" and record["forms"][3]["decision"] == "continue"
    [cycle] = record["cycles"]
    assert cycle["decision"] == "continue" and len(cycle["outcomes"]) == len(forms["plan"]["outcomes"])
    ratings = [[r["rating"] for r in o["ratings"]] for o in cycle["outcomes"]]
    assert ratings[0] == ["not-achieved"] and ratings[1] == ["partly"]
    assert cycle["outcomes"][0]["ratings"][0]["evidence"] == "Evidence 0."
    assert cycle["provision"][0]["what"] == forms["plan"]["provision"][0]["what"]
    assert all(re.fullmatch(r"\d+\.\d\d", p["weekly_cost"]) for p in cycle["provision"] if p["weekly_cost"])
    audiences = {d["audience"] for d in record["documents"]}
    assert audiences == {"parents", "senco", "staff"}
    assert all(d["delivered_at"] and d["path"] for d in record["documents"])
    # Times carry their offset, as the README says, on SQLite (which drops it) as on PostgreSQL.
    assert all(datetime.fromisoformat(d["delivered_at"]).utcoffset() is not None for d in record["documents"])
    assert [m["kind"] for m in record["meetings"]] == ["early-discussion", "support-plan", "review"]
    history = [e["on"] for e in record["history"]]
    assert history == sorted(history)


def test_the_export_holds_every_form_and_document_as_it_was(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    take_through_a_cycle(cfg, pipeline, tmp_path)
    target = tmp_path / "out" / "export.zip"
    assert run(cfg, "export", UPN, "-o", str(target)) == 0
    assert f"Wrote {target}: 4 forms and " in capsys.readouterr().out
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        originals = conn.execute(select(t.ReceivedForm.original_name, t.ReceivedForm.original)).all()
        # The SEND register is the school's, not the pupil's: it has no pupil.
        documents = conn.execute(select(t.Document.title, t.Document.content).where(t.Document.pupil_id.is_not(None))).all()
        exported = conn.execute(select(t.Event.upn, t.Event.detail).where(t.Event.action == "exported")).all()
    engine.dispose()
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        hashes = {hashlib.sha256(z.read(n)).hexdigest(): n for n in names}
        index = list(csv.DictReader(io.StringIO(z.read("index.csv").decode("utf-8-sig"))))
        summary = z.read("Summary.txt").decode("utf-8-sig")
        record = json.loads(z.read("record.json"))
    # Every original form and every document, byte for byte, each once.
    for _name, data in [*originals, *documents]:
        assert hashlib.sha256(data).hexdigest() in hashes
    assert len(names) == len(originals) + len(documents) + 3
    # The original names, made safe for Windows.
    forms = sorted(n for n in names if n.startswith("Forms/"))
    assert forms[0] == "Forms/01 Hart early draft.docx"
    assert not any(re.search(r'[<>:"\\|?*]', n) for n in names)
    # The index says what each file is, when, for whom, and its hash.
    assert len(index) == len(originals) + len(documents)
    by_file = {row["File"]: row for row in index}
    assert by_file[forms[0]]["Notes"].startswith("replaced by a corrected form")
    assert by_file[forms[1]]["Notes"].startswith("a correction of an earlier form")
    assert {row["For"] for row in index if row["What it is"].startswith("Document")} == {"parents", "the SENCO", "staff"}
    assert all(hashes[row["SHA-256"]] == row["File"] for row in index)
    assert "The SEN record of Amelia Hart, UPN H801200001001" in summary and "Not achieved" in summary
    assert record["pupil"]["upn"] == UPN
    # The export is in the event log, by UPN only.
    [(upn, detail)] = exported
    assert upn == UPN and "4 forms" in detail and "Hart" not in detail and "Amelia" not in detail
    # A second export never overwrites the first.
    assert run(cfg, "export", UPN, "-o", str(target)) == 0
    assert (tmp_path / "out" / "export (2).zip").exists()


def test_leaving_passing_the_file_on_and_a_legal_hold(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    capsys.readouterr()
    assert run(cfg, "pupil", UPN, "--left", "20/07/2026", "--to", "Elm  Academy") == 0
    assert "UPN H801200001001: left on 20/07/2026 to Elm Academy." in capsys.readouterr().out
    assert run(cfg, "pupil", UPN) == 0
    assert "Left on 20/07/2026 to Elm Academy; the file has not been passed on yet" in capsys.readouterr().out
    # Not due yet: the file was not passed on, so this school keeps it to 31 years.
    assert run(cfg, "--today", "2026-09-01", "retention") == 0
    assert "No records are due for review on 01/09/2026." in capsys.readouterr().out

    assert run(cfg, "pupil", UPN, "--passed-on") == 0
    capsys.readouterr()
    assert run(cfg, "--today", "2026-09-01", "retention") == 0
    out = capsys.readouterr().out
    assert "1 record due for review" in out
    assert "review 20/07/2026  H801200001001  Amelia Hart: the file was passed on to Elm Academy on 20/07/2026" in out

    assert run(cfg, "pupil", UPN, "--hold", "Insurance claim about Amelia, letter of 3 May 2026") == 0
    capsys.readouterr()
    assert run(cfg, "pupil", UPN) == 0
    assert "LEGAL HOLD: Insurance claim about Amelia" in capsys.readouterr().out
    assert run(cfg, "--today", "2026-09-01", "retention") == 0
    out = capsys.readouterr().out
    assert "(1 on legal hold)" in out and "HELD   20/07/2026  H801200001001" in out
    assert "legal hold: Insurance claim about Amelia" in out

    assert run(cfg, "pupil", UPN, "--release-hold", "--json") == 0
    out, err = capsys.readouterr()
    assert "legal hold released" in err
    status = json.loads(out)["status"]
    assert status["legal_hold"] is None and status["file_passed_on"] is True
    assert (status["left_on"], status["left_to"]) == ("2026-07-20", "Elm Academy")
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        events = conn.execute(
            select(t.Event.upn, t.Event.action, t.Event.detail).where(
                t.Event.action.in_(["left", "legal hold", "hold released"])
            ).order_by(t.Event.id)
        ).all()
    engine.dispose()
    assert [(e.upn, e.action) for e in events] == [
        (UPN, "left"), (UPN, "left"), (UPN, "legal hold"), (UPN, "hold released")
    ]
    assert not any("Amelia" in e.detail for e in events)  # the hold's reason stays out of the log


def test_retention_lists_those_past_the_age_oldest_first(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from senforms.pipeline import process_files

    today = date(2047, 3, 1)
    ages = {pupil_upn(1): 32, pupil_upn(2): 30, pupil_upn(3): 33}
    for n, upn in enumerate(ages, 1):
        data = values("early-discussion", pupil={"upn": upn, "legal_forename": f"Child{'ABC'[n - 1]}"})
        report = process_files([drop(cfg.inbox, f"{n}.docx", filled("early-discussion", data))], cfg)
        assert report.set_aside == []
    # The forms' pupils were born in 2016; the archive is corrected to the ages wanted, as
    # ``pupil fix`` would after checking the school's records.
    for upn, age in ages.items():
        born = add_years(date(2047, 2, 1), -age)
        assert run(cfg, "pupil", "fix", upn, "--date-of-birth", born.strftime("%d/%m/%Y")) == 0
    assert run(cfg, "pupil", pupil_upn(1), "--hold", "Subject of an inquiry") == 0
    capsys.readouterr()
    assert run(cfg, "--today", today.isoformat(), "retention") == 0
    out = capsys.readouterr().out
    assert "2 records due for review for destruction on 01/03/2047" in out and "(1 on legal hold)" in out
    assert pupil_upn(2) not in out
    assert out.index(pupil_upn(3)) < out.index(pupil_upn(1))  # oldest first
    assert f"HELD   01/02/2046  {pupil_upn(1)}  ChildA Hart" in out
    assert f"review 01/02/2045  {pupil_upn(3)}  ChildC Hart: date of birth 01/02/2014 plus 31 years" in out


def test_plain_messages_and_exit_codes(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    absent = pupil_upn(77)
    cases = [
        (("pupil", absent), 6, f"No pupil with UPN {absent} is in the archive."),
        (("export", absent, "-o", str(tmp_path / "x.zip")), 6, f"No pupil with UPN {absent} is in the archive."),
        (("pupil", "hello"), 2, "hello is not a UPN; a UPN is 13 characters"),
        (("pupil", UPN, "--left", "31/02/2026", "--to", "Elm"), 2, "--left: 31/02/2026 is not a real date"),
        (("pupil", UPN, "--passed-on"), 2, "--passed-on needs the pupil to have left"),
        (("pupil", UPN, "--to", "Elm"), 2, "--to goes with --left"),
        (("pupil", UPN, "--release-hold"), 2, "has no legal hold to release"),
    ]
    for args, code, message in cases:
        assert run(cfg, *args) == code, args
        err = capsys.readouterr().err
        assert message in err and "What to do:" in err and "Traceback" not in err, err
    assert not (tmp_path / "x.zip").exists()
    # Nothing half-done: a bad date with a good hold changes neither.
    assert run(cfg, "pupil", UPN, "--left", "soon", "--hold", "Inquiry") == 2
    capsys.readouterr()
    assert run(cfg, "pupil", UPN) == 0
    assert "LEGAL HOLD" not in capsys.readouterr().out


def test_pupil_fix_still_works_beside_the_record(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    capsys.readouterr()
    assert run(cfg, "pupil", "fix", UPN, "--upn", pupil_upn(9)) == 0
    assert f"UPN {pupil_upn(9)}: UPN changed from {UPN} to {pupil_upn(9)}." in capsys.readouterr().out
    # The record is found by the new UPN and by the former one, and shows the fix.
    assert run(cfg, "pupil", UPN) == 0
    out = capsys.readouterr().out
    assert f"UPN {pupil_upn(9)} (formerly {UPN})" in out and "Pupil fixed: UPN changed" in out
    with pytest.raises(SystemExit):
        main(["pupil", "fix", UPN, "--json"])  # the record's options are not fix's
    assert "unrecognized arguments: --json" in capsys.readouterr().err


def test_a_record_is_read_in_a_fixed_number_of_queries(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    """No query per form, outcome or document: a long record costs no more round trips than a
    short one, which is what keeps it fast in a large archive."""
    from sqlalchemy import event

    from senforms.archive.store import Archive
    from senforms.reports.record import read_record

    take_through_a_cycle(cfg, pipeline, tmp_path)
    short = values("early-discussion", pupil={"upn": pupil_upn(5), "legal_forename": "Noah"})
    pipeline.process_file(drop(tmp_path, "noah.docx", filled("early-discussion", short)))
    archive = Archive(cfg.database_url)
    counts = []
    for upn in (UPN, pupil_upn(5)):
        statements: list[str] = []

        def listener(*args: Any, statements: list[str] = statements) -> None:
            statements.append(args[2])  # (connection, cursor, statement, ...)

        event.listen(archive.engine, "before_cursor_execute", listener)
        with archive.reading() as session:
            record = read_record(session, upn, settings=cfg)
        event.remove(archive.engine, "before_cursor_execute", listener)
        counts.append(len(statements))
        assert record.upn == upn
    archive.close()
    assert counts[0] == counts[1] <= 12, counts


def test_retention_dates() -> None:
    from senforms.reports.retention import retention_of

    assert add_years(date(2016, 2, 29), 31) == date(2047, 2, 28)
    kept = retention_of(date(2016, 2, 14), 31, left_on=None, left_to=None, file_passed_on=False, hold_reason=None, today=date(2047, 2, 13))
    assert (kept.review_on, kept.due) == (date(2047, 2, 14), False)
    left = retention_of(date(2016, 2, 14), 31, left_on=date(2026, 7, 20), left_to="Elm", file_passed_on=False, hold_reason=None, today=date(2026, 9, 1))
    assert left.review_on == date(2047, 2, 14) and "has not been marked as passed on" in left.reason
    passed = retention_of(date(2016, 2, 14), 31, left_on=date(2026, 7, 20), left_to="Elm", file_passed_on=True, hold_reason="Inquiry", today=date(2026, 9, 1))
    assert (passed.review_on, passed.due, passed.held) == (date(2026, 7, 20), True, True)
    assert "HELD (Inquiry)" in passed.sentence()


def test_a_new_school_without_passed_on_is_not_said_to_have_the_file(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file went to Elm Academy; the leaving is then corrected to Birch School without
    --passed-on. Nothing may say the file was passed on to Birch School: it never went there."""
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    assert run(cfg, "pupil", UPN, "--left", "20/07/2026", "--to", "Elm Academy", "--passed-on") == 0
    capsys.readouterr()
    assert run(cfg, "pupil", UPN, "--left", "21/07/2026", "--to", "Birch School") == 0
    out = capsys.readouterr().out
    assert "left on 21/07/2026 to Birch School" in out
    assert 'the earlier "file passed on to Elm Academy" no longer applies' in out
    assert run(cfg, "pupil", UPN) == 0
    out = capsys.readouterr().out
    assert "Left on 21/07/2026 to Birch School; the file has not been passed on yet" in out
    assert "passed on to Birch" not in out
    assert run(cfg, "--today", "2026-09-01", "retention") == 0
    out = capsys.readouterr().out
    assert "No records are due for review on 01/09/2026." in out and "Birch" not in out
    # The same school again (or no school named) changes nothing about the file.
    assert run(cfg, "pupil", UPN, "--passed-on") == 0
    assert "file passed on to Birch School" in capsys.readouterr().out
    assert run(cfg, "pupil", UPN, "--left", "22/07/2026", "--to", "birch  SCHOOL") == 0
    assert "no longer applies" not in capsys.readouterr().out
    assert run(cfg, "pupil", UPN, "--left", "22/07/2026") == 0
    capsys.readouterr()
    assert run(cfg, "pupil", UPN, "--json") == 0
    status = json.loads(capsys.readouterr().out)["status"]
    assert (status["left_on"], status["left_to"], status["file_passed_on"]) == ("2026-07-22", "birch SCHOOL", True)


def test_a_leaving_date_in_the_future_or_before_birth_is_refused(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pupil cannot have left after today (as --today has it) nor before they were born: the
    office is told what is wrong and what to do, and nothing is recorded."""
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    capsys.readouterr()
    assert run(cfg, "--today", "2026-11-23", "pupil", UPN, "--left", "24/11/2026", "--to", "Elm", "--passed-on") == 2
    err = capsys.readouterr().err
    assert "--left: 24/11/2026 is after today (23/11/2026)" in err, err
    assert "What to do: Enter the date once the pupil has left" in err and "Traceback" not in err
    assert values("early-discussion")["pupil"]["date_of_birth"] == "2016-02-14"
    assert run(cfg, "--today", "2026-11-23", "pupil", UPN, "--left", "01/01/2015") == 2
    err = capsys.readouterr().err
    assert "--left: 01/01/2015 is before the pupil's date of birth (14/02/2016)" in err, err
    assert "What to do:" in err
    # Nothing was recorded by either refusal ...
    assert run(cfg, "pupil", UPN, "--json") == 0
    status = json.loads(capsys.readouterr().out)["status"]
    assert (status["left_on"], status["left_to"], status["file_passed_on"]) == (None, None, False)
    # ... and today itself is a date a pupil can leave on.
    assert run(cfg, "--today", "2026-11-23", "pupil", UPN, "--left", "23/11/2026", "--to", "Elm") == 0
    assert "left on 23/11/2026 to Elm" in capsys.readouterr().out
