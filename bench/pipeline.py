"""Benchmark: ms per form of each kind through the real pipeline, against two baselines measured
in the same run, at several archive sizes, on SQLite and (when SENFORMS_TEST_POSTGRES_URL is set)
on PostgreSQL.

Baselines, measured in this process after each row of the table, so that each row's ratios are
against baselines of the same minute (a shared machine's speed drifts over a run of several
minutes; the first row's baselines are printed in full above the table):

- floor: the work a form cannot avoid, done with no checks: read the form (unzip, parse,
  validate), render each of its letters from a template compiled once (the body's Jinja
  template rendered, compressed, and zipped with the template's other parts copied raw), fill
  its pre-filled form into a copy of the blank's parsed document.xml, write each document to a
  new file (not synced to disk, as the pipeline's documents and archive commits are). The
  archive's SQL is not in the floor (the issue puts it at about 2.3 ms a form).
- docxtpl: a fresh ``DocxTemplate`` render and save of one letter (the mean over the letters the
  pipeline writes), which is what a letter cost before templates were compiled once.

Under each row, what its timed forms asked of the archive: statements and commits per form, and
on PostgreSQL the time blocked waiting for the server, which is where PostgreSQL's forms spend
what SQLite's do not (each round trip a wake-up of the server and of the watcher).

The archive-size axis: before timing, ``size`` pupils on SEN support (each with a parent, a
received form and a register row) are bulk-inserted through the archive's own tables with
SQLAlchemy Core, so the register and the identity look-ups see a school of that size.

    python bench/pipeline.py                         # sizes 100 1000 10000 50000, 8 forms a kind
    python bench/pipeline.py --quick                 # sizes 100 1000, 4 forms a kind: about a minute
    python bench/pipeline.py --sizes 100 50000 --forms 5 --no-postgres
"""

from __future__ import annotations

import argparse
import copy
import io
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KINDS = ("early-discussion", "support-plan", "review")
SHORT = {"early-discussion": "early", "support-plan": "plan", "review": "review"}
SCHOOL = "Oakfield Primary School"
TODAY = date(2026, 3, 2)


# --- inputs --------------------------------------------------------------------------------------


def pupil_values(i: int) -> dict[str, Any]:
    from senforms.values import upn_check_letter

    body = f"801{2000 + i // 900:04d}{5 + (i // 300) % 5:02d}{i % 300:03d}"
    first = ["Amelia", "Noah", "Zoë", "Oliver", "Aisha", "Łukasz", "Freya", "Jack", "Chloé", "Yusuf"][i % 10]
    return {
        "upn": upn_check_letter("X" + body) + body,
        "legal_forename": first,
        "legal_surname": f"Pupil{i:04d}",
        "date_of_birth": date(2014 + i % 6, 1 + i % 12, 1 + i % 28),
        "year_group": str(1 + i % 6),
        "class_name": ["Willow", "Oak", "Ash"][i % 3],
        "parents": [
            {
                "name": f"Parent of {first}",
                "relationship": "Mother",
                "address": "1 High Street\nNorwich",
                "preferred_contact": "letter",
            }
        ],
    }


def forms_for(pupil: int) -> dict[str, dict[str, Any]]:
    """One pupil's early discussion, first plan and first review, as nested values."""
    cases = {k: json.loads((ROOT / "tests" / "cases" / f"{k}.json").read_text(encoding="utf-8")) for k in KINDS}
    values = pupil_values(pupil)
    start = date(2025, 9, 8) + timedelta(days=pupil % 20)
    plan_date = start + timedelta(weeks=2)
    plan = copy.deepcopy(cases["support-plan"]) | {
        "pupil": values,
        "cycle": 1,
        "plan_date": plan_date,
        "review_date": plan_date + timedelta(weeks=11),
    }
    return {
        "early-discussion": copy.deepcopy(cases["early-discussion"])
        | {"pupil": values, "meeting_date": start, "next_meeting_date": start + timedelta(days=28)},
        "support-plan": plan,
        "review": copy.deepcopy(cases["review"])
        | {
            "pupil": values,
            "cycle": 1,
            "plan_date": plan_date,
            "review_date": plan_date + timedelta(weeks=11),
            "next_review_date": plan_date + timedelta(weeks=24),
            "decision": "continue",
            "outcomes": [
                {"description": o["description"], "rating": ["not-achieved", "partly", "achieved"][n % 3], "evidence": "Seen."}
                for n, o in enumerate(plan["outcomes"])
            ],
        },
    }


