"""The EHC needs assessment evidence pack (Code 6.63) and the provision map (6.76), from real
forms put through the pipeline; on SQLite and, when SENFORMS_TEST_POSTGRES_URL is set, on
PostgreSQL."""

from __future__ import annotations

import io
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import docx
import pytest

from senforms.cli import main
from senforms.config import Settings, load_settings
from senforms.pipeline import Pipeline
from tests.pipeline_helpers import drop, filled, values
from tests.test_pipeline import archive_url  # noqa: F401 (a fixture, on SQLite and PostgreSQL)

TODAY = date(2026, 7, 15)
PG = os.environ.get("SENFORMS_TEST_POSTGRES_URL")
UPN = "H801200001001"
FOLDER = "Hart Amelia (H801200001001)"


@pytest.fixture
def cfg(home: Path, archive_url: str | None) -> Settings:  # noqa: F811 (the fixture imported above)
    return load_settings(home, archive_url=archive_url)


# --- a pupil through three cycles, the last review requesting an EHC needs assessment ----------

PLAN1_OUTCOMES = [
    "Reads a Year 3 book aloud with fewer than 5 errors a page",
    "Spells the 50 most common words correctly in her own writing",
    "Tells an adult when she is worried, instead of leaving the room",
]
# (review date, cycle, ratings of the three outcomes, decision)
REVIEWS = [
    ("2026-02-10", 1, ["not-achieved", "partly", "not-achieved"], "continue"),
    ("2026-05-19", 2, ["not-achieved", "achieved", "not-achieved"], "specialist"),
    ("2026-07-14", 3, ["partly", "achieved", "not-achieved"], "ehc"),
]
PLAN_DATES = ["2025-11-04", "2026-02-12", "2026-05-21"]
SALT = {
    "what": "Speech and language programme & word-finding work",
    "who": "Speech and language therapist (NHS)",
    "group_size": "1:1",
    "frequency": "as advised by the therapist",
    "start_date": "2026-05-26",
    "weekly_cost": "40.00",
}


def _plan(cycle: int) -> dict[str, Any]:
    plan = values("support-plan", pupil=values("early-discussion")["pupil"])
    plan["cycle"] = cycle
    plan["plan_date"] = PLAN_DATES[cycle - 1]
    plan["review_date"] = REVIEWS[cycle - 1][0]
    for row in plan["provision"]:
        row["start_date"] = row["start_date"] and PLAN_DATES[cycle - 1]
    if cycle == 3:
        plan["provision"].append(dict(SALT))
    return plan


def _review(cycle: int) -> dict[str, Any]:
    on, _, ratings, decision = REVIEWS[cycle - 1]
    review = values("review", pupil=values("early-discussion")["pupil"])
    review.update(cycle=cycle, review_date=on, plan_date=PLAN_DATES[cycle - 1], decision=decision)
    if decision == "specialist":  # review form version 2 asks who and why
        review["specialist"] = "Educational psychologist"
        review["specialist_reason"] = "Reading has not moved in two terms despite daily support."
    review["outcomes"] = [
        {"description": d, "rating": r, "evidence": f"Cycle {cycle} check <{r}> & notes"}
        for d, r in zip(PLAN1_OUTCOMES, ratings, strict=True)
    ]
    review["pupil_views"] = f"Cycle {cycle}: reading is still hard {{{{ not a tag }}}}."
    review["parent_views"] = f"Cycle {cycle}: we worry about her confidence."
    if cycle == 3:
        review["attendees"] += ", Dr Priya Shah (educational psychologist)"
        review["staff_views"] = "The educational psychologist advised daily overlearning and a sensory check."
    review["next_review_date"] = "2026-10-20"
    return review


