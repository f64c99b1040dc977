"""The record added to, not rebuilt (issue 14.3): a form later than all of a pupil's others only
adds its rows; a correction or a form typed up late rebuilds the record. Whichever way it was
made, the record must be exactly what a rebuild from the current forms makes: checked after
every form of a pupil's two cycles, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import senforms.pipeline as pipeline_module
from senforms.archive import tables as t
from senforms.archive.record import rebuild_record
from senforms.archive.store import current_forms
from senforms.pipeline import Pipeline
from tests.pipeline_helpers import filled, pupil_upn, values
from tests.test_pipeline import archive_url, cfg, pipeline  # noqa: F401  (fixtures: SQLite and PostgreSQL)


def snapshot(session: Session, pupil_id: int) -> dict[str, Any]:
    """The pupil's record as rows, without the ids a rebuild renumbers."""
    statuses = session.scalars(select(t.SenStatus).where(t.SenStatus.pupil_id == pupil_id)).all()
    cycles = session.scalars(select(t.Cycle).where(t.Cycle.pupil_id == pupil_id).order_by(t.Cycle.number)).all()
    meetings = session.scalars(select(t.Meeting).where(t.Meeting.pupil_id == pupil_id)).all()
    return {
        "status": sorted(
            (s.form_id, s.provision, s.primary_need, s.secondary_need, s.start_date, s.end_date) for s in statuses
        ),
        "open": [(s.form_id, s.provision) for s in statuses if s.end_date is None],
        "cycles": [
            (
                c.number,
                c.plan_form_id,
                c.review_form_id,
                c.plan_date,
                c.review_due,
                c.reviewed_on,
                c.decision,
                [
                    (
                        o.position,
                        o.description,
                        o.success_criteria,
                        sorted((r.review_form_id, r.reviewed_on, r.rating, r.evidence) for r in o.ratings),
                    )
                    for o in c.outcomes
                ],
                [
                    (p.position, p.what, p.who, p.group_size, p.frequency, p.start_date, p.weekly_cost, p.impact)
                    for p in c.provision
                ],
            )
            for c in cycles
        ],
        "meetings": sorted((m.form_id, m.kind, m.held_on) for m in meetings),
    }


def _same_as_a_rebuild(running: Pipeline, upn: str) -> dict[str, Any]:
    with running.archive.trial() as session:  # rolled back: the rebuild is only compared
        pupil = session.scalar(select(t.Pupil).where(t.Pupil.upn == upn))
        assert pupil is not None
        kept = snapshot(session, pupil.id)
        rebuild_record(session, pupil, current_forms(session, pupil.id))
        session.expire_all()
        assert snapshot(session, pupil.id) == kept
    return kept


def test_a_record_added_to_form_by_form_is_the_record_a_rebuild_makes(
    pipeline: Pipeline,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rebuilds: list[str] = []
    real = pipeline_module.rebuild_record

    def counted(session: Session, pupil: t.Pupil, forms: Any) -> bool:
        rebuilds.append(pupil.upn)
        return real(session, pupil, forms)

    monkeypatch.setattr(pipeline_module, "rebuild_record", counted)
    upn = pupil_upn(611)
    pupil = {"upn": upn, "legal_surname": "Okonkwo-Hart"}
    plan2 = values(
        "support-plan", pupil=pupil, cycle=2, plan_date="2026-02-24", review_date="2026-05-19", primary_need="SLCN"
    )
    review1 = values("review", pupil=pupil)
    review2 = values(
        "review",
        pupil=pupil,
        cycle=2,
        plan_date="2026-02-24",
        review_date="2026-05-19",
        decision="continue",
        next_review_date="2026-07-14",
    )
    review2["outcomes"] = [dict(o, rating="achieved") for o in review2["outcomes"]]
    revised = values("support-plan", pupil=pupil, plan_date="2025-11-05")
    revised["outcomes"] = revised["outcomes"][:2]
    # In date order, each form adds to the record; then the awkward ones.
    steps: list[tuple[str, dict[str, Any], bool]] = [
        ("early-discussion", values("early-discussion", pupil=pupil), False),
        ("support-plan", values("support-plan", pupil=pupil), False),
        # A second plan for cycle 1 the next day, with one outcome fewer: it replaces the first
        # plan's outcomes and provision; the review then rates an outcome no longer on the plan.
        ("support-plan", revised, False),
        ("parent-meeting", values("parent-meeting", pupil=pupil), False),
        ("review", review1, False),
        ("support-plan", plan2, False),
        ("review", review2, False),
        # Typed up late: a meeting in December, before the review of February.
        ("parent-meeting", values("parent-meeting", pupil=pupil, meeting_date="2025-12-03"), True),
        # A correction of cycle 1's review: its ratings and decision change what followed.
        ("review", dict(review1, staff_views="Corrected: Millie now reads in whole-class work too."), True),
        # A second review of cycle 2, later: added to the record again.
        ("review", dict(review2, review_date="2026-07-14", next_review_date="2026-10-20"), False),
    ]
    records = []
    for number, (kind, data, rebuilt) in enumerate(steps):
        before = len(rebuilds)
        pipeline.process_bytes(filled(kind, data), name=f"{number} {kind}.docx")
        assert (len(rebuilds) > before) == rebuilt, f"step {number} ({kind}): rebuilt {len(rebuilds) > before}"
        records.append(_same_as_a_rebuild(pipeline, upn))
    # The record did change along the way (the comparison is not of empty records).
    assert records[0]["open"] and len(records[-1]["cycles"]) == 2
    assert records[6]["meetings"] != records[7]["meetings"]
    assert [c[6] for c in records[-1]["cycles"]] == ["revise", "continue"]
    # The revised plan's two outcomes, then the one its review rated although the plan had dropped it.
    cycle1 = records[4]["cycles"][0]
    kept = [o["description"] for o in revised["outcomes"]]
    assert [o[:2] for o in cycle1[7]] == [(0, kept[0]), (1, kept[1]), (2, review1["outcomes"][2]["description"])]
    assert all(len(o[3]) == 1 for o in cycle1[7]) and cycle1[2] is not None
    assert records[4]["status"] != records[5]["status"]  # cycle 2's plan changed the primary need
