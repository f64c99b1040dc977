"""Benchmark: one document at a time, against docxtpl in the same run.

- letters: ``render_docx`` (templates compiled once) against a fresh ``DocxTemplate`` render and
  save of the same template and context, per shipped letter;
- pre-filled Word forms: ``make_form`` with a pupil's values, per kind;
- pre-filled PDF forms: ``make_pdf_form`` with the same values, per kind, beside the time
  reportlab takes to draw that form (which is now done once per kind and school).

    python bench/documents.py            # 30 repeats
    python bench/documents.py --repeat 5
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from docxtpl import DocxTemplate

    from bench.pipeline import KINDS, forms_for
    from bench.pipeline import timed as median_ms
    from senforms import pdfform
    from senforms.documents import sample_context
    from senforms.kinds import KINDS as ALL
    from senforms.letters import LETTERS
    from senforms.render import TEMPLATES, render_docx
    from senforms.wordform import make_form

    print(f"{'letter':<24} {'render_docx ms':>14} {'docxtpl ms':>10} {'ratio':>6}")
    for name in LETTERS:
        path = TEMPLATES / "letters" / f"{name}.docx"
        context = sample_context(name)

        def fresh(path: Path = path, context: dict[str, Any] = context) -> None:
            doc = DocxTemplate(path)
            doc.render(context, autoescape=True)
            doc.save(io.BytesIO())

        ours = median_ms(lambda path=path, context=context: render_docx(path, context), args.repeat)
        theirs = median_ms(fresh, max(3, args.repeat // 3))
        print(f"{name:<24} {ours:>14.2f} {theirs:>10.2f} {ours / theirs:>6.3f}")

    print(f"\n{'pre-filled form':<24} {'Word ms':>8} {'PDF ms':>8} {'PDF draw ms':>12}")
    values = forms_for(3)
    for kind in KINDS:
        form = ALL[kind]
        word = median_ms(lambda form=form, kind=kind: make_form(form, school="Oakfield", values=values[kind]), args.repeat)
        pdf = median_ms(
            lambda form=form, kind=kind: pdfform.make_pdf_form(form, school="Oakfield", values=values[kind]),
            max(3, args.repeat // 3),
        )
        draw = median_ms(lambda form=form: pdfform._draw(form, "Oakfield", {}), max(3, args.repeat // 3))
        print(f"{kind:<24} {word:>8.2f} {pdf:>8.1f} {draw:>12.1f}")
    print("\nmedians; the PDF draw column is what drawing the form every time used to add to each PDF form")


if __name__ == "__main__":
    main()
