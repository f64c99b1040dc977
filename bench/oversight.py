"""Benchmark for the SENCO's oversight at a local authority's size (issue 11.6): the SEND register,
the due reviews, memory, and the time to process one more form as the archive grows.

For each size, an archive of that many pupils with a year of forms each (an early discussion, a
plan and, for two pupils in three, its review) is inserted in bulk through the archive's own
tables, shaped as the pipeline files them: received forms with their answers as JSON, SEN status,
cycles, outcomes with ratings, provision, meetings with parents and one register version each.
It is built once and kept under the temp folder, keyed by size and schema head (SQLite: a file
copied for each run; PostgreSQL: a database used as the template of each run's copy), so a rerun
at the same size starts at once.

Then it prints, per size:
- register: writing the outbox's SEND register (one column query, CSV, XLSX with the census
  check) as ``outbox.write_register`` does at the end of a batch; the aim is under 5 s at 50,000;
- due: ``senforms due``'s own ``year.reviews.due_list`` (due in the next four weeks, and overdue);
- the daily round: ``year.round.run_round`` with its own producers on a day review records fall
  due, the provision map's round on a term's end, and a sample of the annual reports' day;
- memory: the Python heap's peak while the register is written (tracemalloc), and the process's
  peak RSS so far;
- per form: real early discussions, plans and reviews (bench/pipeline.py's forms) through
  ``Pipeline.process_bytes`` as a batch processes them (the register left for the batch's end),
  as a median in ms, with the ratio to the smallest size measured in this run.

    python bench/oversight.py                            # sizes 100 1000 10000 50000, SQLite
    python bench/oversight.py --quick                    # sizes 100 1000, 3 forms a kind
    python bench/oversight.py --archive "$SENFORMS_TEST_POSTGRES_URL" --sizes 100 50000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import KINDS, SHORT, forms_for, make_inputs, write_settings  # noqa: E402

TODAY = date(2026, 3, 2)
NEEDS = ["SPLD", "MLD", "SLCN", "ASD", "SEMH", "HI", "VI", "PD", "SLD", "OTH", "NSA"]
CACHE = Path(tempfile.gettempdir()) / "senforms-oversight"


# --- the question a SENCO asks most: which reviews are due ------------------------------------------


def due_reviews(session: Any, today: date) -> list[Any]:
    """What ``senforms due`` lists: ``year.reviews.due_list`` (reviews due in the next four weeks,
    and every overdue review), as one list."""
    from senforms.year.reviews import due_list

    upcoming, overdue = due_list(session, today)
    return [*upcoming, *overdue]


#: What the bench calls for the due list; replace to measure another implementation.
DUE: Callable[[Any, date], list[Any]] = due_reviews

#: The daily round is timed on a Wednesday when reviews fall due 14 days later (the archive's
#: review dates fall on one day in two; this one owes about 1 pupil in 27 a review record) and the
#: week's digest is not yet issued. The provision map is timed on the spring term's last day, the
#: annual reports on the day set below.
ROUND_DAY = date(2026, 3, 4)
TERM_END = date(2026, 4, 1)
ANNUAL_DAY = date(2026, 7, 15)
ANNUAL_SAMPLE = 20  # annual reports rendered and timed; the rest of the school's is extrapolated


# --- building the archive ----------------------------------------------------------------------------


def schema_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(ROOT / "senforms" / "archive" / "migrations"))
    return str(ScriptDirectory.from_config(config).get_current_head())


def _answers() -> dict[str, str]:
    """Each kind's validated answers as the pipeline stores them (``data``), with the pupil's
    details as placeholders filled in per pupil."""
    from senforms.kinds import KINDS as ALL

    out = {}
    for slug, values in forms_for(0).items():
        model = ALL[slug].model.model_validate(json.loads(json.dumps(values, default=str)))
        out[slug] = model.model_dump_json()
    return out


def bulk_archive(url: str, size: int) -> float:
    """``size`` pupils, each with a year's forms, inserted with Core executemany in chunks."""
    from sqlalchemy import create_engine

    from senforms.archive import tables as t
    from senforms.archive.store import Archive
    from senforms.values import upn_check_letter

    Archive(url).close()  # the schema, by the migrations
    started = time.perf_counter()
    answers = _answers()
    sample_upn = forms_for(0)["early-discussion"]["pupil"]["upn"]
    stamp = datetime(2025, 9, 1, tzinfo=UTC)
    engine = create_engine(url)
    chunk = 5000
    with engine.begin() as conn:
        for first in range(0, size, chunk):
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in (
                "pupils", "parents", "received_forms", "sen_status", "cycles", "outcomes", "outcome_ratings",
                "provision", "meetings", "documents")}  # fmt: skip
            for i in range(first, min(size, first + chunk)):
                pid = i + 1
                body = f"803{i:09d}"
                upn = upn_check_letter("X" + body) + body
                rows["pupils"].append(
                    {
                        "id": pid,
                        "upn": upn,
                        "former_upn": None,
                        "legal_forename": ["Ada", "Ben", "Cara", "Dev", "Ewa"][i % 5],
                        "legal_surname": f"Large{i:06d}",
                        "preferred_name": ["Addie", None, None, "Dev", None][i % 5],
                        "preferred_surname": None,
                        "date_of_birth": date(2012 + i % 9, 1 + i % 12, 1 + i % 28),
                        "year_group": str(1 + i % 9),
                        "class_name": ["Elm", "Oak", "Ash", "Yew"][i % 4],
                        "file_passed_on": False,
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
                rows["parents"].append({"pupil_id": pid, "position": 0, "name": f"Parent {i}", "relationship": "Mother"})
                start = date(2025, 9, 8) + timedelta(days=i % 60)
                plan_date = start + timedelta(weeks=2)
                review_due = plan_date + timedelta(weeks=11 + i % 16)
                reviewed = i % 3 != 0 and review_due <= TODAY
                forms = [("early-discussion", start), ("support-plan", plan_date)]
                if reviewed:
                    forms.append(("review", review_due))
                ids = {}
                for n, (kind, held) in enumerate(forms):
                    fid = pid * 4 + n
                    ids[kind] = fid
                    rows["received_forms"].append(
                        {
                            "id": fid,
                            "content_hash": f"{fid:064x}",
                            "pupil_id": pid,
                            "kind": kind,
                            "version": 1,
                            "meeting_date": held,
                            "original_name": f"{kind}.docx",
                            "received_at": stamp,
                            "original": b"",
                            "data": answers[kind].replace(sample_upn, upn),
                            "read_by": "tags",
                            "superseded_by_id": None,
                            "state": "done",
                        }
                    )
                    rows["meetings"].append({"pupil_id": pid, "form_id": fid, "kind": kind, "held_on": held})
                primary = NEEDS[i % len(NEEDS)]
                # One pupil in 997 has a secondary need equal to the primary: the census check has work.
                secondary = primary if i % 997 == 5 else (None if i % 2 else "SEMH" if primary != "SEMH" else "ASD")
                rows["sen_status"].append(
                    {
                        "pupil_id": pid,
                        "form_id": ids["early-discussion"],
                        "provision": "K",
                        "primary_need": primary,
                        "secondary_need": secondary,
                        "start_date": start,
                        "end_date": None,
                    }
                )
                rows["cycles"].append(
                    {
                        "id": pid,
                        "pupil_id": pid,
                        "number": 1,
                        "plan_form_id": ids["support-plan"],
                        "review_form_id": ids.get("review"),
                        "plan_date": plan_date,
                        "review_due": review_due,
                        "reviewed_on": review_due if reviewed else None,
                        "decision": "continue" if reviewed else None,
                    }
                )
                for n in range(3):
                    oid = pid * 3 + n
                    rows["outcomes"].append(
                        {"id": oid, "cycle_id": pid, "position": n, "description": f"Outcome {n + 1}", "success_criteria": None}
                    )
                    if reviewed:
                        rows["outcome_ratings"].append(
                            {
                                "outcome_id": oid,
                                "review_form_id": ids["review"],
                                "reviewed_on": review_due,
                                "rating": ["achieved", "partly", "not-achieved"][(i + n) % 3],
                                "evidence": "Seen in class.",
                            }
                        )
                for n in range(2):
                    rows["provision"].append(
                        {
                            "cycle_id": pid,
                            "position": n,
                            "what": ["Precision teaching", "Small-group phonics"][n],
                            "who": "TA",
                            "group_size": "1:1" if n == 0 else "1:4",
                            "frequency": "3 x 15 min a week",
                            "start_date": plan_date,
                            "weekly_cost": None,
                            "impact": "Good progress" if reviewed else None,
                        }
                    )
                change = f"\ufeffUPN,Surname,First name\r\n{upn},Large{i:06d},Ada\r\n".encode()
                rows["documents"].append(
                    {
                        "pupil_id": None,
                        "form_id": ids["early-discussion"],
                        "audience": "senco",
                        "title": "SEND register",
                        "template": "register",
                        "path": "senco/SEND register.csv",
                        "content_hash": f"{pid:064x}",
                        "content": change,
                        "corrected": False,
                        "created_at": stamp,
                        "delivered_at": stamp,
                    }
                )
            for name, table_rows in rows.items():
                if table_rows:
                    conn.execute(t.Base.metadata.tables[name].insert(), table_rows)
    if engine.dialect.name == "postgresql":
        # Explicit ids leave the sequences behind: the pipeline's next insert must not collide.
        with engine.begin() as conn:
            for name in ("pupils", "parents", "received_forms", "sen_status", "cycles", "outcomes",
                         "outcome_ratings", "provision", "meetings", "documents"):  # fmt: skip
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {name}))"
                )
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - started


