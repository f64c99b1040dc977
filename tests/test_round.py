"""The daily round (issue 11.3): review records issued ``review_notice_days`` before the review,
never twice; overdue reviews listed; the SENCO's weekly digest. Time is moved with
``load_settings(today=...)`` and ``--today``. Runs on SQLite and, when SENFORMS_TEST_POSTGRES_URL
is set, on PostgreSQL."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import docx
import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import Session

from senforms import outbox as outbox_module
from senforms.archive import tables as t
from senforms.archive.store import Archive
from senforms.cli import main
from senforms.config import Settings, load_settings
from senforms.documents import Due, Rendered
from senforms.intake import Watcher
from senforms.pipeline import Pipeline
from senforms.year.digest import digest_key, weekly_digest
from senforms.year.reviews import reviews_due
from senforms.year.round import PRODUCERS as ALL_PRODUCERS
from senforms.year.round import run_round
from tests.pipeline_helpers import drop, filled, pupil_upn, values
from tests.test_pipeline import archive_url, extract_partial  # noqa: F401  (archive_url: the sqlite/postgresql fixture)

OTHER = pupil_upn(7)
FILED = date(2026, 11, 22)  # the day the plan is filed
REVIEW = FILED + timedelta(days=60)  # its review date
UPN = "H801200001001"
FOLDER = f"Hart Amelia ({UPN})"


@pytest.fixture(autouse=True)
def reviews_and_digest_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests count what the round issues for reviews and the digest; the annual report and
    the provision map have their own tests (tests/test_annual.py, tests/test_evidence.py)."""
    import senforms.year.round

    monkeypatch.setattr(senforms.year.round, "PRODUCERS", [reviews_due, weekly_digest])


@pytest.fixture
def cfg(home: Path, archive_url: str | None) -> Settings:  # noqa: F811
    return load_settings(home, archive_url=archive_url, today=FILED.isoformat())


def on(settings: Settings, day: date) -> Settings:
    """The same home and archive, a later day (as ``--today`` gives it)."""
    return load_settings(settings.home, archive_url=settings.archive_url, today=day.isoformat())


def with_notice(settings: Settings, days: int) -> Settings:
    toml = settings.home / "senforms.toml"
    text = toml.read_text(encoding="utf-8").replace("review_notice_days = 14", f"review_notice_days = {days}")
    toml.write_text(text, encoding="utf-8")
    return load_settings(settings.home, archive_url=settings.archive_url, today=FILED.isoformat())


def early() -> dict:
    return values("early-discussion", meeting_date="2026-10-07", next_meeting_date="2026-11-04")


def plan(review: date = REVIEW, **changes: object) -> dict:
    return values("support-plan", pupil=early()["pupil"], plan_date="2026-11-04", review_date=review.isoformat(), **changes)


def file_forms(settings: Settings, tmp_path: Path, *forms: tuple[str, dict]) -> None:
    with Pipeline(settings) as pipeline:
        for i, (kind, data) in enumerate(forms):
            pipeline.process_file(drop(tmp_path, f"{i} {kind}.docx", filled(kind, data)))


def review_records(settings: Settings) -> list[Path]:
    return sorted(settings.outbox.glob(f"senco/{FOLDER}/* Review record for *"))


def digests(settings: Settings) -> list[Path]:
    return sorted(settings.outbox.glob("senco/* Weekly digest *.docx"))


