"""Benchmark: the pipeline on a realistic school's year of forms, against the floor.

A school of P pupils on SEN support, each with an early discussion note and then a plan and a
review per term, makes N filled Word forms. All are processed in one batch through
``Pipeline.process_file``. The floor, measured in the same run, is the unavoidable work: parsing
the same inputs (unzip and parse each document.xml) and rendering the same outputs with docxtpl
(one fresh template per document, as the pipeline wrote them), nothing else.

Each N runs in its own process, so peak memory (maximum resident set size) is that batch's own.

    python bench/pipeline.py                  # N = 250, 500, 1000
    python bench/pipeline.py --n 140 --quick  # one small run
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMS_PER_PUPIL = 7  # early discussion, then plan and review for three terms


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


def school_year(pupils: int) -> list[tuple[str, dict[str, Any]]]:
    """Every form of the year in the order the office would drop them."""
    cases = {
        k: json.loads((ROOT / "tests" / "cases" / f"{k}.json").read_text(encoding="utf-8"))
        for k in ("early-discussion", "support-plan", "review")
    }
    forms: list[tuple[int, str, dict[str, Any]]] = []
    for i in range(pupils):
        pupil = pupil_values(i)
        start = date(2025, 9, 8) + timedelta(days=i % 20)
        early = copy.deepcopy(cases["early-discussion"]) | {
            "pupil": pupil,
            "meeting_date": start,
            "next_meeting_date": start + timedelta(days=28),
        }
        forms.append((0, "early-discussion", early))
        for cycle in (1, 2, 3):
            plan_date = start + timedelta(weeks=2 + 13 * (cycle - 1))
            plan = copy.deepcopy(cases["support-plan"]) | {
                "pupil": pupil,
                "cycle": cycle,
                "plan_date": plan_date,
                "review_date": plan_date + timedelta(weeks=11),
            }
            review = copy.deepcopy(cases["review"]) | {
                "pupil": pupil,
                "cycle": cycle,
                "plan_date": plan_date,
                "review_date": plan_date + timedelta(weeks=11),
                "next_review_date": plan_date + timedelta(weeks=24),
                "decision": "continue",
                "outcomes": [
                    {
                        "description": o["description"],
                        "rating": ["not-achieved", "partly", "achieved"][(i + cycle + n) % 3],
                        "evidence": "Seen in class.",
                    }
                    for n, o in enumerate(plan["outcomes"])
                ],
            }
            forms += [(2 * cycle - 1, "support-plan", plan), (2 * cycle, "review", review)]
    forms.sort(key=lambda f: f[0])  # a term's forms arrive together, pupil after pupil
    return [(kind, values) for _, kind, values in forms]


def make_inputs(n: int, folder: Path) -> list[Path]:
    from senforms.kinds import KINDS
    from senforms.wordform import make_form

    pupils = -(-n // FORMS_PER_PUPIL)
    paths = []
    for number, (kind, values) in enumerate(school_year(pupils)[:n]):
        path = folder / f"{number:05d} {kind}.docx"
        path.write_bytes(make_form(KINDS[kind], school="Oakfield Primary School", values=values))
        paths.append(path)
    return paths


def floor(paths: list[Path], outputs: list[tuple[str, str]]) -> float:
    """Parse every input, render every output with docxtpl: nothing else."""
    from docxtpl import DocxTemplate
    from lxml import etree

    from senforms.documents import sample_context
    from senforms.kinds import KINDS
    from senforms.letters import LETTERS
    from senforms.render import TEMPLATES
    from senforms.wordform import build_template

    contexts = {name: sample_context(letter) for name, letter in LETTERS.items()}
    forms = {}
    for slug, kind in KINDS.items():
        buffer = io.BytesIO()
        build_template(kind).save(buffer)
        forms[slug] = buffer.getvalue()
    parser = etree.XMLParser(resolve_entities=False)

    started = time.perf_counter()
    for path in paths:
        with zipfile.ZipFile(path) as archive:
            etree.fromstring(archive.read("word/document.xml"), parser)
    for template, _audience in outputs:
        if template.startswith("form:"):
            # The floor for a pre-filled form: open the form and save it.
            source = io.BytesIO(forms[template[5:]])
            doc = DocxTemplate(source)
            doc.render({})
        elif template == "register":
            continue
        else:
            doc = DocxTemplate(str(TEMPLATES / "letters" / f"{template}.docx"))
            doc.render(contexts[template], autoescape=True)
        doc.save(io.BytesIO())
    return time.perf_counter() - started


def worker(n: int) -> dict[str, Any]:
    import resource

    from sqlalchemy import create_engine, select

    from senforms.archive import tables as t
    from senforms.config import load_settings, write_default_settings
    from senforms.pipeline import Pipeline

    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs"
        inputs.mkdir()
        paths = make_inputs(n, inputs)
        home = Path(tmp) / "home"
        home.mkdir()
        write_default_settings(home)
        settings = load_settings(home)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        failed = 0
        with Pipeline(settings) as pipeline:
            for path in paths:
                try:
                    pipeline.process_file(path)
                except Exception as exc:  # a benchmark counts failures rather than stopping
                    failed += 1
                    print(f"  {path.name}: {exc}", file=sys.stderr)
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        engine = create_engine(settings.database_url)
        with engine.connect() as conn:
            outputs = [(r.template, r.audience) for r in conn.execute(select(t.Document.template, t.Document.audience))]
        engine.dispose()
        base = floor(paths, outputs)
    return {
        "n": n,
        "failed": failed,
        "documents": len(outputs),
        "seconds": elapsed,
        "floor": base,
        "peak_mb": peak / 1024,
        "start_mb": rss_before / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="*", default=[250, 500, 1000])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    print(f"{'forms':>6} {'docs':>6} {'forms/s':>8} {'pipeline s':>10} {'floor s':>8} {'ratio':>6} {'peak MB':>8}")
    for n in args.n:
        result = subprocess.run(
            [sys.executable, __file__, "--worker", str(n)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            print(result.stderr[-3000:])
            raise SystemExit(result.returncode)
        r = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{r['n']:>6} {r['documents']:>6} {r['n'] / r['seconds']:>8.1f} {r['seconds']:>10.2f} {r['floor']:>8.2f} "
            f"{r['seconds'] / r['floor']:>6.2f} {r['peak_mb']:>8.0f}"
            + (f"  ({r['failed']} failed)" if r["failed"] else "")
        )
    print("ratio = pipeline time / floor time (aim: at most 1.5); peak MB = the batch process's maximum RSS")


if __name__ == "__main__":
    main()