@contextmanager
def archive_copy(size: int, base_url: str | None, home: Path) -> Iterator[tuple[str, float, bool]]:
    """A fresh copy of the cached archive of ``size`` pupils: (url, seconds to build, built now)."""
    head = schema_head()
    if base_url is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        cached = CACHE / f"archive-{size}-{head}.sqlite"
        built, seconds = False, 0.0
        if not cached.exists():
            partial = cached.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            seconds, built = bulk_archive(f"sqlite:///{partial}", size), True
            os.replace(partial, cached)
        target = home / "archive.sqlite"
        shutil.copyfile(cached, target)
        yield f"sqlite:///{target}", seconds, built
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    template = f"senforms_oversight_{size}_{head}".lower()
    run = f"{template}_run{os.getpid()}"
    built, seconds = False, 0.0
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template}) is None:
            partial = f"{template}_partial"
            conn.execute(text(f'DROP DATABASE IF EXISTS "{partial}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{partial}"'))
            seconds, built = bulk_archive(base_url.replace("/postgres?", f"/{partial}?"), size), True
            conn.execute(text(f'ALTER DATABASE "{partial}" RENAME TO "{template}"'))
        conn.execute(text(f'CREATE DATABASE "{run}" TEMPLATE "{template}"'))
    try:
        yield base_url.replace("/postgres?", f"/{run}?"), seconds, built
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{run}" WITH (FORCE)'))
        admin.dispose()