def issued(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        keys = list(conn.execute(select(t.Issued.key).order_by(t.Issued.key)).scalars())
    engine.dispose()
    return keys


def test_a_review_record_comes_notice_days_before_its_review_and_once(cfg: Settings, tmp_path: Path) -> None:
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))
    assert review_records(cfg) == []  # 60 days away: not with the plan
    assert run_round(cfg).issued == [digest_key(FILED)]
    assert review_records(cfg) == []
    # The day before the notice: still nothing.
    assert run_round(on(cfg, REVIEW - timedelta(days=15))).issued == [digest_key(REVIEW - timedelta(days=15))]
    assert review_records(cfg) == []
    # 14 days before: the review record, pre-filled from the plan, dated that day.
    notice_day = on(cfg, REVIEW - timedelta(days=14))
    report = run_round(notice_day)
    assert len(report.issued) == 1 and report.issued[0].startswith("review-record:pupil:")
    [record] = review_records(cfg)
    assert record.name == f"{REVIEW - timedelta(days=14)} Review record for {REVIEW.day} {REVIEW:%B %Y} (pre-filled).docx"
    known, kind = extract_partial(record.read_bytes())
    assert (kind, known["cycle"], known["review_date"]) == ("review", "1", f"{REVIEW:%d/%m/%Y}")
    assert known["outcomes.0.description"] == plan()["outcomes"][0]["description"]
    # Again, the same day and every day after: nothing more.
    assert run_round(notice_day).issued == []
    assert run_round(on(cfg, REVIEW - timedelta(days=13))).issued == []
    assert run_round(on(cfg, REVIEW + timedelta(days=3))).issued == [digest_key(REVIEW + timedelta(days=3))]
    assert len(review_records(cfg)) == 1
    assert sum(k.startswith("review-record:") for k in issued(cfg)) == 1


def test_the_review_record_carries_the_roll_imported_after_the_plan(cfg: Settings, tmp_path: Path) -> None:
    # The plan says Year 4, class Willow, Millie, Joanna Hart; the roll, imported after the plan
    # was filed (a new school year), says Year 5, class 5 Birch, Mia, Rachel Hart.
    from tests.test_roll import sims_roll, sims_row

    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))
    roll = tmp_path / "roll.csv"
    roll.write_bytes(sims_roll(sims_row(UPN, "Hart", "Amelia", "14/02/2016", "Year 5", "5 Birch", preferred="Mia")))
    archive = ["--archive", cfg.archive_url] if cfg.archive_url else []
    assert main(["--home", str(cfg.home), *archive, "pupils", "import", str(roll)]) == 0
    run_round(on(cfg, REVIEW - timedelta(days=14)))
    [record] = review_records(cfg)
    known, _ = extract_partial(record.read_bytes())
    assert (known["pupil.year_group"], known["pupil.class_name"], known["pupil.preferred_name"]) == (
        "Year 5",
        "5 Birch",
        "Mia",
    )
    assert known["pupil.parents.0.name"] == "Mrs Rachel Hart"
    assert "1 Mill Lane" in str(known["pupil.parents.0.address"])
    # What the plan said is what is filed: the roll changes only what is written from it.
    assert known["outcomes.0.description"] == plan()["outcomes"][0]["description"]


def test_notice_of_zero_keeps_the_review_record_with_the_plan(cfg: Settings, tmp_path: Path) -> None:
    cfg = with_notice(cfg, 0)
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))
    [record] = review_records(cfg)
    assert record.name.startswith(f"{FILED} Review record for")
    for day in (REVIEW - timedelta(days=14), REVIEW, REVIEW + timedelta(days=10)):
        run_round(on(cfg, day))
    assert review_records(cfg) == [record]


def test_a_plan_filed_within_the_notice_gets_its_review_record_at_once(cfg: Settings, tmp_path: Path) -> None:
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan(FILED + timedelta(days=10))))
    [record] = review_records(cfg)
    assert record.name.startswith(f"{FILED} Review record for")
    run_round(cfg)
    run_round(on(cfg, FILED + timedelta(days=5)))
    assert review_records(cfg) == [record]


def test_a_plan_corrected_before_the_notice_issues_the_current_plans_review_record(cfg: Settings, tmp_path: Path) -> None:
    first = plan()
    corrected = plan()
    corrected["outcomes"][0]["description"] = "Millie reads and spells the first 200 high-frequency words."
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", first), ("support-plan", corrected))
    assert review_records(cfg) == []
    run_round(on(cfg, REVIEW - timedelta(days=14)))
    [record] = review_records(cfg)
    known, _ = extract_partial(record.read_bytes())
    assert known["outcomes.0.description"] == corrected["outcomes"][0]["description"]
    # A later form (a parent meeting) rebuilds the pupil's cycles: still not issued again.
    meeting = values("parent-meeting", pupil=early()["pupil"], meeting_date=(REVIEW - timedelta(days=10)).isoformat())
    meeting.pop("next_meeting_date", None)
    file_forms(on(cfg, REVIEW - timedelta(days=10)), tmp_path, ("parent-meeting", meeting))
    run_round(on(cfg, REVIEW - timedelta(days=9)))
    assert review_records(cfg) == [record]


