"""Benchmark: PDF letters through one running LibreOffice, and reading filled PDF forms.

    python bench/pdf.py            # 200 letters and 200 forms
    python bench/pdf.py --n 50
    python bench/pdf.py --quick    # a handful, small enough to run in a test

Every figure is printed beside a baseline measured in the same run on the same files, as a
ratio, because absolute times depend on the machine:

- letters: one LibreOffice start per letter (``soffice --convert-to pdf`` per file, the naive
  way) against one running office for all of them (``senforms.office.Office``), as one batch
  and in batches of 3 (about what one form produces), and against one ``--convert-to`` call
  for the whole batch (the fallback engine);
- forms: ``senforms.forms.extract`` (read and validate) against bare pypdf ``get_fields`` on
  the same filled PDF forms.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from docx import Document
from docx.shared import Pt
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a plain script from a checkout

from senforms.forms import extract  # noqa: E402
from senforms.kinds import KINDS  # noqa: E402
from senforms.office import Office, find_office, find_uno_python  # noqa: E402
from senforms.pdfform import make_pdf_form  # noqa: E402

CASES = ROOT / "tests" / "cases"
FORENAMES = ["Amelia", "Zoë", "Siân", "Oliver", "Chloé", "Mohammed", "Łucja", "Noah", "Aoife", "Kwame"]
SURNAMES = ["Hart", "Brontë", "O'Brien", "Nowak", "Dupré", "Khan", "Ó Súilleabháin", "Smith", "Adeyemi", "Jones"]
PROVISION = [
    ("Small-group phonics (Read Write Inc.)", "Mrs Patel, teaching assistant", "4 x 20 minutes a week"),
    ("Precision teaching of common exception words", "Mr Evans, teaching assistant", "Daily, 10 minutes"),
    ("Speech & language <Talk Boost> group", "Ms Okafor, HLTA", "3 x 30 minutes a week"),
]


def pupil_name(i: int) -> str:
    return f"{FORENAMES[i % len(FORENAMES)]} {SURNAMES[(i // len(FORENAMES)) % len(SURNAMES)]} {i:03d}"


def make_letter(path: Path, i: int) -> None:
    """A realistic one-page notification of SEN support (Code of Practice 6.48) to parents."""
    pupil = pupil_name(i)
    doc = Document()
    doc.styles["Normal"].font.size = Pt(11)
    doc.add_heading("Oakfield Primary School", level=1)
    doc.add_paragraph("Orchard Lane, Little Bramford, Norfolk NR14 6QT · 01603 000000 · office@oakfield.example")
    doc.add_paragraph(f"Joanna Hart\n{10 + i} Orchard Close\nLittle Bramford\nNorfolk NR14 6QT")
    doc.add_paragraph((date(2026, 3, 2) + timedelta(days=i % 20)).strftime("%d %B %Y"))
    doc.add_paragraph(f"Dear parent or carer of {pupil},")
    doc.add_paragraph("Special educational needs (SEN) support", style="Heading 2")
    doc.add_paragraph(
        f"Thank you for meeting us to talk about {pupil}'s learning. As we agreed, the school will "
        "give SEN support from this term. This letter is the formal notice that the SEND Code of "
        "Practice (paragraph 6.48) asks us to send, and it sets out what we will do together."
    )
    table = doc.add_table(rows=1, cols=3)
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, ("Support", "Who", "How often"), strict=True):
        cell.text = text
    for row in PROVISION:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    doc.add_paragraph(
        "At home, reading together for ten minutes each evening and practising the word cards in "
        "the reading folder will help a great deal. We will review progress with you on "
        f"{(date(2026, 6, 1) + timedelta(days=i % 10)).strftime('%d %B %Y')}."
    )
    doc.add_paragraph(
        "If you would like independent advice, Norfolk SENDIASS (01603 000001, www.sendiass.example) "
        "can help, and the Local Offer describes the services available to families."
    )
    doc.add_paragraph("Yours sincerely,\n\n\nZoë Brontë\nSENCO")
    doc.save(str(path))


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def count_pdfs(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.pdf"))


def bench_letters(n: int, work: Path) -> list[tuple[str, float, float]]:
    """(label, seconds, baseline seconds) for each way of converting ``n`` letters."""
    letters_dir = work / "letters"
    letters_dir.mkdir()
    letters = [letters_dir / f"letter-{i:03d}.docx" for i in range(n)]
    for i, path in enumerate(letters):
        make_letter(path, i)

    def one_start_per_letter(out: Path) -> None:
        # The fallback engine given one letter at a time: exactly one soffice start per letter.
        with Office(engine="cli") as office:
            for letter in letters:
                office.convert([letter], out)

    def running_office(out: Path, size: int) -> None:
        with Office(engine="uno") as office:
            for start in range(0, n, size):
                office.convert(letters[start : start + size], out)

    def one_call_per_batch(out: Path) -> None:
        with Office(engine="cli") as office:
            office.convert(letters, out)

    ways: list[tuple[str, Callable[[Path], None]]] = [
        ("one LibreOffice start per letter (baseline)", one_start_per_letter),
    ]
    if find_uno_python(find_office()) is not None:  # type: ignore[arg-type]
        ways += [
            ("one running office, one batch", lambda out: running_office(out, n)),
            ("one running office, batches of 3", lambda out: running_office(out, 3)),
        ]
    else:
        print("(LibreOffice's Python bridge is missing: install python3-uno to time the running office)")
    ways.append(("one --convert-to call for the batch", one_call_per_batch))

    results: list[tuple[str, float, float]] = []
    baseline = 0.0
    for k, (label, way) in enumerate(ways):
        out = work / f"out-{k}"
        seconds = timed(lambda way=way, out=out: way(out))
        if count_pdfs(out) != n:
            raise SystemExit(f"{label}: made {count_pdfs(out)} PDFs, not {n}")
        baseline = baseline or seconds
        results.append((label, seconds, baseline))
    return results


def filled_values(slug: str, i: int) -> dict[str, Any]:
    values = copy.deepcopy(json.loads((CASES / f"{slug}.json").read_text(encoding="utf-8")))
    forename, surname = pupil_name(i).rsplit(" ", 2)[:2]
    values["pupil"]["legal_forename"] = forename
    values["pupil"]["legal_surname"] = surname
    return values


def bench_forms(n: int, work: Path) -> list[tuple[str, float, float]]:
    forms_dir = work / "forms"
    forms_dir.mkdir()
    slugs = list(KINDS)
    paths = []
    for i in range(n):
        slug = slugs[i % len(slugs)]
        path = forms_dir / f"{slug}-{i:03d}.pdf"
        path.write_bytes(make_pdf_form(KINDS[slug], school="Oakfield Primary School", values=filled_values(slug, i)))
        paths.append(path)

    def bare_pypdf() -> None:
        for path in paths:
            fields = PdfReader(io.BytesIO(path.read_bytes())).get_fields()
            assert fields

    def through_senforms() -> None:
        for path in paths:
            model, _warnings = extract(path.read_bytes(), name=path.name)
            assert model is not None

    # Reading is quick, so the order and warm-up matter: one pass of each to warm caches and
    # lazy imports, then the best of three alternating rounds.
    bare_pypdf(), through_senforms()
    rounds = [(timed(bare_pypdf), timed(through_senforms)) for _ in range(3)]
    baseline = min(r[0] for r in rounds)
    return [
        ("bare pypdf get_fields (baseline)", baseline, baseline),
        ("senforms.forms.extract (read + validate)", min(r[1] for r in rounds), baseline),
    ]


def report(title: str, n: int, rows: list[tuple[str, float, float]], *, higher: str) -> None:
    print(f"\n{title} ({n} files)")
    for k, (label, seconds, baseline) in enumerate(rows):
        if k == 0:
            ratio = ""
        elif higher == "faster":
            ratio = f"{baseline / seconds:6.2f}x faster than the baseline"
        else:
            ratio = f"{seconds / baseline:6.2f}x the baseline's time"
        print(f"  {label:<45} {seconds:8.2f} s  {1000 * seconds / n:7.1f} ms each  {ratio}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="how many letters and forms (default 200)")
    parser.add_argument("--quick", action="store_true", help="a handful of files, for a test")
    args = parser.parse_args(argv)
    n = 2 if args.quick else args.n
    if find_office() is None:
        print("LibreOffice is not installed: nothing to measure.")
        return 1
    work = Path(tempfile.mkdtemp(prefix="senforms-bench-"))
    try:
        report("PDF letters", n, bench_letters(n, work), higher="faster")
        report("Reading filled PDF forms", n, bench_forms(n, work), higher="slower")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
