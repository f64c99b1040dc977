"""THE KILL TEST: ``senforms watch`` killed (SIGKILL) at random moments while 200 real forms
arrive, restarted each time, loses nothing and doubles nothing.

Every dropped file must end either in the archive (its bytes, once) or in ``problems/`` with a
note; no record, no document and no outbox file may appear twice.
"""

from __future__ import annotations

import copy
import csv
import functools
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from senforms.archive import tables as t
from senforms.config import load_settings
from senforms.deliver import STAGING
from senforms.home import init_home
from senforms.intake import ignored
from senforms.intake.scan import CLAIM_DIR
from senforms.kinds import KINDS
from senforms.values import upn_check_letter
from senforms.wordform import make_form
from tests.conftest import case

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and process groups are POSIX"),
]

FORMS = 200
KILLS = 5
FIRST = ["Amelia", "Noah", "Zoë", "Oliver", "Aisha", "Łukasz", "Freya", "Jack", "Chloé", "Yusuf"]


def pupil_form(i: int) -> bytes:
    """An early discussion note for pupil ``i``: its own UPN (valid check letter), name and birthday."""
    values: dict[str, Any] = copy.deepcopy(case("early-discussion.json"))
    body = f"8012000{5 + i // 1000:02d}{i % 1000:03d}"
    first = FIRST[i % len(FIRST)]
    values["pupil"].update(
        {
            "upn": upn_check_letter("X" + body) + body,
            "legal_forename": first,
            "legal_surname": f"Pupil{i:04d}",
            "preferred_name": None,
            "date_of_birth": date(2015 + i % 5, 1 + i % 12, 1 + i % 28).isoformat(),
        }
    )
    values["pupil"]["parents"] = values["pupil"]["parents"][:1]
    values["pupil"]["parents"][0]["name"] = f"Parent of {first} Pupil{i:04d}"
    return make_form(KINDS["early-discussion"], school="Oakfield Primary School", values=values)


