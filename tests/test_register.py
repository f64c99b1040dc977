"""The SEND register (issue 11.2): its XLSX and CSV in the outbox, the census check, meetings counted
in the school year; and the register written once per batch, never behind the archive (11.6, 14.3)."""

from __future__ import annotations

import csv
import io
import os
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import create_engine, func, select, update

import senforms.archive.register as register_module
from senforms.archive import tables as t
from senforms.archive.register import REGISTER_PATH, REGISTER_XLSX_PATH, Row, census_problems, read_register
from senforms.cli import main
from senforms.config import Settings, load_settings
from senforms.pipeline import Pipeline, process_files
from senforms.year.round import RoundReport, run_round
from tests.pipeline_helpers import drop, filled, pupil_upn, values
from tests.test_pipeline import archive_url  # noqa: F401 (a fixture)

TODAY = "2026-11-22"


@pytest.fixture
def cfg(home: Path, archive_url: str | None) -> Settings:  # noqa: F811 (the fixture imported above)
    return load_settings(home, archive_url=archive_url, today=TODAY)


def early(serial: int, surname: str, **changes: object) -> bytes:
    pupil = {"upn": pupil_upn(serial), "legal_surname": surname}
    return filled("early-discussion", values("early-discussion", pupil=pupil, **changes))


def meeting(serial: int, surname: str, held: str) -> bytes:
    pupil = {"upn": pupil_upn(serial), "legal_surname": surname}
    return filled("parent-meeting", values("parent-meeting", pupil=pupil, meeting_date=held, next_meeting_date=None))


def csv_rows(cfg: Settings) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((cfg.outbox / REGISTER_PATH).read_text(encoding="utf-8-sig"))))


def undelivered_versions(cfg: Settings) -> int:
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count())
            .select_from(t.Document)
            .where(t.Document.template == "register", t.Document.delivered_at.is_(None))
        ).scalar_one()
    engine.dispose()
    return n