def make_inputs(pupils: int) -> list[tuple[str, str, bytes]]:
    """(kind, file name, .docx bytes): every early discussion, then every plan, then every review,
    as a term's forms arrive."""
    from senforms.kinds import KINDS as ALL
    from senforms.wordform import make_form

    per_pupil = [forms_for(i) for i in range(pupils)]
    return [
        (kind, f"{i:05d} {kind}.docx", make_form(ALL[kind], school=SCHOOL, values=forms[kind]))
        for kind in KINDS
        for i, forms in enumerate(per_pupil)
    ]


# --- the archive at a given size ------------------------------------------------------------------


@contextmanager
def archive_url(backend: str, home: Path) -> Iterator[str | None]:
    """None for SQLite in the home folder, else a fresh PostgreSQL database dropped afterwards."""
    if backend == "sqlite":
        yield None
        return
    from sqlalchemy import create_engine, text

    base = os.environ["SENFORMS_TEST_POSTGRES_URL"]
    name = f"senforms_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.replace("/postgres?", f"/{name}?")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def bulk_school(url: str, size: int) -> float:
    """``size`` pupils on SEN support, inserted in chunks with Core executemany; returns seconds."""
    from sqlalchemy import create_engine, func, select

    from senforms.archive import tables as t
    from senforms.values import upn_check_letter

    started = time.perf_counter()
    engine = create_engine(url)
    stamp = datetime(2025, 9, 1, tzinfo=UTC)
    chunk = 5000
    with engine.begin() as conn:
        base = conn.scalar(select(func.coalesce(func.max(t.Pupil.id), 0))) + 1_000_000
        for start in range(0, size, chunk):
            ids = range(start, min(size, start + chunk))
            pupils, parents, received, status = [], [], [], []
            for i in ids:
                pid = base + i
                body = f"802{i:09d}"
                pupils.append(
                    {
                        "id": pid,
                        "upn": upn_check_letter("X" + body) + body,
                        "former_upn": None,
                        "legal_forename": ["Ada", "Ben", "Cara", "Dev"][i % 4],
                        "legal_surname": f"Bulk{i:06d}",
                        "preferred_name": None,
                        "date_of_birth": date(2013 + i % 7, 1 + i % 12, 1 + i % 28),
                        "year_group": str(1 + i % 6),
                        "class_name": "Elm",
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
                parents.append({"pupil_id": pid, "position": 0, "name": f"Parent {i}", "relationship": "Mother"})
                received.append(
                    {
                        "id": pid,
                        "content_hash": f"{i:064x}",
                        "pupil_id": pid,
                        "kind": "early-discussion",
                        "version": 1,
                        "meeting_date": date(2025, 6, 1),
                        "original_name": "bulk.docx",
                        "received_at": stamp,
                        "original": b"",
                        "data": "{}",
                        "read_by": "tags",
                        "superseded_by_id": None,
                        "state": "done",
                    }
                )
                status.append(
                    {
                        "pupil_id": pid,
                        "form_id": pid,
                        "provision": "K",
                        "primary_need": "SPLD",
                        "secondary_need": None,
                        "start_date": date(2025, 6, 1),
                        "end_date": None,
                    }
                )
            conn.execute(t.Pupil.__table__.insert(), pupils)
            conn.execute(t.Parent.__table__.insert(), parents)
            conn.execute(t.ReceivedForm.__table__.insert(), received)
            conn.execute(t.SenStatus.__table__.insert(), status)
    engine.dispose()
    return time.perf_counter() - started


# --- the pipeline ----------------------------------------------------------------------------------


@dataclass
class Run:
    backend: str
    size: int
    ms: dict[str, list[float]]
    documents: dict[str, list[str]]  # kind -> templates written for one form of it
    failed: int
    bulk_s: float
    register_s: float  # the SEND register written once for the batch, as the watcher does
    database: DatabaseWork  # what the timed forms asked of the archive


class DatabaseWork:
    """What the timed forms asked of the archive: statements and commits, and on PostgreSQL the
    time spent blocked waiting for the server (psycopg's ``Connection.wait``, through which every
    round trip goes). Counted only while ``on``; ``close`` puts psycopg back as it was."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.on = False
        self.forms = self.statements = self.commits = 0
        self.waited = 0.0
        self._listeners = [(Engine, "before_cursor_execute", self._statement), (Engine, "commit", self._commit)]
        for target, name, fn in self._listeners:
            event.listen(target, name, fn)
        try:
            import psycopg
        except ImportError:
            self._real_wait = None
            return
        self._real_wait = real = psycopg.Connection.wait

        def wait(connection: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return real(connection, *args, **kwargs)
            finally:
                if self.on:
                    self.waited += time.perf_counter() - started

        psycopg.Connection.wait = wait  # type: ignore[assignment]

    def _statement(self, *args: Any) -> None:
        self.statements += self.on

    def _commit(self, *args: Any) -> None:
        self.commits += self.on

    def close(self) -> None:
        from sqlalchemy import event

        for target, name, fn in self._listeners:
            event.remove(target, name, fn)
        if self._real_wait is not None:
            import psycopg

            psycopg.Connection.wait = self._real_wait  # type: ignore[method-assign]

    def summary(self, backend: str) -> str:
        n = max(self.forms, 1)
        said = f"{self.statements / n:.1f} statements and {self.commits / n:.1f} commits a form"
        if backend == "postgresql":
            said += f", {self.waited * 1000 / n:.1f} ms of it waiting for the server"
        return said


def run_pipeline(backend: str, size: int, inputs: list[tuple[str, str, bytes]], warm: int) -> Run:
    from sqlalchemy import create_engine, select

    from senforms.archive import tables as t
    from senforms.config import load_settings
    from senforms.pipeline import REGISTER_EVERY_S, Pipeline

    with tempfile.TemporaryDirectory(prefix="senforms-bench-") as tmp:
        home = Path(tmp)
        write_settings(home)
        with archive_url(backend, home) as url:
            settings = load_settings(home, archive_url=url)
            ms: dict[str, list[float]] = {k: [] for k in KINDS}
            failed = 0
            database = DatabaseWork()
            # As the watcher and `senforms process` run it: the outbox's register is written once
            # per batch (or every REGISTER_EVERY_S while forms keep coming), timed on its own below.
            with Pipeline(settings, today=lambda: TODAY, register_every=REGISTER_EVERY_S) as pipeline:
                bulk = bulk_school(settings.database_url, size)
                for number, (kind, name, data) in enumerate(inputs):
                    # The first `warm` pupils' forms are not timed: caches fill and the database warms.
                    timed_form = database.on = number % (len(inputs) // len(KINDS)) >= warm
                    started = time.perf_counter()
                    try:
                        pipeline.process_bytes(data, name=name)
                    except Exception as exc:  # a benchmark counts failures rather than stopping
                        failed += 1
                        print(f"  {name}: {exc}", file=sys.stderr)
                        continue
                    finally:
                        database.on = False
                    elapsed = (time.perf_counter() - started) * 1000
                    if timed_form:
                        ms[kind].append(elapsed)
                        database.forms += 1
                started = time.perf_counter()
                pipeline.write_register()
                register_s = time.perf_counter() - started
            database.close()
            engine = create_engine(settings.database_url)
            with engine.connect() as conn:
                rows = conn.execute(
                    select(t.ReceivedForm.id, t.ReceivedForm.kind, t.Document.template)
                    .join(t.Document, t.Document.form_id == t.ReceivedForm.id)
                    .order_by(t.Document.id)
                ).all()
            engine.dispose()
    first: dict[str, int] = {}
    documents: dict[str, list[str]] = {k: [] for k in KINDS}
    for form_id, kind, template in rows:
        if first.setdefault(kind, form_id) == form_id:
            documents[kind].append(template)
    return Run(backend, size, ms, documents, failed, bulk, register_s, database)


def write_settings(home: Path) -> None:
    from senforms.config import write_default_settings

    write_default_settings(home)
    path = home / "senforms.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('name = "(fill in)"', f'name = "{SCHOOL}"', 1), "utf-8")


# --- the baselines ---------------------------------------------------------------------------------


def timed(work: Callable[[], Any], repeat: int) -> float:
    """Median ms of ``repeat`` calls after one untimed call."""
    work()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


class FloorLetter:
    """A letter template compiled once, rendered with no checks: the least work a letter needs."""

    def __init__(self, path: Path) -> None:
        from docxtpl import DocxTemplate
        from jinja2.sandbox import SandboxedEnvironment
        from lxml import etree

        data = path.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            self.members = [(i, archive.read(i)) for i in archive.infolist()]
        root = etree.fromstring(dict((i.filename, b) for i, b in self.members)["word/document.xml"])
        body = root.find("{http://schemas.openxmlformats.org/wordprocessingml/2006/main}body")
        source = DocxTemplate(path).patch_xml(etree.tostring(body, encoding="unicode"))
        self.head, self.tail = _split_around(etree.tostring(root, encoding="unicode"), body)
        self.template = SandboxedEnvironment(autoescape=True).from_string(source)
        # The other parts compressed once, as the template holds them; only the body changes.
        self.raw = [(i, zlib.compress(b, 6)[2:-4], zlib.crc32(b), len(b)) for i, b in self.members]

    def render(self, context: dict[str, Any]) -> bytes:
        xml = (self.head + self.template.render(context) + self.tail).encode()
        parts = [
            (i, zlib.compress(xml, 6)[2:-4], zlib.crc32(xml), len(xml)) if i.filename == "word/document.xml" else raw
            for raw in self.raw
            for i in [raw[0]]
        ]
        return _zip(parts)


def _split_around(document: str, body: Any) -> tuple[str, str]:
    start = document.index("<w:body")
    end = document.index("</w:body>") + len("</w:body>")
    return document[:start], document[end:]


def _zip(parts: list[tuple[zipfile.ZipInfo, bytes, int, int]]) -> bytes:
    """A zip from members already compressed (deflate): local headers, data, central directory."""
    import struct

    out = io.BytesIO()
    central = []
    for info, data, crc, size in parts:
        name = info.filename.encode()
        offset = out.tell()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0))
        out.write(name)
        out.write(data)
        central.append(
            struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(data), size, len(name), 0, 0, 0, 0, 0, offset)
            + name
        )
    start = out.tell()
    out.write(b"".join(central))
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), out.tell() - start, start, 0))
    return out.getvalue()


def form_floor(slug: str) -> Callable[[], bytes]:
    """A pre-filled form at its floor, as a callable: the blank's document.xml parsed once, then per
    form a copy of the tree with a dozen boxes filled, serialised and zipped with the other parts raw."""
    from lxml import etree

    from senforms.kinds import KINDS as ALL
    from senforms.layout import Widget
    from senforms.wordform import build_template, set_control
    from senforms.wordml import w

    buffer = io.BytesIO()
    build_template(ALL[slug]).save(buffer)
    with zipfile.ZipFile(buffer) as archive:
        members = [(i, archive.read(i)) for i in archive.infolist()]
    tree = etree.fromstring(dict((i.filename, b) for i, b in members)["word/document.xml"])
    raw = [(i, zlib.compress(b, 6)[2:-4], zlib.crc32(b), len(b)) for i, b in members]

    def prefill() -> bytes:
        root = copy.deepcopy(tree)
        for n, sdt in enumerate(root.iter(w("sdt"))):
            if n >= 12:
                break
            set_control(sdt, Widget.text, "A value typed in the box")
        xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
        return _zip(
            [
                (r[0], zlib.compress(xml, 6)[2:-4], zlib.crc32(xml), len(xml)) if r[0].filename == "word/document.xml" else r
                for r in raw
            ]
        )

    return prefill


def baselines(inputs: list[tuple[str, str, bytes]], documents: dict[str, list[str]], repeat: int) -> dict[str, Any]:
    """Floor per kind and docxtpl per letter, in ms."""
    from docxtpl import DocxTemplate

    from senforms.documents import sample_context
    from senforms.forms import read
    from senforms.letters import LETTERS
    from senforms.read import forget_read_forms
    from senforms.render import TEMPLATES
    from senforms.validate import validate

    letters_used = sorted({d for ds in documents.values() for d in ds if d in LETTERS})
    contexts = {name: sample_context(name) for name in letters_used}
    compiled = {name: FloorLetter(TEMPLATES / "letters" / f"{name}.docx") for name in letters_used}

    prefills = {slug: form_floor(slug) for slug in KINDS}

    one = {kind: next(data for k, _, data in inputs if k == kind) for kind in KINDS}
    out = Path(tempfile.mkdtemp(prefix="senforms-floor-"))
    serial = itertools.count()
    result: dict[str, Any] = {"floor": {}, "floor_parts": {}}
    for kind in KINDS:
        docs = documents[kind]

        def read_validate(kind: str = kind) -> Any:
            forget_read_forms()  # a reading each round, not a copy of the one before
            return validate(read(one[kind], name="form.docx"))

        def letters(kind: str = kind, docs: list[str] = docs) -> list[bytes]:
            made = [compiled[d].render(contexts[d]) for d in docs if d in compiled]
            made += [prefills[d[5:]]() for d in docs if d.startswith("form:")]
            return made

        made = letters()

        def write(made: list[bytes] = made) -> None:
            # Each to a new file, as a form's documents always are (a file written over again
            # skips the file system's work of creating one).
            for data in made:
                (out / f"{next(serial)}.docx").write_bytes(data)

        parts = {"read": timed(read_validate, repeat), "render": timed(letters, repeat), "write": timed(write, repeat)}
        result["floor_parts"][kind] = parts
        result["floor"][kind] = sum(parts.values())
    forget_read_forms()  # so the pipeline below reads each form itself, not a copy kept by the floor

    def docxtpl(name: str) -> None:
        doc = DocxTemplate(TEMPLATES / "letters" / f"{name}.docx")
        doc.render(contexts[name], autoescape=True)
        doc.save(io.BytesIO())

    per_letter = {name: timed(lambda name=name: docxtpl(name), max(3, repeat // 3)) for name in letters_used}
    result["docxtpl_letters"] = per_letter
    result["docxtpl"] = statistics.mean(per_letter.values())
    return result


# --- the table ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", help="archive sizes in pupils (default 100 1000 10000 50000)")
    parser.add_argument("--forms", type=int, help="timed forms of each kind per size (default 8, --quick 4)")
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1000, 4 forms a kind")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only, even if PostgreSQL is set")
    args = parser.parse_args()
    sizes = args.sizes or ([100, 1000] if args.quick else [100, 1000, 10000, 50000])
    forms = args.forms or (4 if args.quick else 8)
    warm = 1
    backends = ["sqlite"]
    if os.environ.get("SENFORMS_TEST_POSTGRES_URL") and not args.no_postgres:
        backends.append("postgresql")

    inputs = make_inputs(forms + warm)
    first = True
    for backend in backends:
        for size in sizes:
            run = run_pipeline(backend, size, inputs, warm)
            base = baselines(inputs, run.documents, 15 if args.quick else 30)
            if first:
                print_baselines(base, run.documents)
                first = False
            print_run(run, base)
    print(
        "\nms = median per form through Pipeline.process_bytes (the first pupil's forms untimed); "
        "x floor and x docxtpl are that median over the baselines measured right after that row "
        "(docxtpl: the row's own docxtpl ms per letter). register once: the whole SEND register (CSV "
        "and XLSX) written at the end of the batch. archive: per timed form, the statements and commits it ran, "
        "and on PostgreSQL the time blocked waiting for the server (every round trip: BEGIN, statements, commits)."
    )


def print_baselines(base: dict[str, Any], documents: dict[str, list[str]]) -> None:
    print("Baselines (median ms, this run):")
    print(f"  docxtpl, one fresh letter: {base['docxtpl']:.1f} ms (mean of " + ", ".join(
        f"{n} {v:.1f}" for n, v in base["docxtpl_letters"].items()) + ")")
    for kind in KINDS:
        p = base["floor_parts"][kind]
        print(
            f"  floor, {SHORT[kind]:>6}: {base['floor'][kind]:5.1f} ms = read+validate {p['read']:.1f}"
            f" + render {p['render']:.1f} + write {p['write']:.1f}   ({', '.join(documents[kind])})"
        )
    print()
    header = " ".join(f"{SHORT[k] + ' ms':>10} {'xfloor':>6} {'xdocxtpl':>8}" for k in KINDS)
    print(f"{'archive':>11} {'pupils':>7} {'docxtpl':>7} {header}")


def print_run(run: Run, base: dict[str, Any]) -> None:
    cells = []
    for kind in KINDS:
        times = run.ms[kind]
        if not times:
            cells.append(f"{'-':>10} {'-':>6} {'-':>8}")
            continue
        median = statistics.median(times)
        cells.append(f"{median:>10.1f} {median / base['floor'][kind]:>6.1f} {median / base['docxtpl']:>8.2f}")
    note = f"  ({run.failed} failed)" if run.failed else ""
    print(
        f"{run.backend:>11} {run.size:>7} {base['docxtpl']:>7.1f} {' '.join(cells)}   register once {run.register_s:.2f} s"
        f"   bulk insert {run.bulk_s:.1f} s{note}",
        flush=True,
    )
    print(f"{'':>20}archive: {run.database.summary(run.backend)}", flush=True)


if __name__ == "__main__":
    main()