def take_through(cfg: Settings, tmp_path: Path) -> list[Any]:
    """Early discussion, three plans and three reviews, the last deciding to request an EHC
    needs assessment: every form a filled Word form through the pipeline."""
    done = []
    with Pipeline(cfg, today=lambda: TODAY) as pipeline:
        done.append(pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion")))))
        for cycle in (1, 2, 3):
            done.append(pipeline.process_file(drop(tmp_path, f"plan{cycle}.docx", filled("support-plan", _plan(cycle)))))
            done.append(pipeline.process_file(drop(tmp_path, f"review{cycle}.docx", filled("review", _review(cycle)))))
    return done


def pack_text(content: bytes) -> str:
    document = docx.Document(io.BytesIO(content))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts += [c.text for c in row.cells]
    return "\n".join(parts)


def check_pack(content: bytes) -> None:
    document = docx.Document(io.BytesIO(content))
    body = pack_text(content)
    section = document.sections[0]
    assert (round(section.page_width.cm, 1), round(section.page_height.cm, 1)) == (21.0, 29.7)
    # Each outcome, with each of its ratings at each review and the evidence given.
    for description in PLAN1_OUTCOMES:
        assert description in body
    for on, cycle, ratings, _ in REVIEWS:
        shown = date.fromisoformat(on).strftime("%d/%m/%Y")
        for r in ratings:
            label = {"achieved": "Achieved", "partly": "Partly achieved", "not-achieved": "Not achieved"}[r]
            assert f"{shown}: {label}. Cycle {cycle} check <{r}> & notes" in body
    # Provision with its cost: precision teaching at £12.50 a week, cycle 1 of 14 weeks.
    assert "Precision teaching of high-frequency words" in body
    assert "£12.50" in body
    weeks = (date(2026, 2, 10) - date(2025, 11, 4)).days / 7
    assert f"£{Decimal('12.50') * Decimal(str(round(weeks, 4))):,.2f}" in body
    # Hours a week worked out from "3 x 10 minutes a week"; the therapist's row is flagged.
    assert "0.5" in body
    assert "not worked out" in body
    # The specialists and their advice; the views, every review's.
    assert "Dr Priya Shah (educational psychologist)" in body
    assert "advised daily overlearning" in body
    assert "Speech and language therapist (NHS)" in body
    for cycle in (1, 2, 3):
        assert f"Cycle {cycle}: reading is still hard {{{{ not a tag }}}}." in body
        assert f"Cycle {cycle}: we worry about her confidence." in body
    assert "SPLD" in body and "Specific learning difficulty" in body
    assert "SEN support began" in body and "07/10/2025" in body
    # The chart is an embedded PNG.
    images = [p for p in document.part.package.parts if p.content_type == "image/png"]
    assert len(images) == 1 and images[0].blob.startswith(b"\x89PNG")
    # Footer: page N of M as fields; headings in the body font.
    footer = section.footer.paragraphs[0]._p.xml
    assert "NUMPAGES" in footer and "PAGE" in footer
    assert document.styles["Heading 1"].font.name == document.styles["Normal"].font.name == "Arial"
    assert document.core_properties.title.startswith("Evidence pack")
    assert "no SEN support on record" not in body  # said only of a pupil never on SEN support


def test_the_pack_comes_with_the_review_requesting_an_assessment(cfg: Settings, tmp_path: Path) -> None:
    done = take_through(cfg, tmp_path)
    assert [d.status for d in done] == ["processed"] * 7
    senco = cfg.outbox / "senco" / FOLDER
    packs = sorted(senco.glob("* Evidence pack for an EHC needs assessment request*.docx"))
    # Only the review that requests an assessment issues the pack, and only one.
    assert [p.name for p in packs] == [f"{TODAY} Evidence pack for an EHC needs assessment request.docx"]
    assert packs[0] in done[-1].documents
    check_pack(packs[0].read_bytes())
    # The last review's ratings are in it: the archive as that review left it.
    assert "14/07/2026: Partly achieved" in pack_text(packs[0].read_bytes())


def test_senforms_evidence_writes_the_pack(cfg: Settings, tmp_path: Path) -> None:
    take_through(cfg, tmp_path)
    out = tmp_path / "pack.docx"
    args = ["--home", str(cfg.home), "--today", "2026-07-20"]
    if cfg.archive_url:
        args += ["--archive", cfg.archive_url]
    assert main([*args, "evidence", UPN, "-o", str(out)]) == 0
    check_pack(out.read_bytes())
    assert main([*args, "evidence", "B801200005001", "-o", str(tmp_path / "none.docx")]) != 0
    assert not (tmp_path / "none.docx").exists()


def test_a_pupil_never_on_sen_support_gets_a_pack_that_says_so(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An early discussion that decided to monitor: the pupil was never on SEN support. The pack
    can still be written (the SENCO may want it), but the command says plainly that there is no
    SEN support, no plan and no review on record, and so does the top of the pack, rather than
    empty sections that look like missing data."""
    early = values("early-discussion", decision="monitor", next_meeting_date="2025-12-02")
    with Pipeline(cfg, today=lambda: date(2025, 10, 7)) as pipeline:
        assert pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early))).status == "processed"
    capsys.readouterr()
    out = tmp_path / "pack.docx"
    assert _cli(cfg, "evidence", UPN, "-o", str(out)) == 0
    said = capsys.readouterr()
    assert f"Wrote {out}." in said.out
    assert (
        f"The archive holds no SEN support for the pupil with UPN {UPN}: no support plan and no review are on "
        "record, so the pack shows only what the early discussion note records."
    ) in said.out, said.out
    body = pack_text(out.read_bytes())
    note = body.index("There is no SEN support on record for this pupil")
    assert note < body.index("Summary")  # at the top, before any section
    assert "no support plan and no review" in body[note:]
    assert "Outcomes and progress" not in body and "Cycles of assess, plan, do, review" not in body
    # What the early discussion said is still there.
    assert "Reading and spelling are well behind her peers" in body
    assert "Monitor and meet again" in body


# --- the provision map ----------------------------------------------------------------------------


def _cli(cfg: Settings, *more: str) -> int:
    args = ["--home", str(cfg.home), "--today", str(TODAY)]
    if cfg.archive_url:
        args += ["--archive", cfg.archive_url]
    return main([*args, *more])


def test_provision_map_numbers_by_hand(cfg: Settings, tmp_path: Path) -> None:
    from senforms.reports.provision_map import build_map

    take_through(cfg, tmp_path)
    # Cycle 2 exactly (its plan on 12/02/2026, its review on 19/05/2026): 97 days, every row of
    # cycle 2 runs the whole period, cycles 1 and 3 not at all.
    result = build_map(cfg, date(2026, 2, 12), date(2026, 5, 19))
    lines = {line.what: line for line in result.lines}
    assert set(lines) == {"Precision teaching of high-frequency words", "Phonics catch-up group", "ELSA sessions"}
    precision = lines["Precision teaching of high-frequency words"]
    # "3 x 10 minutes a week", 1:1: half an hour a week; £12.50 a week for 97 days.
    assert precision.pupils == 1
    assert precision.staff_hours_a_week == pytest.approx(0.5)
    assert precision.weekly_cost == Decimal("12.50")
    assert precision.total_cost == Decimal("173.21")  # 12.50 x 97 / 7
    # Cycle 2's review rated its three outcomes: Not achieved, Achieved, Not achieved.
    assert (precision.ratings, precision.achieved, precision.partly) == (3, 1, 0)
    assert precision.achieved_share == pytest.approx(1 / 3)
    phonics = lines["Phonics catch-up group"]
    # "Daily, 20 minutes" in a group of 4: 100 pupil minutes, 25 staff minutes a week.
    assert phonics.pupil_hours_a_week == pytest.approx(100 / 60)
    assert phonics.staff_hours_a_week == pytest.approx(25 / 60)
    elsa = lines["ELSA sessions"]
    assert elsa.no_cost == 1 and elsa.total_cost == 0
    assert any("group size" in u for u in elsa.unread)

    # The whole school year: three cycles; the therapist's row cannot be read and is flagged.
    year = build_map(cfg, date(2025, 9, 1), TODAY)
    lines = {line.what: line for line in year.lines}
    precision = lines["Precision teaching of high-frequency words"]
    days = 99 + 97 + 55  # 04/11-10/02, 12/02-19/05, 21/05-14/07, each day counted
    # Each row's cost is rounded to the penny, so the whole is within a penny or two.
    assert abs(precision.total_cost - Decimal("12.50") * days / 7) < Decimal("0.02")
    assert (precision.ratings, precision.achieved, precision.partly) == (9, 2, 2)
    assert precision.pupils == 1
    therapy = lines[SALT["what"]]
    assert therapy.total_cost == Decimal("285.71")  # £40 a week from 26/05 to 14/07: 50 days
    assert therapy.staff_hours_a_week == 0
    assert any("as advised by the therapist" in u for u in therapy.unread)


def test_provision_map_files(cfg: Settings, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    take_through(cfg, tmp_path)
    xlsx, word = tmp_path / "map.xlsx", tmp_path / "map.docx"
    assert _cli(cfg, "provision-map", "--from", "12/02/2026", "--to", "2026-05-19", "-o", str(xlsx)) == 0
    assert _cli(cfg, "provision-map", "--from", "12/02/2026", "--to", "2026-05-19", "-o", str(word)) == 0
    sheet = load_workbook(xlsx).active
    header = [c.value for c in sheet[3]]
    rows = {r[0]: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=4, values_only=True)}
    assert rows["Precision teaching of high-frequency words"]["Total cost (£)"] == pytest.approx(173.21)
    assert rows["Precision teaching of high-frequency words"]["Pupils"] == 1
    assert "group size" in rows["ELSA sessions"]["To check"]
    document = docx.Document(str(word))
    assert document.sections[0].page_width.cm == pytest.approx(29.7, abs=0.05)
    assert any(p.content_type == "image/png" for p in document.part.package.parts)
    assert "£173.21" in pack_text(word.read_bytes())
    assert _cli(cfg, "provision-map", "--from", "31/02/2026", "-o", str(xlsx)) != 0


def test_provision_map_for_the_term_just_ended(cfg: Settings, tmp_path: Path) -> None:
    from senforms.archive.store import Archive
    from senforms.reports.provision_map import provision_maps, term_just_ended

    assert term_just_ended(date(2026, 7, 25)) == ("2025-26-summer", date(2026, 4, 15), date(2026, 7, 20))
    assert term_just_ended(date(2026, 12, 21))[0] == "2026-27-autumn"  # type: ignore[index]
    assert term_just_ended(date(2026, 11, 1)) is None
    take_through(cfg, tmp_path)
    archive = Archive(cfg.database_url)
    try:
        dues = list(provision_maps(archive, cfg, date(2026, 7, 25)))
    finally:
        archive.close()
    assert [d.key for d in dues] == ["provision-map:2025-26-summer"]
    assert dues[0].upn is None and dues[0].for_date == date(2026, 7, 20)
    assert {(r.audience, r.suffix) for r in dues[0].documents} == {("senco", ".xlsx"), ("senco", ".docx")}
