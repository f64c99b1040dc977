"""The annual report to parents (Code of Practice 6.64): pupils taken through the cycle with real
forms through the pipeline, then the producer on, before and after the report day, the letter's
words checked against the ratings, its reading age, and its paper. Runs on SQLite and, when
SENFORMS_TEST_POSTGRES_URL is set, on PostgreSQL (the fixtures of test_pipeline)."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader
from sqlalchemy import select

from senforms.archive import tables as t
from senforms.archive.store import Archive, now
from senforms.cli import main
from senforms.config import Settings, load_settings
from senforms.documents import Due, letter_text, reading_grade
from senforms.office import Office, find_office
from senforms.pipeline import Pipeline
from senforms.values import school_year_start
from senforms.year.annual import annual_reports, report_date
from senforms.year.round import run_round
from tests.pipeline_helpers import drop, filled, pupil_upn, values
from tests.test_pipeline import archive_url  # noqa: F401  (fixture: SQLite, and PostgreSQL when available)

REPORT_DAY = date(2026, 7, 15)  # the case forms run from October 2025 to February 2026
MILLIE = "H801200001001"


@pytest.fixture
def cfg(home: Path, archive_url: str | None) -> Settings:  # noqa: F811
    toml = home / "senforms.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('annual_report = ""', 'annual_report = "15 July"'), encoding="utf-8"
    )
    return load_settings(home, archive_url=archive_url)


def take_through_the_cycle(pipeline: Pipeline, folder: Path, pupil: dict | None = None, **review: object) -> dict:
    """Early discussion (SEN support), a plan, and its review, filled in Word and processed."""
    early = values("early-discussion", pupil=pupil or {})
    plan = values("support-plan", pupil=early["pupil"])
    rated = values("review", pupil=early["pupil"]) | review
    name = early["pupil"]["upn"]
    for kind, data in (("early-discussion", early), ("support-plan", plan), ("review", rated)):
        done = pipeline.process_file(drop(folder, f"{name} {kind}.docx", filled(kind, data)))
        assert done.status == "processed", done
    return {"early": early, "plan": plan, "review": rated}


def text_of(content: bytes) -> str:
    document = docx.Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(c.text for c in row.cells))
    return "\n".join(parts)


@pytest.fixture
def millie(cfg: Settings, tmp_path: Path) -> dict:
    with Pipeline(cfg, today=lambda: date(2026, 2, 10)) as pipeline:
        return take_through_the_cycle(pipeline, tmp_path / "forms")


def reports(cfg: Settings, today: date) -> list[Due]:
    archive = Archive(cfg.database_url)
    try:
        return list(annual_reports(archive, cfg, today))
    finally:
        archive.close()


def test_the_report_day_yields_one_report_that_names_each_outcome_with_its_rating(cfg: Settings, millie: dict) -> None:
    dues = reports(cfg, REPORT_DAY)
    assert [(d.key, d.upn, d.for_date) for d in dues] == [("annual-report:2025:" + MILLIE, MILLIE, REPORT_DAY)]
    (letter,) = dues[0].documents
    assert (letter.audience, letter.template, letter.suffix) == ("parents", "annual-report", ".docx")
    text = text_of(letter.content)
    # Each outcome with the rating and evidence the review gave it, in parents' words.
    words = {"achieved": "Achieved", "partly": "Partly achieved", "not-achieved": "Not yet achieved"}
    for outcome in millie["review"]["outcomes"]:
        row = next(line for line in text.splitlines() if line.startswith(outcome["description"]))
        assert f"10 February 2026: {words[outcome['rating']]}." in row, row
        if outcome["evidence"]:
            assert outcome["evidence"].rstrip(".") in row
    # The counts agree with the ratings (1 achieved, 1 partly, 1 not achieved), and nothing claims more.
    assert "Of the 3 outcomes we reviewed, 1 was achieved, 1 was partly achieved and 1 was not yet achieved." in text
    assert "We reviewed Millie's plan once this year." in text
    assert "every outcome" not in text and "good progress" not in text
    # The support given: what, who, how often.
    for row in millie["plan"]["provision"]:
        assert f"{row['what']} | {row['who']} | {row['frequency']}" in text
    # The meetings of the year, and what comes next (the review decided to revise; next review in May).
    assert "We met to talk about Millie 3 times this year:" in text
    assert "7 October 2025: our first talk about what help is needed." in text
    assert "At the review on 10 February 2026 we agreed to change some of the outcomes or some of the help." in text
    assert "The next review was planned for 19 May 2026 and has not happened yet. We will contact you to arrange it." in text
    assert "Dear Joanna Hart" in text and "14 Orchard Close" in text
    assert "This report covers 1 September 2025 to 15 July 2026." in text


def test_the_report_reads_at_eleven_or_under_as_sent(cfg: Settings, millie: dict) -> None:
    (due,) = reports(cfg, REPORT_DAY)
    text = letter_text(due.documents[0].content)
    assert len(text.split()) > 200
    assert reading_grade(text) <= 6.0


def test_nothing_before_the_day_nor_in_the_next_school_year_before_its_day(cfg: Settings, millie: dict) -> None:
    assert reports(cfg, date(2026, 7, 14)) == []
    assert reports(cfg, date(2025, 12, 1)) == []
    # A new school year starts on 1 September: its report day is next July.
    assert reports(cfg, date(2026, 9, 1)) == []
    assert report_date(cfg, date(2026, 9, 1)) == date(2027, 7, 15)
    assert school_year_start(date(2026, 8, 31)) == date(2025, 9, 1)


def test_a_missed_day_is_caught_up_once_with_the_same_key(cfg: Settings, millie: dict) -> None:
    # The watcher was off on the day: a later day of the same school year still yields the report,
    # under the same key, so the round recognises it as the same report.
    late = reports(cfg, date(2026, 7, 20))
    again = reports(cfg, date(2026, 8, 31))
    assert [d.key for d in late] == [d.key for d in again] == ["annual-report:2025:" + MILLIE]
    assert late[0].for_date == REPORT_DAY
    # Once the round has issued it, the producer does not render it again that year.
    archive = Archive(cfg.database_url)
    with archive.session() as session:
        session.add(t.Issued(key=late[0].key, issued_at=now(), for_date=REPORT_DAY))
    archive.close()
    assert reports(cfg, date(2026, 7, 21)) == []


def test_a_pupil_whose_sen_support_ended_gets_no_report(cfg: Settings, millie: dict, tmp_path: Path) -> None:
    upn = pupil_upn(7)
    with Pipeline(cfg, today=lambda: date(2026, 3, 1)) as pipeline:
        take_through_the_cycle(
            pipeline,
            tmp_path / "ended",
            pupil={"upn": upn, "legal_forename": "Theo", "preferred_name": None, "date_of_birth": "2016-09-01"},
            decision="end",
            end_reason="progress",
            next_steps="Keep reading at home each evening; the class teacher checks in each half term.",
            next_review_date=None,
        )
    assert [d.upn for d in reports(cfg, REPORT_DAY)] == [MILLIE]


def test_parents_who_live_apart_each_get_their_own_copy(cfg: Settings, tmp_path: Path) -> None:
    parents = [
        {"name": "Mrs Joanna Hart", "relationship": "Mother", "address": "14 Orchard Close\nLittle Bramford"},
        {"name": "Mr Tom Hart", "relationship": "Father", "address": "Flat 3, 2 Quay Street\nNorwich"},
    ]
    with Pipeline(cfg, today=lambda: date(2026, 2, 10)) as pipeline:
        take_through_the_cycle(pipeline, tmp_path / "forms", pupil={"parents": parents})
    (due,) = reports(cfg, REPORT_DAY)
    assert [d.title for d in due.documents] == [
        "Annual report on SEN support for Mrs Joanna Hart",
        "Annual report on SEN support for Mr Tom Hart",
    ]
    # Each copy's properties carry its own title and the day it was written.
    for document in due.documents:
        properties = docx.Document(io.BytesIO(document.content)).core_properties
        assert properties.title == document.title and properties.created.date() == REPORT_DAY
    first, second = (text_of(d.content) for d in due.documents)
    assert "Dear Mrs Hart" in first and "Orchard Close" in first and "Quay Street" not in first
    assert "Dear Mr Hart" in second and "Quay Street" in second and "Orchard Close" not in second


def issued_keys(cfg: Settings) -> list[str]:
    archive = Archive(cfg.database_url)
    try:
        with archive.reading() as session:
            return list(session.scalars(select(t.Issued.key).order_by(t.Issued.key)))
    finally:
        archive.close()


def test_the_command_writes_the_reports_now(cfg: Settings, millie: dict, tmp_path: Path, capsys) -> None:
    home = ["--home", str(cfg.home)] + (["--archive", cfg.archive_url] if cfg.archive_url else [])
    out = tmp_path / "early"
    assert main([*home, "--today", "2026-06-01", "annual-report", "--upn", MILLIE.lower(), "-o", str(out)]) == 0
    (written,) = list(out.rglob("*.docx"))
    assert written.name == "2026-06-01 Annual report on SEN support.docx"
    assert "This report covers 1 September 2025 to 1 June 2026." in text_of(written.read_bytes())
    # A copy for the school (-o) records nothing: the round still owes the report on its day.
    assert [d.key for d in reports(cfg, REPORT_DAY)] == ["annual-report:2025:" + MILLIE]
    assert list(cfg.outbox.rglob("*Annual report*")) == []
    # Into the outbox (and the archive) without -o: the school's report for the year, recorded as
    # issued under the producer's key, so the round does not send it again on the day.
    assert main([*home, "--today", "2026-06-01", "annual-report"]) == 0
    assert len(list((cfg.outbox / "parents").rglob("*Annual report on SEN support.docx"))) == 1
    # ... and on the office's list of the day's letters, to post or e-mail.
    listed = (cfg.outbox / "parents" / "Letters to send 2026-06-01.csv").read_text(encoding="utf-8-sig")
    assert "Annual report on SEN support" in listed and MILLIE in listed
    assert issued_keys(cfg) == ["annual-report:2025:" + MILLIE]
    assert reports(cfg, REPORT_DAY) == []
    on_the_day = load_settings(cfg.home, archive_url=cfg.archive_url, today=REPORT_DAY.isoformat())
    assert run_round(on_the_day, producers=[annual_reports]).issued == []
    assert len(list((cfg.outbox / "parents").rglob("*Annual report on SEN support.docx"))) == 1
    # Written again on purpose the same year (--again): another copy, still one key.
    assert main([*home, "--today", "2026-06-02", "annual-report", "--again"]) == 0
    assert len(list((cfg.outbox / "parents").rglob("*Annual report on SEN support.docx"))) == 2
    assert issued_keys(cfg) == ["annual-report:2025:" + MILLIE]
    assert main([*home, "annual-report", "--upn", pupil_upn(9)]) != 0
    assert "no pupil with UPN" in capsys.readouterr().err


def test_run_by_hand_after_the_round_writes_only_the_missing_reports(
    cfg: Settings, millie: dict, tmp_path: Path, capsys
) -> None:
    """The round issued Millie's report on its day; a SENCO who then runs 'senforms annual-report'
    gets only the reports still missing, is told which were issued already and when, and can
    write them again on purpose (--again) or as copies for the school (-o)."""
    home = ["--home", str(cfg.home)] + (["--archive", cfg.archive_url] if cfg.archive_url else [])
    on_the_day = load_settings(cfg.home, archive_url=cfg.archive_url, today=REPORT_DAY.isoformat())
    assert run_round(on_the_day, producers=[annual_reports]).issued == ["annual-report:2025:" + MILLIE]
    parents = cfg.outbox / "parents"
    assert len(list(parents.rglob("*Annual report on SEN support*.docx"))) == 1
    # A second pupil joins SEN support after the round ran.
    other = pupil_upn(2)
    with Pipeline(cfg, today=lambda: date(2026, 2, 10)) as pipeline:
        take_through_the_cycle(
            pipeline, tmp_path / "other", pupil={"upn": other, "legal_forename": "Noah", "preferred_name": "Noah"}
        )
    capsys.readouterr()

    assert main([*home, "--today", "2026-07-16", "annual-report"]) == 0
    out = capsys.readouterr().out
    mine = sorted(p.name for p in parents.rglob(f"*({MILLIE})/*Annual report*"))
    assert mine == ["2026-07-15 Annual report on SEN support.docx"]  # no "(2)", no second copy
    (theirs,) = parents.rglob(f"*({other})/*Annual report*")
    assert f"Wrote {theirs}" in out
    assert (
        f"The annual report for Millie Hart (UPN {MILLIE}) was already issued this school year (on 15/07/2026)"
    ) in out
    assert "not written again" in out and "--again" in out
    assert issued_keys(cfg) == sorted(["annual-report:2025:" + MILLIE, "annual-report:2025:" + other])

    # Both issued now: nothing is written, and the command says so rather than nothing at all.
    assert main([*home, "--today", "2026-07-17", "annual-report"]) == 0
    out = capsys.readouterr().out
    assert "Wrote" not in out and "No pupil is on SEN support" not in out
    assert "2 annual reports were already issued this school year (on 15/07/2026, 16/07/2026)" in out
    assert f"  Already issued: Millie Hart (UPN {MILLIE}), Noah Hart (UPN {other})." in out.splitlines()
    assert len(list(parents.rglob("*Annual report*.docx"))) == 2

    # -o: copies for the school, for every pupil, recording nothing.
    copies = tmp_path / "copies"
    assert main([*home, "--today", "2026-07-17", "annual-report", "-o", str(copies)]) == 0
    out = capsys.readouterr().out
    assert len(list(copies.rglob("*.docx"))) == 2 and "copies for the school" in out
    assert len(list(parents.rglob("*Annual report*.docx"))) == 2

    # --again, for one pupil: a second copy on purpose, still one key.
    assert main([*home, "--today", "2026-07-17", "annual-report", "--upn", MILLIE, "--again"]) == 0
    assert "written again into the outbox, as --again asked" in capsys.readouterr().out
    assert len(list(parents.rglob(f"*({MILLIE})/*Annual report*.docx"))) == 2
    assert len(issued_keys(cfg)) == 2


@pytest.mark.libreoffice
@pytest.mark.skipif(find_office() is None, reason="LibreOffice (soffice) is not installed")
def test_printed_on_a4_with_page_numbers(cfg: Settings, millie: dict, tmp_path: Path) -> None:
    (due,) = reports(cfg, REPORT_DAY)
    source = tmp_path / "annual.docx"
    source.write_bytes(due.documents[0].content)
    with Office(timeout=120) as office:
        (pdf,) = office.convert([source], tmp_path / "pdf")
    reader = PdfReader(pdf)
    for number, page in enumerate(reader.pages, start=1):
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == (595, 842)
        assert f"Page {number} of {len(reader.pages)}" in " ".join(page.extract_text().split())


# --- what the report says, from plain data (no archive) -----------------------------------------------


def sample_report(forms: int, today: date) -> dict:
    from senforms.context import annual_report_context
    from senforms.documents import _sample_settings, sample_forms
    from senforms.history import History

    samples = sample_forms()[:forms]
    return annual_report_context(
        _sample_settings(), samples[-1].pupil, History(samples), since=date(2026, 9, 1), until=today, today=today
    )["report"]


def test_a_year_with_a_plan_but_no_review_says_so_and_gives_the_review_date() -> None:
    report = sample_report(2, date(2026, 12, 1))  # early discussion and the first plan
    assert report["summary"] == ["We have not reviewed Ollie's plan yet this year, so there are no results to report."]
    assert [o["progress"] for o in report["outcomes"]] == ["Not reviewed yet.", "Not reviewed yet."]
    assert report["next"] == ["We will review Ollie's plan with you on 10 March 2027."]
    assert [p["what"] for p in report["provision"]] == ["Daily phonics catch-up", "Coloured overlay and a word mat"]


def test_a_year_with_no_plan_yet_says_so_and_has_no_tables() -> None:
    report = sample_report(1, date(2026, 11, 20))  # only the early discussion
    assert report["summary"] == ["We have not yet made a support plan for Ollie this year."]
    assert report["outcomes"] == [] and report["provision"] == [] and report["cycles"] == []
    assert report["meetings"] == [{"date": "3 November 2026", "what": "our first talk about what help is needed"}]
    assert report["meetings_sentence"] == "We met to talk about Ollie once this year:"


def test_every_outcome_achieved_is_said_only_when_the_ratings_show_it() -> None:
    from senforms.context import annual_report_context
    from senforms.documents import _sample_settings, sample_forms
    from senforms.history import History
    from senforms.kinds import Rating

    samples = list(sample_forms()[:4])  # up to the first review
    review = samples[3]
    samples[3] = review.model_copy(
        update={"outcomes": [o.model_copy(update={"rating": Rating.ACHIEVED}) for o in review.outcomes]}
    )
    day = date(2027, 7, 15)
    report = annual_report_context(
        _sample_settings(), samples[-1].pupil, History(tuple(samples)), since=date(2026, 9, 1), until=day, today=day
    )["report"]
    assert report["summary"][-1] == "Ollie achieved every outcome we reviewed."
    assert "every outcome" not in " ".join(sample_report(4, day)["summary"])
