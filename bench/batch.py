"""Benchmark (issue 9.7): one batch of many forms, as a school drops a term's forms at once. Is
the time per form flat over the batch, or does it grow as the archive fills?

The forms are real Word forms (every early discussion, then every plan, then every review, made by
``bench.pipeline.make_inputs``), processed one after another through one ``Pipeline`` with the
register left to the batch, as ``senforms process`` and the watcher's worker run them. It prints
the median ms per form in each tenth of the batch, with the ratio against the first tenth measured
in the same run, and the one register write at the end.

    python bench/batch.py                      # 2,000 forms on SQLite
    python bench/batch.py --forms 300          # a quick look
    python bench/batch.py --postgres           # on SENFORMS_TEST_POSTGRES_URL's server
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import TODAY, archive_url, make_inputs, write_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--forms", type=int, default=2000, help="forms in the batch (default 2,000)")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL (SENFORMS_TEST_POSTGRES_URL)")
    args = parser.parse_args()

    from senforms.config import load_settings
    from senforms.pipeline import REGISTER_EVERY_S, Pipeline

    inputs = make_inputs(max(1, args.forms // 3))[: args.forms]
    backend = "postgresql" if args.postgres else "sqlite"
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="senforms-batch-") as tmp:
        home = Path(tmp)
        write_settings(home)
        with archive_url(backend, home) as url:
            settings = load_settings(home, archive_url=url)
            with Pipeline(settings, today=lambda: TODAY, register_every=REGISTER_EVERY_S) as pipeline:
                for _kind, name, data in inputs:
                    started = time.perf_counter()
                    pipeline.process_bytes(data, name=name)
                    times.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                pipeline.write_register(pending_only=False)
                register_s = time.perf_counter() - started
    print(f"{backend}: {len(times)} forms in one batch (each kind's forms arrive together, as a term's do)")
    print("  median ms per form in each fifth of that kind's forms; x = against its first fifth, same run")
    for kind in dict.fromkeys(k for k, _, _ in inputs):
        own = [ms for (k, _, _), ms in zip(inputs, times, strict=True) if k == kind]
        fifth = max(1, len(own) // 5)
        medians = [statistics.median(own[i : i + fifth]) for i in range(0, fifth * 5, fifth) if own[i : i + fifth]]
        cells = "  ".join(f"{m:6.1f} x{m / medians[0]:.2f}" for m in medians)
        print(f"  {kind:<17} {cells}")
    print(f"  register written once at the end: {register_s:.2f} s; whole batch {sum(times) / 1000:.1f} s")


if __name__ == "__main__":
    main()
