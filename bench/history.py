"""Benchmark: the cost of a form as a pupil's history grows (issue 14.3, "the record rebuilt only
for what changed").

One pupil is taken through five years of SEN support: an early discussion, then a plan and a
review three times a year (31 forms), each filed through ``Pipeline.process_bytes``. It runs
twice in the same process on fresh archives:

- added: as senforms files forms, a form later than the pupil's others adds to their record;
- rebuilt (the baseline): every form rebuilds the pupil's record from all their current forms,
  which is what senforms did before, and still does for a correction or a late form.

It prints, by the number of forms already on record, the median ms per form and the SQL
statements per form in each mode, and their ratio.

    python bench/history.py                # SQLite
    python bench/history.py --postgres     # PostgreSQL too (SENFORMS_TEST_POSTGRES_URL)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import SCHOOL, archive_url, pupil_values, write_settings  # noqa: E402

YEARS = 5
TODAY = date(2031, 7, 20)
BUCKETS = ((1, 5), (12, 16), (26, 31))  # forms already on record when the timed form arrives


def five_years() -> list[tuple[str, bytes]]:
    """(kind, .docx bytes) of one pupil's forms in the order they arrive."""
    from senforms.kinds import KINDS
    from senforms.wordform import make_form

    cases = {
        k: json.loads((ROOT / "tests" / "cases" / f"{k}.json").read_text(encoding="utf-8"))
        for k in ("early-discussion", "support-plan", "review")
    }
    pupil = pupil_values(7)
    start = date(2026, 9, 7)
    forms: list[tuple[str, dict[str, Any]]] = [
        (
            "early-discussion",
            copy.deepcopy(cases["early-discussion"])
            | {"pupil": pupil, "meeting_date": start, "next_meeting_date": start + timedelta(days=14)},
        )
    ]
    for cycle in range(1, 3 * YEARS + 1):
        plan_date = start + timedelta(weeks=2 + 13 * (cycle - 1))
        review_date = plan_date + timedelta(weeks=11)
        plan = copy.deepcopy(cases["support-plan"]) | {
            "pupil": pupil,
            "cycle": cycle,
            "plan_date": plan_date,
            "review_date": review_date,
        }
        review = copy.deepcopy(cases["review"]) | {
            "pupil": pupil,
            "cycle": cycle,
            "plan_date": plan_date,
            "review_date": review_date,
            "next_review_date": review_date + timedelta(weeks=2),
            "decision": "revise",
            "outcomes": [
                {"description": o["description"], "rating": ["partly", "achieved", "not-achieved"][n % 3], "evidence": "Seen."}
                for n, o in enumerate(plan["outcomes"])
            ],
        }
        forms += [("support-plan", plan), ("review", review)]
    return [(kind, make_form(KINDS[kind], school=SCHOOL, values=values)) for kind, values in forms]


def run(backend: str, forms: list[tuple[str, bytes]], *, rebuild_always: bool) -> tuple[list[float], list[int]]:
    """ms and SQL statements for each form, in order."""
    from sqlalchemy import event

    import senforms.pipeline as pipeline_module
    from senforms.config import load_settings
    from senforms.pipeline import Pipeline

    real = pipeline_module.extend_record
    if rebuild_always:
        # What a correction or a late form does: the whole record rebuilt from the current forms.
        pipeline_module.extend_record = lambda session, pupil, form_id, form: pipeline_module.rebuild_record(  # type: ignore[assignment]
            session, pupil, pipeline_module.current_forms(session, pupil.id)
        )
    try:
        with tempfile.TemporaryDirectory(prefix="senforms-history-") as tmp:
            home = Path(tmp)
            write_settings(home)
            with archive_url(backend, home) as url:
                settings = load_settings(home, archive_url=url)
                ms: list[float] = []
                statements: list[int] = []
                with Pipeline(settings, today=lambda: TODAY) as pipeline:
                    counted = [0]

                    def count(*_args: Any) -> None:
                        counted[0] += 1

                    event.listen(pipeline.archive.engine, "before_cursor_execute", count)
                    for number, (kind, data) in enumerate(forms):
                        counted[0] = 0
                        started = time.perf_counter()
                        pipeline.process_bytes(data, name=f"{number:02d} {kind}.docx")
                        ms.append((time.perf_counter() - started) * 1000)
                        statements.append(counted[0])
    finally:
        pipeline_module.extend_record = real
    return ms, statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL (SENFORMS_TEST_POSTGRES_URL)")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres and os.environ.get("SENFORMS_TEST_POSTGRES_URL") else [])
    forms = five_years()
    print(f"One pupil, {len(forms)} forms over {YEARS} years; median per form by forms already on record.\n")
    print(f"{'archive':>10} {'on record':>10} {'added ms':>9} {'rebuilt ms':>11} {'ratio':>6} {'SQL added':>10} {'SQL rebuilt':>12}")
    for backend in backends:
        # Alternated so that a busy machine slows both alike.
        added, rebuilt = run(backend, forms, rebuild_always=False), run(backend, forms, rebuild_always=True)
        added2, rebuilt2 = run(backend, forms, rebuild_always=False), run(backend, forms, rebuild_always=True)
        for low, high in BUCKETS:
            span = range(low, min(high, len(forms) - 1) + 1)
            a = statistics.median([min(added[0][i], added2[0][i]) for i in span])
            r = statistics.median([min(rebuilt[0][i], rebuilt2[0][i]) for i in span])
            sa = statistics.median([added[1][i] for i in span])
            sr = statistics.median([rebuilt[1][i] for i in span])
            print(f"{backend:>10} {f'{low}-{high}':>10} {a:>9.1f} {r:>11.1f} {a / r:>6.2f} {sa:>10.0f} {sr:>12.0f}")
    print("\nratio: added over rebuilt, both measured in this run (the better of two runs per form).")


if __name__ == "__main__":
    main()
