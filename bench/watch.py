"""Benchmark: how soon a dropped form's documents are in the outbox, and burst throughput.

Runs the real ``senforms watch`` as a subprocess on a fresh home folder, once with native file
events and once polling, with the default settling delay from senforms.toml:

- one by one: each form is written into the inbox, and the time until the watcher has written
  its documents to the outbox (its "Processed" line in senforms.log) is the latency;
- in one burst: all forms written at once; the time from the first write until the last is
  processed, against ``senforms process`` on the same files in the same run.

    python bench/watch.py                 # 200 forms
    python bench/watch.py --n 50 --poll 5
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = ["Amelia", "Noah", "Zoë", "Oliver", "Aisha", "Łukasz", "Freya", "Jack", "Chloé", "Yusuf"]


def form(i: int) -> bytes:
    """An early discussion note for pupil ``i``, from tests/cases with its own identity."""
    from senforms.kinds import KINDS
    from senforms.values import upn_check_letter
    from senforms.wordform import make_form
    from tests.conftest import case

    values: dict[str, Any] = copy.deepcopy(case("early-discussion.json"))
    body = f"8012000{5 + i // 1000:02d}{i % 1000:03d}"
    values["pupil"].update(
        upn=upn_check_letter("X" + body) + body,
        legal_forename=FIRST[i % 10],
        legal_surname=f"Pupil{i:04d}",
        preferred_name=None,
        date_of_birth=date(2015 + i % 5, 1 + i % 12, 1 + i % 28).isoformat(),
    )
    values["pupil"]["parents"] = values["pupil"]["parents"][:1]
    values["pupil"]["parents"][0]["name"] = f"Parent of Pupil{i:04d}"
    return make_form(KINDS["early-discussion"], school="Oakfield Primary School", values=values)


def new_home(parent: Path, name: str) -> Path:
    from senforms.config import load_settings
    from senforms.home import init_home

    home = parent / name
    home.mkdir()
    init_home(load_settings(home))
    return home


def processed(home: Path) -> int:
    try:
        return (home / "senforms.log").read_text(encoding="utf-8").count(" INFO Processed ")
    except OSError:
        return 0


def start_watch(home: Path, poll: float | None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "senforms", "--home", str(home), "watch"]
    if poll:
        args += ["--poll", str(poll)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    status = home / "outbox" / "senforms status.txt"
    deadline = time.monotonic() + 60
    while not status.exists():  # written once the worker is up and the first scan is done
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("senforms watch did not start")
        time.sleep(0.02)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(60)


def wait_processed(home: Path, count: int, limit: float = 600) -> float:
    deadline = time.monotonic() + limit
    while processed(home) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {processed(home)} of {count} processed")
        time.sleep(0.005)
    return time.perf_counter()


def one_by_one(parent: Path, forms: list[bytes], poll: float | None, label: str) -> list[float]:
    home = new_home(parent, f"single-{label}")
    proc = start_watch(home, poll)
    latencies = []
    try:
        for i, data in enumerate(forms, 1):
            began = time.perf_counter()
            (home / "inbox" / f"form {i:03d}.docx").write_bytes(data)
            latencies.append(wait_processed(home, i) - began)
    finally:
        stop(proc)
    return latencies


def burst(parent: Path, forms: list[bytes], poll: float | None, label: str) -> float:
    home = new_home(parent, f"burst-{label}")
    proc = start_watch(home, poll)
    try:
        began = time.perf_counter()
        for i, data in enumerate(forms, 1):
            (home / "inbox" / f"form {i:03d}.docx").write_bytes(data)
        return wait_processed(home, len(forms)) - began
    finally:
        stop(proc)


def process_command(parent: Path, forms: list[bytes], label: str = "process") -> float:
    home = new_home(parent, label)
    files = []
    for i, data in enumerate(forms, 1):
        path = home / "inbox" / f"form {i:03d}.docx"
        path.write_bytes(data)
        files.append(str(path))
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "senforms", "--home", str(home), "process", *files],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(ordered):.3f} s, p95 {p95:.3f} s, max {ordered[-1]:.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="forms per run (default 200)")
    parser.add_argument(
        "--poll", type=float, default=2.0, help="polling interval for the polling runs (default 2, as for shares)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the throughput runs (default 3)")
    args = parser.parse_args()

    from senforms.config import load_settings

    with ProcessPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        forms = list(pool.map(form, range(1, args.n + 1), chunksize=10))
    with tempfile.TemporaryDirectory(prefix="senforms-bench-") as folder:
        parent = Path(folder)
        settle = load_settings(new_home(parent, "defaults")).settle_seconds
        print(f"{args.n} forms; settling delay {settle:g} s (senforms.toml default); {os.cpu_count()} CPUs")
        for label, poll in (("events", None), ("polling", args.poll)):
            latencies = one_by_one(parent, forms, poll, label)
            goal = 0.3 if poll is None else poll + 1.0  # issue 14: under 0.3 s with events, 3 s on a share
            print(f"{label:8} one by one: {summary(latencies)} (goal p95 < {goal:g} s)")
        # Throughput in rounds, each running the baseline and both bursts back to back, and the
        # best of each compared: on a shared machine one run can be a third slower than the next,
        # so runs minutes apart are not a fair comparison.
        best: dict[str, float] = {}
        for r in range(args.repeat):
            timings = {
                "process": process_command(parent, forms, f"process-{r}"),
                "events": burst(parent, forms, None, f"events-{r}"),
                "polling": burst(parent, forms, args.poll, f"polling-{r}"),
            }
            best = {k: min(v, best.get(k, v)) for k, v in timings.items()}
        took = best["process"]
        print(
            f"senforms process: {took:.2f} s ({args.n / took:.1f} forms/s, including its start-up; best of {args.repeat})"
        )
        for label in ("events", "polling"):
            spent = best[label]
            print(
                f"{label:8} burst: {spent:.2f} s ({args.n / spent:.1f} forms/s; best of {args.repeat}), "
                f"{spent / took:.2f}x the time of senforms process (goal <= 1.2x)"
            )


if __name__ == "__main__":
    main()
