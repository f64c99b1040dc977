"""Benchmark: reading a filled Word form, against a bare parse of its document.xml measured in the
same run.

For one filled form of each kind (built as ``bench/pipeline.py`` builds them), prints the median ms
of ``senforms.forms.read`` + ``senforms.validate.validate``, of ``read`` alone, and of the
baseline: open the zip and ``etree.fromstring`` its ``word/document.xml`` (no reading at all). The
ratio "N x a bare parse" is what to compare between versions of the reader, since both figures
come from the same run on the same (shared, noisy) machine.

    python bench/read.py                 # 300 rounds a kind
    python bench/read.py --rounds 1000
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import KINDS, SHORT, make_inputs  # noqa: E402


def median_ms(fn: Callable[[], Any], rounds: int) -> float:
    fn()  # warm caches (layouts, compiled patterns) so the first call does not count
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)

    from lxml import etree

    from senforms.forms import read
    from senforms.read import forget_read_forms
    from senforms.validate import validate

    inputs = make_inputs(1)
    one = {kind: next(data for k, _, data in inputs if k == kind) for kind in KINDS}
    print(f"median of {args.rounds} rounds per figure")
    for kind in KINDS:
        data = one[kind]

        def bare(data: bytes = data) -> Any:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return etree.fromstring(archive.read("word/document.xml"))

        # Each round forgets the forms read last, so it times a reading, not a copy of one.
        def read_only(data: bytes = data) -> Any:
            forget_read_forms()
            return read(data, name="form.docx")

        def read_validate(data: bytes = data) -> Any:
            forget_read_forms()
            return validate(read(data, name="form.docx"))

        floor = median_ms(bare, args.rounds)
        reading = median_ms(read_only, args.rounds)
        both = median_ms(read_validate, args.rounds)
        print(
            f"{SHORT[kind]:>6}: read+validate {both:5.2f} ms = {both / floor:4.1f} x a bare parse "
            f"({floor:.2f} ms); read alone {reading:5.2f} ms = {reading / floor:4.1f} x"
        )


if __name__ == "__main__":
    main()