def test_due_lists_reviews_ahead_and_overdue(cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))
    args = ["--home", str(cfg.home), *(["--archive", cfg.archive_url] if cfg.archive_url else [])]
    assert main([*args, "--today", (REVIEW - timedelta(days=40)).isoformat(), "due"]) == 0
    out = capsys.readouterr().out
    assert "No reviews are due in the next 4 weeks." in out and "No reviews are overdue." in out
    assert main([*args, "--today", (REVIEW - timedelta(days=20)).isoformat(), "due"]) == 0
    out = capsys.readouterr().out
    assert f"{UPN}  Millie Hart, Year 4: review on {REVIEW:%d/%m/%Y} (in 20 days)" in out
    assert main([*args, "--today", (REVIEW + timedelta(days=9)).isoformat(), "due", "--weeks", "2"]) == 0
    out = capsys.readouterr().out
    assert "No reviews are due in the next 2 weeks." in out
    assert f"{UPN}  Millie Hart, Year 4: review on {REVIEW:%d/%m/%Y}, 9 days overdue" in out
    # The review is filed: no longer overdue.
    review = values(
        "review",
        pupil=early()["pupil"],
        plan_date="2026-11-04",
        review_date=(REVIEW + timedelta(days=5)).isoformat(),
        next_review_date=(REVIEW + timedelta(days=90)).isoformat(),
    )
    file_forms(on(cfg, REVIEW + timedelta(days=9)), tmp_path, ("review", review))
    assert main([*args, "--today", (REVIEW + timedelta(days=9)).isoformat(), "due"]) == 0
    assert "No reviews are overdue." in capsys.readouterr().out