# --- measuring -----------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux and macOS report it in different units)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


_SQL = [0.0]


def _before(conn: Any, *_args: Any) -> None:
    conn.info["bench_started"] = time.perf_counter()


def _after(conn: Any, *_args: Any) -> None:
    _SQL[0] += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())


def measure(
    size: int, base_url: str | None, inputs: list[tuple[str, str, bytes]], warm: int, with_round: bool = True
) -> dict[str, Any]:
    from sqlalchemy import event

    from senforms.archive.register import census_lines, csv_bytes, register_rows, xlsx_bytes
    from senforms.config import load_settings
    from senforms.outbox import write_register
    from senforms.pipeline import Pipeline

    result: dict[str, Any] = {"size": size}
    with tempfile.TemporaryDirectory(prefix="senforms-oversight-") as tmp:
        home = Path(tmp)
        write_settings(home)
        with archive_copy(size, base_url, home) as (url, built_s, built):
            result["build_s"], result["built"] = built_s, built
            settings = load_settings(home, archive_url=url, today=TODAY.isoformat())
            with Pipeline(settings, register_every=3600.0) as pipeline:
                archive = pipeline.archive
                with archive.reading() as session:  # warm the database's cache once, untimed
                    register_rows(session, TODAY)
                started = time.perf_counter()
                with archive.session() as session:
                    write_register(session, settings.outbox, TODAY)
                result["register_s"] = time.perf_counter() - started
                with archive.reading() as session:
                    started = time.perf_counter()
                    rows = register_rows(session, TODAY)
                    result["query_s"] = time.perf_counter() - started
                    started = time.perf_counter()
                    csv_bytes(rows)
                    result["csv_s"] = time.perf_counter() - started
                    started = time.perf_counter()
                    xlsx_bytes(rows, TODAY)
                    result["xlsx_s"] = time.perf_counter() - started
                    result["rows"], result["census"] = len(rows), len(census_lines(rows))
                    del rows
                    started = time.perf_counter()
                    due = DUE(session, TODAY)
                    result["due_s"], result["due"] = time.perf_counter() - started, len(due)
                tracemalloc.start()
                with archive.session() as session:
                    write_register(session, settings.outbox, TODAY)
                result["heap_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
                result["rss_mb"] = peak_rss_mb()
                ms: dict[str, list[float]] = {k: [] for k in KINDS}
                # The archive's share of each form (SQL time), which on a shared machine varies far
                # less than the whole form's time, and is what could grow with the school.
                sql: list[float] = []
                # This process's CPU time per form: what other agents' load on the machine does
                # not add to (the wall time does, a lot).
                cpu: list[float] = []
                engine = archive.engine
                event.listen(engine, "before_cursor_execute", _before)
                event.listen(engine, "after_cursor_execute", _after)
                per_kind = len(inputs) // len(KINDS)
                for number, (kind, name, data) in enumerate(inputs):
                    _SQL[0] = 0.0
                    started, cpu_started = time.perf_counter(), time.process_time()
                    pipeline.process_bytes(data, name=name)
                    if number % per_kind >= warm:
                        ms[kind].append((time.perf_counter() - started) * 1000)
                        cpu.append((time.process_time() - cpu_started) * 1000)
                        sql.append(_SQL[0] * 1000)
                event.remove(engine, "before_cursor_execute", _before)
                event.remove(engine, "after_cursor_execute", _after)
                result["ms"] = {k: statistics.median(v) for k, v in ms.items() if v}
                result["sql_ms"] = statistics.median(sql) if sql else 0.0
                result["cpu_ms"] = statistics.median(cpu) if cpu else 0.0
                # The batch's end: the one register write for all those forms.
                started = time.perf_counter()
                pipeline.write_register()
                result["batch_end_s"] = time.perf_counter() - started
                if with_round:
                    result["round"] = measure_round(archive, settings)
    return result


def _timed_producer(producer: Any, spent: dict[str, float], counts: dict[str, int]) -> Any:
    """``producer`` as the round calls it, with the time spent inside it (not in the round's
    filing and writing between its yields) added to ``spent``."""
    name = producer.__name__

    def timed(archive: Any, settings: Any, today: date) -> Iterator[Any]:
        started = time.perf_counter()
        items = iter(producer(archive, settings, today))
        while True:
            try:
                due = next(items)
            except StopIteration:
                break
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
            counts[name] = counts.get(name, 0) + 1
            yield due
            started = time.perf_counter()

    timed.__name__ = name
    return timed


def seed_issued(archive: Any, settings: Any, day: date) -> int:
    """Mark as issued every review record the round would have issued before ``day`` (as a round
    run each school day would have), so ``day``'s round owes only what falls due that day."""
    from sqlalchemy import insert

    from senforms.archive import tables as t
    from senforms.year.reviews import open_reviews, review_key

    with archive.reading() as session:
        earlier = open_reviews(session, day, until=day + timedelta(days=settings.review_notice_days - 1))
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    with archive.session() as session:
        for start in range(0, len(earlier), 5000):
            session.execute(
                insert(t.Issued),
                [
                    {"key": review_key(r), "pupil_id": r.pupil_id, "issued_at": stamp, "for_date": r.review_date}
                    for r in earlier[start : start + 5000]
                ],
            )
    return len(earlier)


def measure_round(archive: Any, settings: Any) -> dict[str, Any]:
    """The daily round at this size: ``run_round`` on ROUND_DAY with the round's own producers
    (review records, the digest, annual reports, provision map: the last two owe nothing that
    day), then the provision map's round on TERM_END, then ANNUAL_SAMPLE annual reports."""
    import dataclasses
    from itertools import islice

    from senforms.year import round as daily

    out: dict[str, Any] = {"seeded": seed_issued(archive, settings, ROUND_DAY)}
    spent: dict[str, float] = {}
    counts: dict[str, int] = {}
    started = time.perf_counter()
    report = daily.run_round(
        settings, archive=archive, today=ROUND_DAY, producers=[_timed_producer(p, spent, counts) for p in daily.PRODUCERS]
    )
    out["round_s"] = time.perf_counter() - started
    out["issued"], out["failed"] = len(report.issued), report.failed
    out["spent"], out["counts"] = spent, counts
    out["rss_mb"] = peak_rss_mb()
    spent_map: dict[str, float] = {}
    started = time.perf_counter()
    report = daily.run_round(
        settings, archive=archive, today=TERM_END, producers=[_timed_producer(daily.provision_maps, spent_map, {})]
    )
    out["map_round_s"], out["map_s"] = time.perf_counter() - started, spent_map.get("provision_maps", 0.0)
    out["failed"] += report.failed
    # The annual reports: every pupil on SEN support gets one on the day; a sample is rendered
    # here (the producer's query, then ANNUAL_SAMPLE reports), and the whole day extrapolated.
    yearly = dataclasses.replace(settings, annual_report=f"{ANNUAL_DAY.day} {ANNUAL_DAY:%B}")
    started = time.perf_counter()
    produced = daily.annual_reports_as_set(archive, yearly, ANNUAL_DAY)
    first = next(produced)
    out["annual_first_s"] = time.perf_counter() - started
    started = time.perf_counter()
    sample = len(list(islice(produced, ANNUAL_SAMPLE)))
    out["annual_each_s"] = (time.perf_counter() - started) / max(1, sample)
    produced.close()
    del first
    from senforms.year.annual import _on_support

    with archive.reading() as session:
        out["on_support"] = len(_on_support(session, ANNUAL_DAY))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], help="comma-separated (default 100,1000,10000,50000)")
    parser.add_argument("--archive", help="a PostgreSQL URL (…/postgres?…) to bench on PostgreSQL instead of SQLite")
    parser.add_argument("--forms", type=int, help="timed forms of each kind per size (default 6, --quick 3)")
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1000, 3 forms a kind")
    parser.add_argument("--no-round", action="store_true", help="leave out the daily round's timings")
    args = parser.parse_args()
    sizes = args.sizes or ([100, 1000] if args.quick else [100, 1000, 10000, 50000])
    forms = args.forms or (3 if args.quick else 6)
    warm = 1
    inputs = make_inputs(forms + warm)
    backend = "postgresql" if args.archive else "sqlite"
    print(f"{backend}; today {TODAY:%d/%m/%Y}; cache {CACHE if not args.archive else 'template databases'}")
    header = " ".join(f"{SHORT[k] + ' ms':>10} {'x':>5}" for k in KINDS)
    print(
        f"{'pupils':>7} {'build s':>8} {'register s':>10} {'(query':>7} {'csv':>5} {'xlsx)':>6} {'rows':>6} {'census':>6}"
        f" {'due ms':>7} {'due':>5} {'heap MB':>7} {'RSS MB':>7} {header} {'cpu ms':>6} {'x':>5} {'sql ms':>6} {'x':>5} {'batch end s':>11}"
    )
    first: dict[str, float] = {}
    rounds: list[tuple[int, dict[str, Any]]] = []
    for size in sizes:
        r = measure(size, args.archive, inputs, warm, with_round=not args.no_round)
        if "round" in r:
            rounds.append((size, r["round"]))
        cells = []
        for kind in KINDS:
            value = r["ms"].get(kind)
            if value is None:
                cells.append(f"{'-':>10} {'-':>5}")
                continue
            base = first.setdefault(kind, value)
            cells.append(f"{value:>10.1f} {value / base:>5.2f}")
        build = f"{r['build_s']:.1f}" if r["built"] else "cached"
        print(
            f"{size:>7} {build:>8} {r['register_s']:>10.2f} {r['query_s']:>7.2f} {r['csv_s']:>5.2f} {r['xlsx_s']:>6.2f}"
            f" {r['rows']:>6} {r['census']:>6} {r['due_s'] * 1000:>7.1f} {r['due']:>5} {r['heap_mb']:>7.1f}"
            f" {r['rss_mb']:>7.0f} {' '.join(cells)} {r['cpu_ms']:>6.1f} {r['cpu_ms'] / first.setdefault('cpu', r['cpu_ms']):>5.2f}"
            f" {r['sql_ms']:>6.1f} {r['sql_ms'] / first.setdefault('sql', r['sql_ms']):>5.2f}"
            f" {r['batch_end_s']:>11.2f}",
            flush=True,
        )
    print(
        "\nregister s = outbox.write_register (query, CSV, XLSX, census sheet) once; the part columns are the same "
        "steps timed alone.\nper form: median ms through Pipeline.process_bytes as a batch runs it (register left to "
        "the batch's end), x = against the smallest size above;\ncpu ms = median CPU time of this process per form, sql ms = median SQL time per form (all kinds); batch end s = the one register write after those "
        "forms. heap MB = tracemalloc peak while the register is written; RSS MB = the process's peak so far."
    )
    if rounds:
        print_rounds(rounds)


