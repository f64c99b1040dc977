"""Benchmark: one pupil's record (``senforms pupil UPN``) and their export zip, in an archive of
N pupils (issue 12.6 asks for under 50 ms and under 2 s on a 50,000-pupil archive).

By default it builds an archive of ``--pupils`` pupils with SQLAlchemy Core bulk inserts (each
pupil with a parent, an early discussion, a plan and a review, the SEN register row, a cycle with
three outcomes rated at the review, three rows of provision, three meetings, six documents and a
few events), in a temporary SQLite file or, with ``--postgres``, a fresh PostgreSQL database
(SENFORMS_TEST_POSTGRES_URL) dropped afterwards. ``--archive URL`` times an existing archive
instead, such as the 50,000-pupil one bench/oversight.py builds; it is only read, except that
each timed export adds one "exported" event.

    python bench/record.py                              # 2,000 pupils on SQLite
    python bench/record.py --pupils 50000 --bytes 1000 --postgres
    python bench/record.py --archive sqlite:////tmp/oversight/senforms.db
    python bench/record.py --oversight 50000              # a copy of bench/oversight.py's archive
    python bench/record.py --oversight 50000 --postgres   # the same on PostgreSQL
    python bench/record.py --quick                        # 500 pupils, 5 runs: under a minute
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import archive_url, timed  # noqa: E402

DOCUMENT_BYTES = 6_000  # about a compressed letter's size; forms are twice that (--bytes to change)


def build(url: str, pupils: int, size: int = DOCUMENT_BYTES) -> float:
    """``pupils`` pupils with a whole cycle each, inserted in chunks; returns seconds."""
    from sqlalchemy import create_engine, func, select

    from senforms.archive import tables as t
    from senforms.archive.store import Archive
    from senforms.values import upn_check_letter

    Archive(url).close()  # the schema, by the archive's own migrations
    started = time.perf_counter()
    engine = create_engine(url)
    stamp = datetime(2025, 9, 1, tzinfo=UTC)
    blob = os.urandom(size)
    chunk = 2000
    with engine.begin() as conn:
        # Ids far above what PostgreSQL's sequences (untouched by explicit ids) will hand out next,
        # so the pipeline can still add pupils, forms and outcomes to the archive afterwards.
        base = conn.scalar(select(func.coalesce(func.max(t.Pupil.id), 0))) + 1_000_000
        for start in range(0, pupils, chunk):
            rows: dict[str, list[dict]] = {name: [] for name in ("p", "par", "f", "s", "c", "o", "r", "pr", "m", "d", "e")}
            for i in range(start, min(pupils, start + chunk)):
                pid = base + i
                body = f"803{i:09d}"
                upn = upn_check_letter("X" + body) + body
                met = date(2025, 9, 8) + timedelta(days=i % 30)
                rows["p"].append(
                    {
                        "id": pid,
                        "upn": upn,
                        "legal_forename": ["Ada", "Ben", "Cara", "Dev"][i % 4],
                        "legal_surname": f"Bench{i:06d}",
                        "date_of_birth": date(1990 + i % 30, 1 + i % 12, 1 + i % 28),
                        "year_group": str(1 + i % 6),
                        "class_name": "Elm",
                        "file_passed_on": False,
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
                rows["par"].append({"pupil_id": pid, "position": 0, "name": f"Parent {i}", "relationship": "Mother"})
                for k, (kind, when) in enumerate(
                    (("early-discussion", met), ("support-plan", met + timedelta(14)), ("review", met + timedelta(90)))
                ):
                    fid = pid * 4 + k
                    rows["f"].append(
                        {
                            "id": fid,
                            "content_hash": f"{fid:064x}",
                            "pupil_id": pid,
                            "kind": kind,
                            "version": 1,
                            "meeting_date": when,
                            "original_name": f"{kind}.docx",
                            "received_at": stamp,
                            "original": blob * 2,
                            "data": "{}",  # unreadable as a model: the record shows the form without its details
                            "read_by": "tags",
                            "superseded_by_id": None,
                            "state": "done",
                        }
                    )
                    rows["m"].append({"pupil_id": pid, "form_id": fid, "kind": kind, "held_on": when})
                    for audience in ("parents", "senco"):
                        rows["d"].append(
                            {
                                "pupil_id": pid,
                                "form_id": fid,
                                "audience": audience,
                                "title": f"{kind} letter",
                                "template": kind,
                                "path": f"{audience}/Bench{i:06d} ({upn})/{when} {kind} letter.docx",
                                "content_hash": f"{fid:064x}",
                                "content": blob,
                                "corrected": False,
                                "created_at": stamp,
                                "delivered_at": stamp,
                            }
                        )
                rows["s"].append(
                    {"pupil_id": pid, "form_id": pid * 4, "provision": "K", "primary_need": "SPLD", "start_date": met}
                )
                rows["c"].append(
                    {
                        "id": pid,
                        "pupil_id": pid,
                        "number": 1,
                        "plan_form_id": pid * 4 + 1,
                        "review_form_id": pid * 4 + 2,
                        "plan_date": met + timedelta(14),
                        "review_due": met + timedelta(90),
                        "reviewed_on": met + timedelta(90),
                        "decision": "continue",
                    }
                )
                for n in range(3):
                    oid = pid * 3 + n
                    rows["o"].append({"id": oid, "cycle_id": pid, "position": n, "description": f"Outcome {n}"})
                    rows["r"].append(
                        {
                            "outcome_id": oid,
                            "review_form_id": pid * 4 + 2,
                            "reviewed_on": met + timedelta(90),
                            "rating": ["achieved", "partly", "not-achieved"][n],
                            "evidence": "Seen in class.",
                        }
                    )
                    rows["pr"].append({"cycle_id": pid, "position": n, "what": f"Provision {n}", "weekly_cost": 12.5})
                rows["e"].append({"at": stamp, "upn": upn, "action": "received", "detail": "bench"})
            for table, key in (
                (t.Pupil, "p"),
                (t.Parent, "par"),
                (t.ReceivedForm, "f"),
                (t.SenStatus, "s"),
                (t.Cycle, "c"),
                (t.Outcome, "o"),
                (t.OutcomeRating, "r"),
                (t.Provision, "pr"),
                (t.Meeting, "m"),
                (t.Document, "d"),
                (t.Event, "e"),
            ):
                conn.execute(table.__table__.insert(), rows[key])
    with engine.begin() as conn:
        # The planner's statistics, as autovacuum (PostgreSQL) or a school's maintenance would
        # have them for an archive that grew over years rather than in one minute.
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - started


def real_pupil(url: str) -> str:
    """One pupil taken through the pipeline on real Word forms (an early discussion, a plan and a
    review, with every letter they bring), so the timings include reading real answers."""
    from bench.pipeline import KINDS, SCHOOL, forms_for
    from senforms.config import load_settings, write_default_settings
    from senforms.kinds import KINDS as ALL
    from senforms.pipeline import Pipeline
    from senforms.wordform import make_form

    home = Path(tempfile.mkdtemp(prefix="senforms-bench-record-home-"))
    write_default_settings(home)
    forms = forms_for(7)
    with Pipeline(load_settings(home, archive_url=url)) as pipeline:
        for kind in KINDS:
            path = home / f"{kind}.docx"
            path.write_bytes(make_form(ALL[kind], school=SCHOOL, values=forms[kind]))
            pipeline.process_file(path)
    return str(forms["early-discussion"]["pupil"]["upn"])


def sample_upns(url: str, n: int = 5) -> tuple[list[str], int]:
    """Pupils spread through the archive, those with the most forms first (the largest records)."""
    from sqlalchemy import create_engine, func, select

    from senforms.archive import tables as t

    engine = create_engine(url)
    with engine.connect() as conn:
        busiest = conn.execute(
            select(t.Pupil.upn)
            .join(t.ReceivedForm, t.ReceivedForm.pupil_id == t.Pupil.id)
            .group_by(t.Pupil.upn)
            .order_by(func.count().desc(), t.Pupil.upn)
            .limit(n)
        ).scalars().all()
        total = conn.scalar(select(func.count()).select_from(t.Pupil)) or 0
    engine.dispose()
    return list(busiest), total


def measure(url: str, repeat: int, also: list[str] | None = None) -> None:
    from senforms.archive.store import Archive
    from senforms.config import load_settings
    from senforms.reports.export import build_export, export_in_home
    from senforms.reports.record import read_record, record_lines

    upns, total = sample_upns(url)
    upns = [*(also or []), *upns]
    if not upns:
        sys.exit("The archive has no pupils with forms.")
    home = Path(tempfile.mkdtemp(prefix="senforms-bench-record-"))
    settings = load_settings(home, archive_url=url)
    archive = Archive(url)
    print(f"{total} pupils in {archive.engine.url.get_backend_name()}; timing {len(upns)} of the largest records")
    history, export, export_file = [], [], []
    for upn in upns:

        def show(upn: str = upn) -> None:
            with archive.reading() as session:
                record_lines(read_record(session, upn, settings=settings))

        def zip_bytes(upn: str = upn) -> None:
            with archive.reading() as session:
                build_export(session, upn, settings)

        history.append(timed(show, repeat))
        export.append(timed(zip_bytes, max(1, repeat // 4)))
        started = time.perf_counter()
        export_in_home(settings, upn, home / f"{upn}.zip")  # the command's whole work, archive opened included
        export_file.append((time.perf_counter() - started) * 1000)
    archive.close()
    print(f"pupil UPN (read + text), median per pupil: {' '.join(f'{ms:.1f}' for ms in history)} ms; worst {max(history):.1f} ms")
    print(f"export zip in memory: {' '.join(f'{ms:.0f}' for ms in export)} ms; worst {max(export):.0f} ms")
    print(f"export to a file with its event (opens the archive): worst {max(export_file):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", metavar="URL", help="time this existing archive instead of building one")
    parser.add_argument("--pupils", type=int, default=2000, help="pupils in the archive built (default 2000)")
    parser.add_argument("--postgres", action="store_true", help="build it in PostgreSQL (SENFORMS_TEST_POSTGRES_URL)")
    parser.add_argument(
        "--bytes", type=int, default=DOCUMENT_BYTES, help="bytes of each document; forms twice that (default 6000)"
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed runs of each (default 20)")
    parser.add_argument(
        "--oversight", type=int, metavar="PUPILS",
        help="time a fresh copy of bench/oversight.py's archive of this many pupils (built and cached if need be)",
    )
    parser.add_argument("--quick", action="store_true", help="500 pupils, 5 timed runs")
    args = parser.parse_args()
    if args.quick:
        args.pupils, args.repeat = 500, 5
    if args.archive:
        measure(args.archive, args.repeat)
        return
    if args.oversight:
        from bench.oversight import archive_copy

        base = os.environ["SENFORMS_TEST_POSTGRES_URL"] if args.postgres else None
        with tempfile.TemporaryDirectory() as folder, archive_copy(args.oversight, base, Path(folder)) as (url, _, _):
            measure(url, args.repeat)
        return
    with tempfile.TemporaryDirectory() as folder, archive_url("postgresql" if args.postgres else "sqlite", Path(folder)) as url:
        url = url or f"sqlite:///{Path(folder) / 'senforms.db'}"
        seconds = build(url, args.pupils, args.bytes)
        print(f"built {args.pupils} pupils in {seconds:.1f} s")
        real = real_pupil(url)
        print(f"and {real} through the pipeline on real forms (timed first below)")
        measure(url, args.repeat, [real])


if __name__ == "__main__":
    main()