def test_round_command_runs_the_round_for_today(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import senforms.year.round

    # Every producer, in this process as in the scheduled one below (a term's provision map too).
    monkeypatch.setattr(senforms.year.round, "PRODUCERS", ALL_PRODUCERS)
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))
    args = ["--home", str(cfg.home), *(["--archive", cfg.archive_url] if cfg.archive_url else [])]
    assert main([*args, "--today", (REVIEW - timedelta(days=14)).isoformat(), "round"]) == 0
    out = capsys.readouterr().out
    assert "Review record for" in out and "Weekly digest" in out
    # Again, in another process (as a scheduled task would): nothing more.
    again = subprocess.run(
        [sys.executable, "-m", "senforms", *args, "round"],
        env={**os.environ, "SENFORMS_TODAY": (REVIEW - timedelta(days=14)).isoformat()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "Nothing is owed on" in again.stdout
    assert len(review_records(cfg)) == 1 and len(digests(cfg)) == 1


def docx_text(path: Path) -> str:
    """Paragraphs and table rows in the order they are in the document."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    parts = []
    for block in document.element.body.iterchildren():
        if block.tag.endswith("}p"):
            parts.append(Paragraph(block, document).text)
        elif block.tag.endswith("}tbl"):
            parts += [" | ".join(c.text for c in row.cells) for row in Table(block, document).rows]
    return "\n".join(parts)


def test_the_weekly_digest(cfg: Settings, tmp_path: Path) -> None:
    # Millie: met at the early discussion (7 Oct) and the plan (4 Nov): two meetings this school
    # year, a review due in three weeks. Another pupil: a review overdue, three meetings.
    other_pupil = {**early()["pupil"], "upn": OTHER, "legal_forename": "Tom", "preferred_name": "Tommy"}
    other_pupil["date_of_birth"] = "2016-05-01"
    other_early = values("early-discussion", pupil=other_pupil, meeting_date="2026-09-08", next_meeting_date="2026-10-01")
    other_plan = values(
        "support-plan", pupil=other_pupil, plan_date="2026-09-15", review_date="2026-11-10", cycle=1
    )
    meeting = values("parent-meeting", pupil=other_pupil, meeting_date="2026-10-01")
    meeting.pop("next_meeting_date", None)
    today = date(2026, 11, 30)  # Monday of week 49
    cfg = on(cfg, today)
    file_forms(
        cfg,
        tmp_path,
        ("early-discussion", early()),
        ("support-plan", plan(today + timedelta(days=20))),
        ("early-discussion", other_early),
        ("support-plan", other_plan),
        ("parent-meeting", meeting),
    )
    # A form set aside this week, with the watcher's note beside it.
    cfg.problems.mkdir(exist_ok=True)
    (cfg.problems / "scan.docx").write_bytes(b"x")
    note = cfg.problems / "scan.docx.txt"
    note.write_text("This file is not a senforms form.\n\nWhat to do: use the blank form.\n", encoding="utf-8")
    noon = datetime(2026, 11, 30, 12).timestamp()
    os.utime(note, (noon, noon))
    older = cfg.problems / "old.docx.txt"  # set aside last week: not in this week's digest
    older.write_text("Set aside last week.\n", encoding="utf-8")
    os.utime(older, (noon - 4 * 86400, noon - 4 * 86400))
    report = run_round(cfg)
    assert "digest:2026-W49" in report.issued
    [digest] = digests(cfg)
    assert digest.name == "2026-11-30 Weekly digest 2026-W49.docx"
    document = docx.Document(str(digest))
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    # One font: every font named in the styles is Arial, and no theme font can stand in for it.
    styles = document.styles.element.xml
    fonts = " ".join(re.findall(r"<w:rFonts[^>]*>", styles))
    assert set(re.findall(r'w:(?:ascii|hAnsi|eastAsia|cs)="([^"]+)"', fonts)) == {"Arial"}
    assert "Theme=" not in styles and "w:cstheme" not in styles
    text = docx_text(digest)
    due_part, rest = text.split("Overdue reviews", 1)
    overdue_part, rest = rest.split("Parents met fewer than three times", 1)
    meetings_part, aside_part = rest.split("Forms set aside this week", 1)
    assert f"{UPN} | Millie Hart | 4 | {(today + timedelta(days=20)).day} December 2026" in due_part
    assert OTHER not in due_part
    assert f"{OTHER} | Tommy Hart | 4 | 10 November 2026 | 20" in overdue_part
    assert f"{UPN} | Millie Hart | 4 | 2 | 7 October 2026, 4 November 2026" in meetings_part
    assert OTHER not in meetings_part  # three meetings
    assert "scan.docx | 30 November 2026 | This file is not a senforms form." in aside_part
    assert "old.docx" not in aside_part
    # Once a week: later rounds that week issue no other digest; the next week's first does.
    run_round(on(cfg, today + timedelta(days=3)))
    assert len(digests(cfg)) == 1
    run_round(on(cfg, today + timedelta(days=7)))
    assert [d.name for d in digests(cfg)][-1] == "2026-12-07 Weekly digest 2026-W50.docx"


def test_an_outbox_that_cannot_be_written_leaves_the_due_for_the_next_round(
    cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))
    real = outbox_module.write_atomic

    def full(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outbox_module, "write_atomic", full)
    notice_day = on(cfg, REVIEW - timedelta(days=14))
    report = run_round(notice_day)
    assert report.waiting == "No space left on device" and len(report.issued) == 2
    assert review_records(cfg) == [] and digests(cfg) == []
    monkeypatch.setattr(outbox_module, "write_atomic", real)
    report = run_round(notice_day)
    assert report.issued == [] and report.waiting is None and len(report.written) == 2
    assert len(review_records(cfg)) == 1 and len(digests(cfg)) == 1


class Crash(BaseException):
    """A crash: not an Exception, so nothing on the way catches it."""


def test_a_crash_between_filing_and_writing_is_finished_by_the_next_round(cfg: Settings, tmp_path: Path) -> None:
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))

    def crash(step: str) -> None:
        if step == "filed":
            raise Crash

    notice_day = on(cfg, REVIEW - timedelta(days=14))
    with pytest.raises(Crash):
        run_round(notice_day, checkpoint=crash)
    assert review_records(cfg) == []
    run_round(notice_day)
    run_round(notice_day)
    assert len(review_records(cfg)) == 1 and len(digests(cfg)) == 1


def test_two_rounds_at_once_issue_once(cfg: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Two watchers' rounds racing for the same Due: both find it unissued, both file; the
    archive's unique key lets one through and the other moves on."""
    gate = threading.Barrier(2, timeout=30)
    content = filled("early-discussion", early())

    def racing(archive: Archive, settings: Settings, today: date) -> Iterator[Due]:
        gate.wait()
        yield Due("digest:race", None, today, [Rendered("senco", "Race", "digest", content, ".docx")])

    results: list[list[str]] = []
    caplog.set_level("INFO", logger="senforms")

    # Both rounds must be past the "already issued?" look before either writes its row: without
    # this, the first could file and commit before the second looked (a loaded machine often
    # did), and the unique key, the guard under test, was never reached.
    looked = threading.Barrier(2, timeout=30)

    def both_looked(session: Session, *_: object) -> None:
        if any(isinstance(obj, t.Issued) and obj.key == "digest:race" for obj in session.new):
            looked.wait()

    def one() -> None:
        results.append(run_round(cfg, producers=[racing]).issued)

    event.listen(Session, "before_flush", both_looked)
    try:
        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        event.remove(Session, "before_flush", both_looked)
    assert sorted(results) == [[], ["digest:race"]]
    # The loser got past the "already issued?" look and was stopped by the unique key.
    assert "another round issued it a moment ago" in caplog.text
    assert [p.name for p in cfg.outbox.glob("senco/*Race*")] == [f"{FILED} Race.docx"]
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.Document)).scalar_one() == 1
    engine.dispose()