def print_rounds(rounds: list[tuple[int, dict[str, Any]]]) -> None:
    print(
        f"\nthe daily round (run_round with its producers) on {ROUND_DAY:%a %d/%m/%Y}; provision map on {TERM_END:%d/%m/%Y};"
        f" annual reports on {ANNUAL_DAY:%d/%m/%Y}"
    )
    print(
        f"{'pupils':>7} {'round s':>8} {'x':>6} {'issued':>6} {'reviews s':>9} {'ms each':>7} {'digest s':>8}"
        f" {'map s':>6} {'x':>6} {'map round s':>11} {'annual q s':>10} {'ms each':>7} {'on support':>10}"
        f" {'all annual s':>12} {'RSS MB':>7}"
    )
    base: dict[str, float] = {}
    for size, r in rounds:
        spent, counts = r["spent"], r["counts"]
        reviews = counts.get("reviews_due", 0)
        each = spent.get("reviews_due", 0.0) / reviews * 1000 if reviews else 0.0
        whole_annual = r["annual_first_s"] + r["annual_each_s"] * max(0, r["on_support"] - 1)
        print(
            f"{size:>7} {r['round_s']:>8.2f} {r['round_s'] / base.setdefault('round', r['round_s']):>6.1f}"
            f" {r['issued']:>6} {spent.get('reviews_due', 0.0):>9.2f} {each:>7.1f} {spent.get('weekly_digest', 0.0):>8.2f}"
            f" {r['map_s']:>6.2f} {r['map_s'] / base.setdefault('map', r['map_s']):>6.1f} {r['map_round_s']:>11.2f}"
            f" {r['annual_first_s']:>10.2f} {r['annual_each_s'] * 1000:>7.1f} {r['on_support']:>10} {whole_annual:>12.0f}"
            f" {r['rss_mb']:>7.0f}",
            flush=True,
        )
        for failure in r["failed"]:
            print(f"        failed: {failure}")
    print(
        "round s = the whole run_round (producers, filing, writing the outbox) with review records already issued on "
        "earlier days marked as issued;\nreviews s / digest s = time inside those producers (ms each = per review "
        "record); map s = inside provision_maps on the term's end, map round s = that round whole;\nannual q s = the "
        f"annual reports' query and first report; ms each = each of the next {ANNUAL_SAMPLE}; all annual s = the "
        "report day's producer extrapolated to every pupil on support. x = against the smallest size above."
    )


if __name__ == "__main__":
    main()