def test_the_register_is_in_the_outbox_as_xlsx_and_csv_right_after_a_batch(
    cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    real = register_module.xlsx_bytes
    monkeypatch.setattr(register_module, "xlsx_bytes", lambda rows, today: written.append(len(rows)) or real(rows, today))
    paths = [
        drop(tmp_path, "a.docx", early(1, "Hart")),
        drop(tmp_path, "b.docx", early(2, "Ahmed")),
        drop(tmp_path, "c.docx", early(3, "Zeller")),
        # Monitor only: not on the register.
        drop(tmp_path, "d.docx", early(4, "Moss", decision="monitor", primary_need=None, secondary_need=None)),
        drop(tmp_path, "e.docx", meeting(1, "Hart", "2026-10-05")),
    ]
    report = process_files(paths, cfg)
    assert not report.set_aside and not report.waiting, report
    # Three forms changed the register; it was written once, for the batch, with all three.
    assert written == [3]
    assert undelivered_versions(cfg) == 0
    assert [r["UPN"] for r in csv_rows(cfg)] == [pupil_upn(2), pupil_upn(1), pupil_upn(3)]  # by surname

    book = openpyxl.load_workbook(cfg.outbox / REGISTER_XLSX_PATH)
    assert book.sheetnames == ["SEND register", "Census check"]
    sheet = book["SEND register"]
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["A"].width == 15
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert header[:3] == ("UPN", "Legal surname", "Legal first name") and len(body) == 3
    hart = dict(zip(header, next(r for r in body if r[0] == pupil_upn(1)), strict=True))
    assert hart["Preferred first name"] == "Millie" and hart["Year"] == "4" and hart["Class"] == "Willow"
    assert (hart["SEN provision"], hart["Primary need"], hart["Secondary need"]) == ("K", "SPLD", "SEMH")
    assert hart["Broad area of need"] == "Cognition and learning"
    # Real Excel dates, shown the British way.
    assert hart["Date added"] == datetime(2025, 10, 7)
    assert sheet.cell(row=2, column=header.index("Date added") + 1).number_format == "dd/mm/yyyy"
    # The school year 2026-27: the meeting of 5 October 2026 counts, the early discussion of 2025 does not.
    assert hart["Last meeting with parents"] == datetime(2026, 10, 5)
    assert hart["Meetings this school year"] == 1
    assert list(book["Census check"].iter_rows(values_only=True))[1][3].startswith("No census problems")


def test_a_form_that_leaves_the_status_as_it_was_still_brings_the_pupils_row_up_to_date(
    cfg: Settings, tmp_path: Path
) -> None:
    """A plan, a review or a meeting changes a pupil's row of the register (plan, next review,
    meetings) without changing their SEN status, so no register version records it; the outbox's
    register is written again all the same, in a batch and form by form. It was left as it was
    until some other pupil's status changed."""
    assert process_files([drop(tmp_path, "early.docx", early(1, "Hart"))], cfg).exit_code == 0
    (row,) = csv_rows(cfg)
    assert (row["Plan cycle"], row["Next review"], row["Last meeting with parents"]) == ("", "", "2025-10-07")

    assert process_files([drop(tmp_path, "meeting.docx", meeting(1, "Hart", "2026-10-05"))], cfg).exit_code == 0
    (row,) = csv_rows(cfg)
    assert (row["Last meeting with parents"], row["Meetings this school year"]) == ("2026-10-05", "1")

    plan = values("support-plan", pupil={"upn": pupil_upn(1), "legal_surname": "Hart"})
    with Pipeline(cfg) as pipeline:  # form by form, as a single process_file caller expects
        done = pipeline.process_file(drop(tmp_path, "plan.docx", filled("support-plan", plan)))
        assert any(p.name == "SEND register.csv" for p in done.documents)
        (row,) = csv_rows(cfg)
        assert (row["Plan cycle"], row["Plan date"], row["Next review"]) == ("1", "2025-11-04", "2026-02-10")
    assert undelivered_versions(cfg) == 0


def test_meetings_are_counted_within_the_school_year_only(cfg: Settings, tmp_path: Path) -> None:
    forms = [early(1, "Hart"), meeting(1, "Hart", "2026-06-10"), meeting(1, "Hart", "2026-09-15")]
    assert process_files([drop(tmp_path, f"{i}.docx", data) for i, data in enumerate(forms)], cfg).exit_code == 0
    out = tmp_path / "register.csv"
    archive = ["--archive", cfg.database_url]
    seen = {}
    for today in ("2026-07-01", "2026-09-01", "2026-10-01"):
        assert main(["--home", str(cfg.home), *archive, "--today", today, "register", "-o", str(out)]) == 0
        (row,) = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")))
        seen[today] = (row["Meetings this school year"], row["Last meeting with parents"])
    assert seen == {
        # 1 September 2025 to 31 August 2026: the early discussion (7 October 2025) and 10 June 2026.
        "2026-07-01": ("2", "2026-06-10"),
        # A new school year: nothing yet; the meeting of 15 September has not happened on the 1st.
        "2026-09-01": ("0", "2026-06-10"),
        "2026-10-01": ("1", "2026-09-15"),
    }


def row(provision: str, primary: str | None, secondary: str | None) -> Row:
    return Row("H801200001001", "Hart", "Amelia", None, None, "4", None, provision, primary, secondary,
               date(2025, 10, 7), None, None, None, None, 0)  # fmt: skip


@pytest.mark.parametrize(
    ("provision", "primary", "secondary", "expected"),
    [
        ("K", "SPLD", "SEMH", []),
        ("K", "NSA", None, []),
        ("E", "ASD", None, []),
        ("K", None, None, ["has SEN support (K) but no primary need; the census needs a need code"]),
        ("E", None, None, ["has an EHC plan (E) but no primary need; the census needs a need code"]),
        ("E", "NSA", None, ["has need NSA with an EHC plan (E); NSA is allowed only with SEN support (K)"]),
        ("K", "MLD", "SEMH, ASD", ["has 2 secondary needs (SEMH, ASD); the census takes at most one"]),
        ("K", "SEMH", "SEMH", ["has SEMH as both primary and secondary need; the secondary must be different"]),
        ("K", "DYS", None, ["has primary need 'DYS', which is not a census need code"]),
    ],
)
def test_each_census_rule_is_caught_in_plain_words(
    provision: str, primary: str | None, secondary: str | None, expected: list[str]
) -> None:
    assert census_problems(row(provision, primary, secondary)) == expected


def test_the_census_check_is_printed_and_in_the_xlsx(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    process_files([drop(tmp_path, "a.docx", early(1, "Hart")), drop(tmp_path, "b.docx", early(2, "Ahmed"))], cfg)
    # The archive says what no form allows today (an old import, a hand edit): the check must see it.
    engine = create_engine(cfg.database_url)
    with engine.begin() as conn:
        hart = conn.execute(select(t.Pupil.id).where(t.Pupil.upn == pupil_upn(1))).scalar_one()
        conn.execute(update(t.SenStatus).where(t.SenStatus.pupil_id == hart).values(secondary_need="SPLD"))
    engine.dispose()
    out = tmp_path / "register.xlsx"
    code = main(["--home", str(cfg.home), "--archive", cfg.database_url, "--today", TODAY, "register", "-o", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    line = (
        f"{pupil_upn(1)} Hart, Amelia (year 4): has SPLD as both primary and secondary need; "
        "the secondary must be different."
    )
    assert "SEND register on 22/11/2026: 2 pupils (2 on SEN support (K), 0 with an EHC plan (E))." in printed
    assert "Census check: 1 problem to put right" in printed and f"  {line}" in printed
    assert pupil_upn(2) not in printed.split("Census check")[1]
    census = list(openpyxl.load_workbook(out)["Census check"].iter_rows(values_only=True))
    assert census[1] == (pupil_upn(1), "Hart, Amelia", "4", line.split(": ", 1)[1].rstrip("."))
    assert read_register(cfg.database_url, date(2026, 11, 22)).census == [line]


def ended(serial: int, surname: str, reason: str) -> list[tuple[str, bytes]]:
    """A pupil's early discussion, plan and a review that ends SEN support for ``reason``."""
    pupil = {"upn": pupil_upn(serial), "legal_surname": surname}
    plan = values("support-plan", pupil=pupil)
    review = values(
        "review",
        pupil=pupil,
        decision="end",
        end_reason=reason,
        next_steps="The council's plan sets out the help from now on.",
        next_review_date=None,
    )
    return [
        (f"{serial} early.docx", early(serial, surname)),
        (f"{serial} plan.docx", filled("support-plan", plan)),
        (f"{serial} review.docx", filled("review", review)),
    ]


def test_support_ended_for_an_ehc_plan_keeps_the_pupil_on_the_register_as_e(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_pipeline import docx_text

    with Pipeline(cfg) as pipeline:
        for name, data in [*ended(1, "Hart", "ehc-plan"), *ended(2, "Ahmed", "progress")]:
            done = pipeline.process_file(drop(tmp_path, name, data))
            assert done.status == "processed", done
    # Moving to an EHC plan: on the register with provision E and the same need codes; enough
    # progress: off the register (N).
    [hart] = csv_rows(cfg)
    assert hart["UPN"] == pupil_upn(1)
    assert (hart["SEN provision"], hart["Primary need"], hart["Secondary need"]) == ("E", "SPLD", "SEMH")
    book = openpyxl.load_workbook(cfg.outbox / REGISTER_XLSX_PATH)
    rows = list(book["SEND register"].iter_rows(values_only=True))
    assert [(r[0], r[rows[0].index("SEN provision")]) for r in rows[1:]] == [(pupil_upn(1), "E")]
    assert list(book["Census check"].iter_rows(values_only=True))[1][3].startswith("No census problems")
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        statuses = conn.execute(
            select(t.Pupil.upn, t.SenStatus.provision, t.SenStatus.primary_need, t.SenStatus.end_date)
            .join(t.Pupil, t.Pupil.id == t.SenStatus.pupil_id)
            .order_by(t.Pupil.upn, t.SenStatus.start_date)
        ).all()
    engine.dispose()
    now = {upn: (provision, need) for upn, provision, need, end in statuses if end is None}
    assert now == {pupil_upn(1): ("E", "SPLD"), pupil_upn(2): ("N", None)}
    # The register command and its census check accept the E pupil.
    assert main(["--home", str(cfg.home), "--archive", cfg.database_url, "--today", TODAY, "register"]) == 0
    printed = capsys.readouterr().out
    assert "1 pupil (0 on SEN support (K), 1 with an EHC plan (E))" in printed
    assert "Census check: 1 problem" not in printed and pupil_upn(1) not in printed.split("Census check")[-1]
    # The letter stays true: the help is in the EHC plan, and it says nothing of leaving the register.
    [letter] = cfg.outbox.glob(f"parents/Hart Amelia ({pupil_upn(1)})/* SEN support is ending.docx")
    text = docx_text(letter)
    assert "moving to an EHC plan" in text and "set out in the EHC plan" in text
    assert "comes off the school's SEN register" not in text
    [other] = cfg.outbox.glob(f"parents/Ahmed Amelia ({pupil_upn(2)})/* SEN support is ending.docx")
    assert "comes off the school's SEN register" in docx_text(other)


def test_a_register_left_pending_by_a_crash_is_written_by_the_next_run(cfg: Settings, tmp_path: Path) -> None:
    first = Pipeline(cfg, register_every=3600)
    first.process_file(drop(tmp_path, "a.docx", early(1, "Hart")))
    assert not (cfg.outbox / REGISTER_PATH).exists()  # left for the end of the batch
    first.register_pending = False  # as if the process died before the batch ended
    first.close()
    assert not (cfg.outbox / REGISTER_PATH).exists() and undelivered_versions(cfg) == 1
    # The next run (a `process`, a watcher's worker starting) writes it from the archive.
    with Pipeline(cfg) as second:
        assert second.finish_pending() == []
    assert [r["UPN"] for r in csv_rows(cfg)] == [pupil_upn(1)]
    assert undelivered_versions(cfg) == 0


def test_two_watchers_never_leave_an_older_register(cfg: Settings, tmp_path: Path) -> None:
    a, b = Pipeline(cfg, register_every=3600), Pipeline(cfg, register_every=3600)
    try:
        a.process_file(drop(tmp_path, "a.docx", early(1, "Hart")))
        b.process_file(drop(tmp_path, "b.docx", early(2, "Ahmed")))
        assert b.write_register()  # B's batch ends first: it writes both pupils, as the archive has them
        assert {r["UPN"] for r in csv_rows(cfg)} == {pupil_upn(1), pupil_upn(2)}
        assert not a.write_register()  # A's version was in B's register: nothing older is written over it
        c = drop(tmp_path, "c.docx", early(3, "Zeller"))
        a.process_file(c)
    finally:
        a.close()  # the end of A's batch
        b.close()
    assert {r["UPN"] for r in csv_rows(cfg)} == {pupil_upn(1), pupil_upn(2), pupil_upn(3)}
    assert undelivered_versions(cfg) == 0


def test_a_running_watcher_writes_the_register_when_the_inbox_goes_quiet(cfg: Settings) -> None:
    import threading

    from senforms.intake.watcher import Watcher
    from tests.test_intake import replaced, wait_for

    fast = replaced(cfg, settle_seconds=0.2, poll_seconds=0.5, seconds_per_file=60)
    watcher = Watcher(fast, log_file=False)  # the real pipeline, in its worker process
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: watcher._run_file is not None, 120), "the watcher did not start"
        drop(cfg.inbox, "a.docx", early(1, "Hart"))
        drop(cfg.inbox, "b.docx", early(2, "Ahmed"))
        # Still running: the register is written once the inbox has been quiet for a moment.
        assert wait_for(lambda: (cfg.outbox / REGISTER_XLSX_PATH).exists() and len(csv_rows(cfg)) == 2, 120)
        assert undelivered_versions(cfg) == 0
    finally:
        watcher.stop()
        thread.join(60)


def test_the_first_round_of_a_school_year_writes_the_register_again(cfg: Settings, tmp_path: Path) -> None:
    """"Meetings this school year" is counted on the day the register is written. The register
    last written in the summer said, from 1 September, that last year's meetings were this
    year's, until the next form came; the daily round now writes it again on the new year's first
    day, and only then."""
    forms = [early(1, "Hart"), meeting(1, "Hart", "2026-10-05")]
    assert process_files([drop(tmp_path, f"{i}.docx", data) for i, data in enumerate(forms)], cfg).exit_code == 0
    register = cfg.outbox / REGISTER_PATH
    (row,) = csv_rows(cfg)
    assert row["Meetings this school year"] == "1"
    summer = datetime(2027, 7, 20, 12).timestamp()
    os.utime(register, (summer, summer))

    def round_on(day: str) -> RoundReport:
        return run_round(load_settings(cfg.home, archive_url=cfg.archive_url, today=day), producers=[])

    assert register not in round_on("2027-07-21").written  # the same school year: left as it was
    assert register.stat().st_mtime == summer

    assert register in round_on("2027-09-01").written
    (row,) = csv_rows(cfg)
    assert (row["Meetings this school year"], row["Last meeting with parents"]) == ("0", "2026-10-05")
    book = openpyxl.load_workbook(cfg.outbox / REGISTER_XLSX_PATH, read_only=True)
    header, first = list(book.worksheets[0].iter_rows(max_row=2, values_only=True))
    assert dict(zip(header, first, strict=True))["Meetings this school year"] == 0