def test_the_watcher_runs_the_round_at_start_and_a_restart_issues_nothing_more(cfg: Settings, tmp_path: Path) -> None:
    file_forms(cfg, tmp_path, ("early-discussion", early()), ("support-plan", plan()))
    notice_day = on(cfg, REVIEW - timedelta(days=14))
    for _ in range(2):
        Watcher(notice_day, isolate=False, log_file=False).run(once=True)
    assert len(review_records(cfg)) == 1 and len(digests(cfg)) == 1


class NoForms:
    """Processes no forms: the inbox stays empty in this test."""

    def __init__(self, settings: Settings) -> None:
        pass

    def __call__(self, path: Path, name: str) -> dict:
        raise AssertionError("no form was dropped")


def test_an_archive_that_cannot_be_reached_never_stops_the_watcher(home: Path) -> None:
    broken = load_settings(home, archive_url="postgresql://nobody@127.0.0.1:9/none", today=FILED.isoformat())
    watcher = Watcher(broken, isolate=False, log_file=False, factory=NoForms)
    watcher.run(once=True)  # returns: the round's failure is logged, not raised
    assert watcher._round_hold > 0 and watcher._round_day is None


def test_producers_is_a_plain_list() -> None:
    from senforms.year import round as the_round

    assert [p.__name__ for p in the_round.PRODUCERS] == ["reviews_due", "weekly_digest"]  # as patched above
    assert "provision_maps" in the_round.__dict__ and "annual_reports_as_set" in the_round.__dict__


