"""Time the reports of issue 12: the evidence pack for one pupil and the provision map for the
whole school, on an archive of N pupils.

    python -m bench.reports --archive URL [--upn UPN]     # an existing archive, e.g. the 50,000-
                                                          # pupil one bench/oversight.py builds
    python -m bench.reports --pupils 2000                 # builds a small SQLite archive here
    python -m bench.reports --oversight 50000 [--postgres]  # a copy of bench/oversight.py's archive

The provision map must take under 10 s on 50,000 pupils (issue 12.6)."""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select

from senforms.archive import tables as t
from senforms.archive.store import Archive
from senforms.config import Settings
from senforms.reports.evidence import evidence_pack_for
from senforms.reports.provision_map import build_map, map_docx, map_xlsx

PROVISION = [
    ("Precision teaching", "3 x 10 minutes a week", "1:1", "12.50"),
    ("Phonics catch-up group", "Daily, 20 minutes", "1:4", "8.75"),
    ("ELSA sessions", "Weekly, 30 minutes", None, None),
    ("Speech and language group", "2 x 30 min weekly", "1:3", "15.00"),
    ("Lego therapy", "as needed", "1:3", "5.00"),
    ("Handwriting club", "Mon/Wed 20 mins", "group of 6", "3.00"),
]


def build(url: str, pupils: int) -> str:
    """Pupils with one or two cycles each, three outcomes rated, three provision rows: rows
    inserted in bulk (the pipeline is timed elsewhere)."""
    archive = Archive(url)
    rng = random.Random(12)
    at = datetime.now(UTC)
    with archive.session() as s:
        first = None
        for start in range(0, pupils, 5000):
            batch = range(start, min(pupils, start + 5000))
            s.execute(insert(t.Pupil), [
                dict(upn=f"B{i:012d}", legal_forename="Pupil", legal_surname=f"N{i}", date_of_birth=date(2015, 1, 1),
                     year_group="4", created_at=at, updated_at=at) for i in batch])
        ids = s.scalars(select(t.Pupil.id).order_by(t.Pupil.id)).all()
        first = s.scalar(select(t.Pupil.upn).order_by(t.Pupil.id))
        forms = [dict(content_hash=f"h{p}", pupil_id=p, kind="review", version=1, meeting_date=date(2026, 2, 10),
                      original_name="x", received_at=at, original=b"", data="{}", read_by="tags", state="done")
                 for p in ids]
        s.execute(insert(t.ReceivedForm), forms)
        form_of = dict(s.execute(select(t.ReceivedForm.pupil_id, t.ReceivedForm.id)).all())
        s.execute(insert(t.Cycle), [
            dict(pupil_id=p, number=n, plan_date=date(2025, 11, 4) + timedelta(days=100 * (n - 1)),
                 reviewed_on=date(2026, 2, 10) + timedelta(days=100 * (n - 1)) if n == 1 else None)
            for p in ids for n in (1, 2) if n == 1 or p % 2])
        cycles = s.execute(select(t.Cycle.id, t.Cycle.pupil_id)).all()
        s.execute(insert(t.Provision), [
            dict(cycle_id=c, position=k, what=PROVISION[(c + k) % 6][0], frequency=PROVISION[(c + k) % 6][1],
                 group_size=PROVISION[(c + k) % 6][2],
                 weekly_cost=Decimal(PROVISION[(c + k) % 6][3]) if PROVISION[(c + k) % 6][3] else None)
            for c, _ in cycles for k in range(3)])
        s.execute(insert(t.Outcome), [dict(cycle_id=c, position=k, description=f"Outcome {k}") for c, _ in cycles for k in range(3)])
        outcomes = s.execute(select(t.Outcome.id, t.Cycle.pupil_id).join(t.Cycle)).all()
        s.execute(insert(t.OutcomeRating), [
            dict(outcome_id=o, review_form_id=form_of[p], reviewed_on=date(2026, 2, 10),
                 rating=rng.choice(["achieved", "partly", "not-achieved"])) for o, p in outcomes])
    archive.close()
    return str(first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", help="an archive URL to time (not changed)")
    parser.add_argument("--pupils", type=int, default=2000, help="pupils in the archive built when --archive is not given")
    parser.add_argument("--upn", help="the pupil for the evidence pack (default: the first in the archive)")
    parser.add_argument("--oversight", type=int, metavar="PUPILS",
                        help="time a fresh copy of bench/oversight.py's archive of this many pupils")
    parser.add_argument("--postgres", action="store_true", help="with --oversight: its PostgreSQL copy")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="senforms-bench-"))
    if args.oversight:
        from bench.oversight import archive_copy

        base = os.environ["SENFORMS_TEST_POSTGRES_URL"] if args.postgres else None
        with archive_copy(args.oversight, base, folder) as (url, _, _):
            run(folder, url, args.upn)
        return
    url, upn = args.archive, args.upn
    if not url:
        url = f"sqlite:///{folder / 'bench.db'}"
        began = time.perf_counter()
        upn = build(url, args.pupils)
        print(f"built {args.pupils} pupils in {time.perf_counter() - began:.1f} s")
    run(folder, url, upn)


def run(folder: Path, url: str, upn: str | None) -> None:
    from sqlalchemy import func

    settings = Settings(home=folder, archive_url=url)
    archive = Archive(url)
    with archive.reading() as s:
        pupils = s.scalar(select(func.count()).select_from(t.Pupil))
        cycles = s.scalar(select(func.count()).select_from(t.Cycle))
        provision = s.scalar(select(func.count()).select_from(t.Provision))
    print(f"{archive.engine.url.get_backend_name()}: {pupils} pupils, {cycles} cycles, {provision} rows of provision")
    archive.close()
    if upn is None:
        archive = Archive(url)
        with archive.reading() as s:
            # A pupil whose outcomes have been rated, so the pack has its chart of ratings.
            upn = s.scalar(
                select(t.Pupil.upn)
                .join(t.Cycle, t.Cycle.pupil_id == t.Pupil.id)
                .join(t.Outcome, t.Outcome.cycle_id == t.Cycle.id)
                .join(t.OutcomeRating, t.OutcomeRating.outcome_id == t.Outcome.id)
                .order_by(t.Pupil.id)
                .limit(1)
            )
        archive.close()
    print(f"evidence pack for UPN {upn}")
    began = time.perf_counter()
    evidence_pack_for(settings, str(upn), date(2026, 7, 15))
    print(f"evidence pack for one pupil: {time.perf_counter() - began:.2f} s (first chart includes importing matplotlib)")
    began = time.perf_counter()
    evidence_pack_for(settings, str(upn), date(2026, 7, 15))
    print(f"evidence pack again: {time.perf_counter() - began:.2f} s")
    began = time.perf_counter()
    result = build_map(settings, date(2025, 9, 1), date(2026, 7, 15))
    queried = time.perf_counter() - began
    map_xlsx(result)
    map_docx(result, date(2026, 7, 15))
    print(f"provision map: {queried:.2f} s to count, {time.perf_counter() - began:.2f} s with XLSX and Word "
          f"({len(result.lines)} provisions)")


if __name__ == "__main__":
    main()