@functools.cache
def bad_files() -> dict[str, bytes]:
    good = pupil_form(999)
    noise = random.Random(5)  # the same bytes each call, to find them again afterwards
    return {
        "empty.docx": b"",
        "cut short.docx": good[: len(good) // 2],
        "old style.doc": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600,
        "scan.jpg": b"\xff\xd8\xff\xe0" + noise.randbytes(2000),
        "noise.docx": noise.randbytes(4000),
    }


@pytest.fixture(scope="module")
def dropped() -> list[tuple[str, bytes]]:
    with ProcessPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        forms = list(pool.map(pupil_form, range(1, FORMS + 1), chunksize=10))
    files = [(f"Early discussion {i:03d}.docx", data) for i, data in enumerate(forms, 1)]
    # The same form dropped twice under another name: filed once, the copy "already processed".
    files += [("copy of Early discussion 007.docx", forms[6]), ("again 120.docx", forms[119])]
    files += list(bad_files().items())
    random.Random(7).shuffle(files)
    return files


def start(home: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "senforms", "--home", str(home), "watch", "--give-up", "3"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def drop_all(inbox: Path, files: list[tuple[str, bytes]], rng: random.Random) -> None:
    """Drop files as staff and copy tools do: some at once, some in two halves, in bursts."""
    for name, data in files:
        path = inbox / name
        if rng.random() < 0.2 and len(data) > 100:
            with path.open("wb") as handle:
                handle.write(data[: len(data) // 2])
                handle.flush()
                time.sleep(0.05)
                handle.write(data[len(data) // 2 :])
        else:
            path.write_bytes(data)
        time.sleep(rng.choice((0, 0, 0, 0.01, 0.05)))


def wait_for_a_claimed_file(inbox: Path, *, seconds: float) -> None:
    """Return as soon as a watcher has a file in hand (claimed, not yet filed), or after ``seconds``."""
    claims = inbox / CLAIM_DIR
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if any(p.is_file() and p.name != ".lock" for p in claims.rglob("*")):
                return
        except OSError:  # a claim folder removed while looked through
            pass
        time.sleep(0.002)


def left_in_inbox(inbox: Path) -> list[Path]:
    return [
        p
        for p in inbox.rglob("*")
        if p.is_file() and not any(ignored(part) for part in p.relative_to(inbox).parts[:-1]) and p.name != ".lock"
    ]


def test_killed_again_and_again_loses_and_doubles_nothing(tmp_path: Path, dropped: list[tuple[str, bytes]]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = load_settings(home)
    init_home(settings)
    config = home / "senforms.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("settle_seconds = 0.5", "settle_seconds = 0.2"), encoding="utf-8"
    )
    log = tmp_path / "watch.out"
    rng = random.Random(2026)

    proc = start(home, log)
    dropper = threading.Thread(target=drop_all, args=(settings.inbox, dropped, rng))
    dropper.start()
    kills = 0
    try:
        while kills < KILLS:
            time.sleep(rng.uniform(1.0, 4.0))
            # At a random moment while a form is in hand: a form now takes tens of milliseconds
            # against a settling time of 0.2 s, so a kill at any moment mostly found the watcher
            # between files and the crash path went untried (seen once in CI).
            wait_for_a_claimed_file(settings.inbox, seconds=5)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            proc = start(home, log)
        dropper.join(120)
        deadline = time.monotonic() + 120
        while left_in_inbox(settings.inbox) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left_in_inbox(settings.inbox), f"stranded: {left_in_inbox(settings.inbox)}"
        # The last watcher started after the last kill: once it is watching (a stop asked for
        # while Python is still starting is the operating system's default, not senforms'),
        # a clean stop: SIGTERM finishes the file in hand and exits 0.
        while log.read_text(encoding="utf-8", errors="replace").count("Watching ") <= KILLS:
            assert time.monotonic() < deadline + 60, "the last watcher did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = log.read_text(encoding="utf-8", errors="replace")
    assert output.count("Watching ") == KILLS + 1
    assert "Traceback" not in output
    # The kills did land mid-file: restarted watchers took up what a killed one had claimed.
    assert "Taking up" in (home / "senforms.log").read_text(encoding="utf-8")

    # Every original is either in the archive or set aside in problems/.
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        hashes = Counter(conn.execute(select(t.ReceivedForm.content_hash)).scalars())
        pupils = conn.execute(select(func.count()).select_from(t.Pupil)).scalar_one()
        documents = conn.execute(select(t.Document.form_id, t.Document.template, t.Document.path)).all()
        not_done = conn.execute(
            select(func.count()).select_from(t.ReceivedForm).where(t.ReceivedForm.state != "done")
        ).scalar_one()
    engine.dispose()
    set_aside = {hashlib.sha256(p.read_bytes()).hexdigest() for p in settings.problems.iterdir() if p.suffix != ".txt"}
    bad = {hashlib.sha256(data).hexdigest() for data in bad_files().values()}
    for name, data in dropped:
        digest = hashlib.sha256(data).hexdigest()
        if digest in bad:
            assert digest in set_aside, f"{name} was not set aside"
        else:
            assert hashes[digest] == 1, f"{name} is not in the archive exactly once"
            assert digest not in set_aside, f"{name} was set aside, but it is a good form"

    # Nothing doubled: one record per form and per pupil, one document per (form, template),
    # and in the outbox exactly the documents the archive knows (a document written twice would
    # leave a second file under a free name, which the archive does not list).
    assert sum(hashes.values()) == len(hashes) == FORMS
    assert pupils == FORMS
    assert not_done == 0
    per_form = Counter((form_id, template) for form_id, template, _ in documents)
    assert max(per_form.values()) == 1
    delivered = {path for _, _, path in documents}
    outbox = {
        p.relative_to(settings.outbox).as_posix()
        for p in settings.outbox.rglob("*")
        if p.is_file() and "blank forms" not in p.parts and p.name != "senforms status.txt" and STAGING not in p.parts
    }
    # Living files rebuilt from the archive, with no document row of their own: the register's
    # XLSX beside its CSV, and the office's list of the day's letters to parents.
    living = {p for p in outbox if p == "senco/SEND register.xlsx" or p.startswith("parents/Letters to send ")}
    assert outbox - living == delivered
    # The office's lists name every letter to parents once, although a kill may have landed
    # after a delivery and before its letters were listed (the next start lists them).
    listed: list[str] = []
    for listing in (settings.outbox / "parents").glob("Letters to send *.csv"):
        with listing.open(encoding="utf-8-sig", newline="") as f:
            listed += [row["File"] for row in csv.DictReader(f)]
    to_parents = {path for path in delivered if path.startswith("parents/")}
    assert sorted(listed) == sorted(to_parents) and to_parents
    notes = [p for p in settings.problems.iterdir() if p.suffix == ".txt"]
    assert len(notes) >= len(bad)