def test_the_watcher_runs_the_round_when_the_date_changes_and_retries_a_full_outbox(
    cfg: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import senforms.year.round as round_module

    runs: list[date] = []
    real_run = round_module.run_round

    def counted(settings: Settings, **options: object):  # type: ignore[no-untyped-def]
        runs.append(options["today"])  # type: ignore[arg-type]
        return real_run(settings, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(round_module, "run_round", counted)
    watcher = Watcher(cfg, isolate=False, log_file=False, factory=NoForms)
    try:
        watcher._run_round()
        watcher._run_round()  # the same day, minutes later: not again
        assert runs == [FILED] and len(digests(cfg)) == 1
        # A full outbox on the next day: filed, not written, tried again after the pause, not at once.
        real_write = outbox_module.write_atomic

        def full(*args: object, **kwargs: object) -> Path:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(outbox_module, "write_atomic", full)
        watcher.settings = on(cfg, FILED + timedelta(days=7))
        watcher._run_round()
        watcher._run_round()
        assert runs == [FILED, FILED + timedelta(days=7)] and len(digests(cfg)) == 1
        monkeypatch.setattr(outbox_module, "write_atomic", real_write)
        watcher._round_hold = 0.0  # the pause is over
        watcher._run_round()
        assert len(digests(cfg)) == 2 and watcher._round_day == FILED + timedelta(days=7)
    finally:
        watcher._shutdown()


def test_a_trusts_digest_shows_the_most_urgent_rows_and_counts_the_rest(tmp_path: Path) -> None:
    """At 50,000 pupils the digest's tables ran to 54,000 rows (37 s to write, and unreadable):
    each table shows the first DIGEST_ROWS, most overdue first, and says how many more and where."""
    from senforms.year.digest import DIGEST_ROWS, Digest, FewMeetings, digest_docx
    from senforms.year.reviews import OpenReview

    today = date(2026, 3, 4)
    overdue = [
        OpenReview(i, f"UPN{i:05d}", f"Pupil {i}", "5", 1, today - timedelta(days=400 - i), i, 400 - i)
        for i in range(DIGEST_ROWS + 25)
    ]
    few = [FewMeetings(f"F{i:05d}", f"Child {i}", "4", []) for i in range(3 * DIGEST_ROWS)]
    (tmp_path / "digest.docx").write_bytes(digest_docx(Digest(today, [], overdue, few, [])))
    text = docx_text(tmp_path / "digest.docx")
    assert "UPN00000" in text and f"UPN{DIGEST_ROWS - 1:05d}" in text and f"UPN{DIGEST_ROWS:05d}" not in text
    assert "And 25 more, not shown here: senforms due lists them all." in text
    assert f"And {2 * DIGEST_ROWS} more, not shown here: the SEND register" in text


def test_the_status_says_when_the_round_ran_and_why_it_failed(
    cfg: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from senforms.intake.status import STATUS_NAME

    home = ["--home", str(cfg.home), *(["--archive", cfg.archive_url] if cfg.archive_url else [])]
    status_file = cfg.outbox / STATUS_NAME
    real_write = outbox_module.write_atomic

    def full(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outbox_module, "write_atomic", full)
    watcher = Watcher(cfg, isolate=False, log_file=False, factory=NoForms)
    try:
        watcher._run_round()
        text = status_file.read_text(encoding="utf-8")
        ran = re.search(r"The daily round last ran at (\d\d/\d\d/\d{4} \d\d:\d\d)\.", text)
        assert ran is not None and abs(datetime.strptime(ran[1], "%d/%m/%Y %H:%M") - datetime.now()) < timedelta(
            minutes=2
        )
        failed = re.search(r"It did not finish\. (.*) The watcher tries again at (\d\d:\d\d:\d\d)\.", text)
        assert failed is not None, text
        assert "could not be written to the outbox (No space left on device)" in failed[1]
        assert "Traceback" not in text and "OSError" not in text
        retry = datetime.combine(date.today(), datetime.strptime(failed[2], "%H:%M:%S").time())
        assert timedelta(seconds=30) < (retry - datetime.now()) % timedelta(days=1) < timedelta(seconds=90)
        # senforms status says the same (no watcher runs now: it says how the round runs again).
        assert main([*home, "status"]) == 0
        out = capsys.readouterr().out
        assert ran[0] in out and failed[1] in out and "senforms round" in out
        # The outbox can be written again: the next try finishes and the problem is gone.
        monkeypatch.setattr(outbox_module, "write_atomic", real_write)
        watcher._round_hold = 0.0
        watcher._run_round()
        text = status_file.read_text(encoding="utf-8")
        assert "The daily round last ran at" in text and "did not finish" not in text
        assert len(digests(cfg)) == 1
    finally:
        watcher._shutdown()


def test_the_status_says_why_a_round_could_not_run_at_all(home: Path) -> None:
    from senforms.intake.status import STATUS_NAME

    broken = load_settings(home, archive_url="postgresql://nobody@127.0.0.1:9/none", today=FILED.isoformat())
    watcher = Watcher(broken, isolate=False, log_file=False, factory=NoForms)
    watcher._start()
    try:
        watcher._run_round()
        text = (broken.outbox / STATUS_NAME).read_text(encoding="utf-8")
    finally:
        watcher._shutdown()
    assert "The daily round last ran at" in text
    said = re.search(r"It did not finish\. It could not run: (.*)\. Nothing was sent\. The watcher tries again at", text)
    assert said is not None and "archive" in said[1], text
    # Once the watcher has stopped, the status says how the round will run again.
    stopped = (broken.outbox / STATUS_NAME).read_text(encoding="utf-8")
    assert said[1] in stopped and "It runs again when the watcher is started" in stopped


def test_due_and_the_digest_leave_out_pupils_who_have_left(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two pupils, each with a review due in 20 days and two meetings this school year. Tom left
    # today; Millie leaves next month, so today she is still at the school. (A leaving date after
    # today is refused, so hers is recorded as of the day she leaves.)
    today = date(2026, 11, 30)  # Monday of week 49
    review = today + timedelta(days=20)
    tom = {**early()["pupil"], "upn": OTHER, "legal_forename": "Tom", "preferred_name": "Tommy"}
    tom["date_of_birth"] = "2016-05-01"
    file_forms(
        on(cfg, today),
        tmp_path,
        ("early-discussion", early()),
        ("support-plan", plan(review)),
        ("early-discussion", values("early-discussion", pupil=tom, meeting_date="2026-10-07", next_meeting_date=None)),
        ("support-plan", values("support-plan", pupil=tom, plan_date="2026-11-04", review_date=review.isoformat())),
    )
    args = ["--home", str(cfg.home), *(["--archive", cfg.archive_url] if cfg.archive_url else [])]
    assert main([*args, "--today", today.isoformat(), "pupil", OTHER, "--left", f"{today:%d/%m/%Y}"]) == 0
    assert main([*args, "--today", "2026-12-18", "pupil", UPN, "--left", "18/12/2026"]) == 0
    capsys.readouterr()
    assert main([*args, "--today", today.isoformat(), "due"]) == 0
    out = capsys.readouterr().out
    assert f"{UPN}  Millie Hart" in out and OTHER not in out
    # A day before Tom left, he is still listed.
    assert main([*args, "--today", (today - timedelta(days=1)).isoformat(), "due"]) == 0
    assert OTHER in capsys.readouterr().out
    run_round(on(cfg, today))
    [digest] = digests(cfg)
    text = docx_text(digest)
    due_part, rest = text.split("Overdue reviews", 1)
    meetings_part = rest.split("Parents met fewer than three times", 1)[1].split("Forms set aside this week", 1)[0]
    assert f"{UPN} | Millie Hart" in due_part and OTHER not in due_part
    assert f"{UPN} | Millie Hart | 4 | 2 |" in meetings_part and OTHER not in meetings_part


def test_the_digest_dates_set_aside_forms_by_the_day_senforms_worked_as(cfg: Settings, tmp_path: Path) -> None:
    """``senforms --today DATE`` gives the digest a school would see that week: a form set aside
    as of Wednesday 6 March 2030 is in that week's digest, whatever the note's file time says,
    and not in a digest written as of a day before it was set aside."""
    from senforms.pipeline import process_files
    from senforms.year.digest import set_aside_since

    wednesday = date(2030, 3, 6)
    bad = drop(tmp_path, "scan.docx", b"this is not a Word document")
    report = process_files([bad], on(cfg, wednesday))
    [(_, target, _)] = report.set_aside
    note = target.with_name(target.name + ".txt").read_text(encoding="utf-8")
    assert note.rstrip().endswith("Set aside on 06/03/2030.")
    # The day it was set aside, not the file's time (today, years before 2030).
    [aside] = set_aside_since(cfg.problems, date(2030, 3, 4), date(2030, 3, 10))
    assert (aside.name, aside.on) == ("scan.docx", wednesday)
    assert set_aside_since(cfg.problems, date(2030, 3, 4), date(2030, 3, 5)) == []  # not yet set aside then

    run_round(on(cfg, date(2030, 3, 7)))
    [digest] = [d for d in digests(cfg) if "2030-W10" in d.name]
    aside_part = docx_text(digest).split("Forms set aside this week", 1)[1]
    assert "scan.docx | 6 March 2030 | " in aside_part
