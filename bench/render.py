"""Benchmark: one letter and one pre-filled Word form, as the pipeline makes them, against the
floor and docxtpl measured in the same run.

- letters: ``render_docx`` on each shipped letter with ``sample_context``, a title and a date
  (as ``documents.render_documents`` calls it), beside ``bench.pipeline.FloorLetter`` (a template
  compiled once, rendered with no checks: the least a letter needs) and a fresh docxtpl
  ``DocxTemplate`` render and save (what a letter cost before templates were compiled);
- pre-filled forms: ``forms.blank_form`` with a pupil's values, per kind, beside the floor
  ``bench.pipeline`` uses for one (the blank's document.xml parsed once, a dozen boxes filled
  in a copy, serialised and zipped with the other parts raw).

    python bench/render.py             # 30 repeats
    python bench/render.py --repeat 5
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from docxtpl import DocxTemplate

    from bench.pipeline import KINDS, FloorLetter, form_floor, forms_for
    from bench.pipeline import timed as median_ms
    from senforms.config import Settings
    from senforms.documents import sample_context
    from senforms.forms import blank_form
    from senforms.letters import LETTERS
    from senforms.render import TEMPLATES, render_docx

    today = date(2026, 11, 22)
    print(f"{'letter':<24} {'ms':>6} {'floor ms':>8} {'x floor':>7} {'docxtpl ms':>10} {'x docxtpl':>9}")
    ours_all, floor_all, theirs_all = [], [], []
    for name in LETTERS:
        path = TEMPLATES / "letters" / f"{name}.docx"
        context = sample_context(name)
        floor = FloorLetter(path)

        def fresh(path: Path = path, context: dict[str, Any] = context) -> None:
            doc = DocxTemplate(path)
            doc.render(context, autoescape=True)
            doc.save(io.BytesIO())

        ours = median_ms(
            lambda path=path, context=context: render_docx(path, context, title="Review of SEN support for Mr Daniel Hart", written=today),
            args.repeat,
        )
        base = median_ms(lambda floor=floor, context=context: floor.render(context), args.repeat)
        theirs = median_ms(fresh, max(3, args.repeat // 3))
        ours_all.append(ours)
        floor_all.append(base)
        theirs_all.append(theirs)
        print(f"{name:<24} {ours:>6.2f} {base:>8.2f} {ours / base:>7.2f} {theirs:>10.2f} {ours / theirs:>9.3f}")
    print(
        f"{'median letter':<24} {statistics.median(ours_all):>6.2f} {statistics.median(floor_all):>8.2f} "
        f"{statistics.median(ours_all) / statistics.median(floor_all):>7.2f} {statistics.median(theirs_all):>10.2f} "
        f"{statistics.median(ours_all) / statistics.median(theirs_all):>9.3f}"
    )

    home = Path(tempfile.mkdtemp(prefix="senforms-bench-render-"))
    settings = Settings(home=home, school={"name": "Oakfield Primary School"})
    values = forms_for(3)
    print(f"\n{'pre-filled form':<24} {'ms':>6} {'floor ms':>8} {'x floor':>7}")
    for kind in KINDS:
        form = median_ms(lambda kind=kind: blank_form(settings, kind, values=values[kind]), args.repeat)
        base = median_ms(form_floor(kind), args.repeat)
        print(f"{kind:<24} {form:>6.2f} {base:>8.2f} {form / base:>7.2f}")
    print("\nmedian ms per call after one untimed call; floor and docxtpl measured in this run")


if __name__ == "__main__":
    main()
