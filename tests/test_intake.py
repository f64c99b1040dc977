"""The watched folder, on real files in temporary folders.

Most tests run the watcher with ``FakePipeline``: it reads and validates forms for real (so bad
input meets the real readers) but files nothing, so these tests do not depend on the archive.
It lives at module level because the watcher's worker process imports it by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from senforms.config import Settings
from senforms.deliver import write_atomic
from senforms.errors import ConfigError
from senforms.intake import (
    CLAIM_DIR,
    STATUS_NAME,
    Watcher,
    check_layout,
    ignored,
    incomplete,
    linux_filesystem,
    status_lines,
    windows_network,
)
from senforms.kinds import KINDS
from senforms.values import upn_check_letter
from senforms.wordform import make_form
from tests.conftest import case


class FakePipeline:
    """Reads and validates for real; writes one small document per new form.

    Content markers make it misbehave on purpose: ``HANG`` never returns, ``BOOM`` raises an
    unexpected exception, ``HOG`` asks for far more memory than allowed.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, path: Path, name: str) -> dict[str, Any]:
        from senforms.forms import extract

        data = path.read_bytes()
        if b"HANG" in data:
            time.sleep(3600)
        if b"BOOM" in data:
            raise RuntimeError("boom")
        if b"HOG" in data:
            hog = bytearray(8 * 1024**3)
            hog[-1] = 1
        model, _warnings = extract(data, name=name, settings=self.settings)
        upn = model.pupil.upn  # type: ignore[attr-defined]
        out = self.settings.outbox / upn / f"{hashlib.sha256(data).hexdigest()[:16]}.txt"
        status = "already processed" if out.exists() else "processed"
        if status == "processed":
            write_atomic(out, name.encode("utf-8"), overwrite=True)
        with (self.settings.home / "processed.log").open("a", encoding="utf-8") as handle:
            handle.write(f"{name}\t{os.getpid()}\n")
        return {"kind": "early-discussion", "upn": upn, "status": status, "documents": [str(out)]}


def replaced(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with ``changes``, whether Settings is a dataclass or a pydantic model."""
    copy = getattr(settings, "model_copy", None)
    return copy(update=changes) if copy is not None else dataclasses.replace(settings, **changes)


def form_bytes(serial: int = 1, kind: str = "early-discussion") -> bytes:
    """A filled form for a pupil whose UPN differs by ``serial`` (with a valid check letter)."""
    values = case(f"{kind}.json")
    tail = f"80120000{serial:05d}"[-12:]
    values["pupil"]["upn"] = upn_check_letter("X" + tail) + tail
    return make_form(KINDS[kind], school="Oakfield Primary School", values=values)


@pytest.fixture(scope="module")
def forms() -> list[bytes]:
    return [form_bytes(i) for i in range(1, 9)]


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return replaced(settings, settle_seconds=0.2, poll_seconds=0.5, seconds_per_file=20)


def processed_names(settings: Settings) -> list[str]:
    log = settings.home / "processed.log"
    if not log.exists():
        return []
    return [line.split("\t")[0] for line in log.read_text(encoding="utf-8").splitlines()]


def notes(settings: Settings) -> dict[str, str]:
    return {p.name.removesuffix(".txt"): p.read_text(encoding="utf-8") for p in settings.problems.glob("*.txt")}


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def running(fast: Settings) -> Iterator[Callable[..., Watcher]]:
    """Start watchers in background threads; stop them all at the end of the test."""
    started: list[tuple[Watcher, threading.Thread]] = []

    def start(settings: Settings | None = None, **options: Any) -> Watcher:
        options.setdefault("factory", FakePipeline)
        watcher = Watcher(settings or fast, **options)
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        started.append((watcher, thread))
        assert wait_for(lambda: watcher._run_file is not None, 60), "the watcher did not start"
        return watcher

    yield start
    for watcher, thread in started:
        watcher.stop()
        thread.join(60)
        assert not thread.is_alive()


def run_once(settings: Settings, **options: Any) -> Watcher:
    options.setdefault("factory", FakePipeline)
    watcher = Watcher(settings, **options)
    watcher.run(once=True)
    return watcher


# --- taking a file only when it is whole --------------------------------------------------------


def test_half_written_docx_is_left_until_complete(fast: Settings, running: Callable[..., Watcher]) -> None:
    data = form_bytes(11)
    fast.inbox.mkdir(parents=True, exist_ok=True)
    target = fast.inbox / "Amelia early discussion.docx"
    running()
    with target.open("wb") as handle:
        handle.write(data[: len(data) // 2])
        handle.flush()
        # Well past the settling delay: still not taken, because it is not yet a complete zip.
        time.sleep(2.0)
        assert target.exists()
        assert processed_names(fast) == []
        assert not list(fast.problems.glob("*"))
        handle.write(data[len(data) // 2 :])
    assert wait_for(lambda: processed_names(fast) == [target.name])
    assert wait_for(lambda: not target.exists())
    assert not list(fast.problems.glob("*"))


def test_whole_file_checks() -> None:
    data = form_bytes(12)
    pdf = b"%PDF-1.7\n" + b"x" * 5000 + b"\n%%EOF\n"
    cases = {
        "whole.docx": (data, None),
        "half.docx": (data[: len(data) // 2], "docx"),
        "whole.pdf": (pdf, None),
        "half.pdf": (pdf[:3000], "pdf"),
        "empty.docx": (b"", "empty"),
        "other.doc": (b"\xd0\xcf\x11\xe0" + b"\0" * 100, None),  # refused later, but whole
    }
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for name, (content, expected) in cases.items():
            path = Path(folder) / name
            path.write_bytes(content)
            assert incomplete(path, len(content)) == expected, name


def test_give_up_on_a_file_that_never_completes(fast: Settings, running: Callable[..., Watcher]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    data = form_bytes(13)
    (fast.inbox / "stuck.docx").write_bytes(data[:2000])
    running(give_up_seconds=1.5)
    assert wait_for(lambda: "stuck.docx" in notes(fast))
    assert "not completely copied" in notes(fast)["stuck.docx"]
    assert (fast.problems / "stuck.docx").read_bytes() == data[:2000]


# --- what is ignored, and where files are looked for --------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        *("~$early.docx", ".~lock.early.docx#", "early.tmp", "early.docx.part", "early.crdownload", ".hidden.docx"),
        *("Thumbs.db", "desktop.ini", "~WRL0001.tmp", CLAIM_DIR),
    ],
)
def test_litter_is_ignored(name: str) -> None:
    assert ignored(name)


@pytest.mark.parametrize("name", ["early.docx", "plan.pdf", "Review 2025.DOCX", "notes.doc"])
def test_forms_are_not_ignored(name: str) -> None:
    assert not ignored(name)


def test_lock_temp_and_dotfiles_are_left_alone(fast: Settings, forms: list[bytes]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    litter = ["~$early.docx", ".~lock.early.docx#", "early.tmp", "copy.part", "x.crdownload", ".hidden.docx"]
    litter += ["Thumbs.db", "desktop.ini", ".dot-folder/inside.docx"]
    for name in litter:
        (fast.inbox / name).parent.mkdir(parents=True, exist_ok=True)
        (fast.inbox / name).write_bytes(forms[0])
    (fast.inbox / "form.docx").write_bytes(forms[0])  # not "early.docx": its lock files would hold it
    watcher = run_once(fast)
    assert watcher.summary.processed == 1
    assert processed_names(fast) == ["form.docx"]
    for name in litter:
        assert (fast.inbox / name).exists(), name
    assert not list(fast.problems.glob("*"))


def test_files_in_subfolders_are_taken(fast: Settings, forms: list[bytes], running: Callable[..., Watcher]) -> None:
    running()
    deep = fast.inbox / "Year 4" / "Willow class"
    deep.mkdir(parents=True)
    (deep / "plan.docx").write_bytes(forms[1])
    (fast.inbox / "Year 4" / "other.docx").write_bytes(forms[2])
    assert wait_for(lambda: sorted(processed_names(fast)) == ["other.docx", "plan.docx"])
    assert wait_for(lambda: not (deep / "plan.docx").exists())
    assert deep.is_dir()  # folders the office made are kept


# --- claims: once only, and taken up again after a crash ----------------------------------------


def test_a_claimed_file_cannot_be_claimed_again(fast: Settings, forms: list[bytes]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    path = fast.inbox / "early.docx"
    path.write_bytes(forms[0])
    first, second = Watcher(fast, factory=FakePipeline), Watcher(fast, factory=FakePipeline)
    claimed = first.claims.claim(path)
    assert claimed is not None and claimed.read_bytes() == forms[0]
    assert CLAIM_DIR in claimed.parts
    assert second.claims.claim(path) is None
    assert claimed.name == "early.docx"  # the original name goes to the archive


def test_two_watchers_take_each_file_once(fast: Settings, forms: list[bytes], running: Callable[..., Watcher]) -> None:
    running()
    running()
    fast.inbox.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(24):
        name = f"form {i:02d}.docx"
        (fast.inbox / name).write_bytes(forms[i % len(forms)])
        names.append(name)
    assert wait_for(lambda: len(processed_names(fast)) >= len(names), 60)
    time.sleep(1.0)
    assert sorted(processed_names(fast)) == names
    pids = {line.split("\t")[1] for line in (fast.home / "processed.log").read_text().splitlines()}
    assert len(pids) == 2, "both watchers should have had a share of the work"


def test_files_claimed_by_a_killed_watcher_are_processed_at_start(fast: Settings, forms: list[bytes]) -> None:
    orphan = fast.inbox / CLAIM_DIR / "deadhost-99999-abcdef" / "000007"
    orphan.mkdir(parents=True)
    (orphan.parent / ".lock").write_bytes(b"")  # nobody holds it: its watcher is gone
    (orphan / "early.docx").write_bytes(forms[3])
    watcher = run_once(fast)
    assert watcher.summary.processed == 1
    assert processed_names(fast) == ["early.docx"]
    assert not (fast.inbox / CLAIM_DIR / "deadhost-99999-abcdef").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="uses flock")
def test_claims_of_a_live_watcher_are_left_alone(fast: Settings, forms: list[bytes]) -> None:
    from senforms.intake import _try_lock

    other = fast.inbox / CLAIM_DIR / "otherhost-1-abcdef"
    (other / "000001").mkdir(parents=True)
    (other / "000001" / "busy.docx").write_bytes(forms[0])
    held = _try_lock(other / ".lock")
    assert held
    try:
        run_once(fast)
        assert (other / "000001" / "busy.docx").exists()
        assert processed_names(fast) == []
    finally:
        held.close()  # type: ignore[union-attr]


# --- bad input: each set aside with its own note ------------------------------------------------


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (200 * 1024 * 1024))
    return out.getvalue()


def plain_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("Minutes of the PTA meeting. Cake sale on Friday.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_each_bad_input_is_set_aside_with_its_own_note(fast: Settings, tmp_path: Path) -> None:
    settings = replaced(fast, max_file_mb=1)
    inbox = settings.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    whole = form_bytes(21)
    bad = {
        "old.doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, ".doc"),
        "macro.docm": (whole, "macros"),
        "open.odt": (b"PK\x03\x04" + b"\0" * 100, ".odt"),
        "photo.jpg": (b"\xff\xd8\xff\xe0" + b"\0" * 100, "picture"),
        "empty.docx": (b"", "empty"),
        "truncated.docx": (whole[: len(whole) // 3], "not completely copied"),
        "garbage.docx": (os.urandom(3000), "not a Word"),
        "bomb.docx": (zip_bomb(), "zip bomb"),
        "huge.pdf": (b"%PDF-1.4\n" + b"0" * (2 * 1024 * 1024) + b"\n%%EOF\n", "too large"),
        "pta minutes.docx": (plain_docx(), "forms made by senforms"),
    }
    for name, (content, _) in bad.items():
        (inbox / name).write_bytes(content)
    outside = tmp_path / "elsewhere.docx"
    outside.write_bytes(whole)
    os.symlink(outside, inbox / "shortcut.docx")
    bad["shortcut.docx"] = (b"", "link")

    watcher = run_once(settings)

    found = notes(settings)
    for name, (content, expected) in bad.items():
        assert name in found, f"{name} was not set aside"
        assert expected.lower() in found[name].lower(), f"{name}: {found[name]}"
        assert "What to do:" in found[name]
        if name != "shortcut.docx":
            assert (settings.problems / name).read_bytes() == content
    assert (settings.problems / "shortcut.docx").is_symlink()  # moved, never followed
    assert outside.read_bytes() == whole
    assert watcher.summary.set_aside == len(bad)
    assert processed_names(settings) == []
    assert [p for p in inbox.rglob("*") if p.is_file() and CLAIM_DIR not in p.parts] == []


def test_a_hanging_parser_is_stopped_and_the_next_file_still_goes_through(
    fast: Settings, forms: list[bytes], running: Callable[..., Watcher]
) -> None:
    settings = replaced(fast, seconds_per_file=1.5)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    watcher = running(settings)
    (settings.inbox / "a hang.pdf").write_bytes(b"%PDF-1.4 HANG\n%%EOF\n")
    assert wait_for(lambda: "a hang.pdf" in notes(settings), 15)
    assert "longer than the limit of 2 seconds" in notes(settings)["a hang.pdf"]
    (settings.inbox / "next.docx").write_bytes(forms[4])
    assert wait_for(lambda: processed_names(settings) == ["next.docx"], 30)
    assert watcher._worker is not None and watcher._worker.restarts >= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")
def test_a_file_that_eats_memory_is_stopped(fast: Settings) -> None:
    settings = replaced(fast, memory_mb_per_file=256)
    settings.inbox.mkdir(parents=True, exist_ok=True)
    (settings.inbox / "hog.pdf").write_bytes(b"%PDF-1.4 HOG\n%%EOF\n")
    run_once(settings)
    assert "more memory than the limit of 256 MB" in notes(settings)["hog.pdf"]


def test_an_unexpected_error_sets_the_file_aside_and_is_logged(fast: Settings, forms: list[bytes]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "boom.pdf").write_bytes(b"%PDF-1.4 BOOM\n%%EOF\n")
    (fast.inbox / "fine.docx").write_bytes(forms[5])
    watcher = run_once(fast)
    assert "went wrong inside senforms" in notes(fast)["boom.pdf"]
    assert processed_names(fast) == ["fine.docx"]
    assert (watcher.summary.processed, watcher.summary.set_aside) == (1, 1)
    logged = (fast.home / "senforms.log").read_text(encoding="utf-8")
    assert "RuntimeError: boom" in logged and "Traceback" in logged


def test_the_log_names_pupils_by_upn_not_by_name(fast: Settings, forms: list[bytes]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "Amelia Hart early discussion.docx").write_bytes(forms[0])
    run_once(fast)
    logged = (fast.home / "senforms.log").read_text(encoding="utf-8")
    assert "UPN" in logged
    assert "Amelia" not in logged and "Hart" not in logged


# --- the layout, network shares and the status ---------------------------------------------------


def test_outbox_inside_the_inbox_is_refused(settings: Settings) -> None:
    class Nested(Settings):
        @property
        def outbox(self) -> Path:
            return self.inbox / "out"

    nested = Nested(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(Settings)})
    with pytest.raises(ConfigError, match=r"outbox .* is inside the inbox"):
        Watcher(nested, factory=FakePipeline)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_problems_folder_linked_into_the_inbox_is_refused(settings: Settings) -> None:
    (settings.inbox / "problems").mkdir(parents=True)
    os.symlink(settings.inbox / "problems", settings.problems)
    with pytest.raises(ConfigError, match="problems folder"):
        check_layout(settings)


def test_archive_inside_the_inbox_is_refused(settings: Settings) -> None:
    inside = replaced(settings, archive_url=f"sqlite:///{(settings.inbox / 'a.db').as_posix()}")
    with pytest.raises(ConfigError, match="archive"):
        check_layout(inside)
    check_layout(settings)


MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
//fileserver/office /mnt/office cifs rw,vers=3.0 0 0
fs1:/export/forms /srv/forms nfs4 rw 0 0
user@host:/x /home/sec/SEN\\040forms fuse.sshfs rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/mnt/office/SEN/inbox", "cifs"),
        ("/srv/forms/inbox", "nfs4"),
        ("/home/sec/SEN forms/inbox", "fuse.sshfs"),
        ("/mnt/officer/inbox", "ext4"),
        ("/home/me/inbox", "ext4"),
    ],
)
def test_network_shares_are_recognised_from_proc_mounts(path: str, expected: str) -> None:
    assert linux_filesystem(Path(path), MOUNTS) == expected


def test_unc_paths_are_network_shares() -> None:
    assert windows_network(r"\\fileserver\office\inbox") == "UNC path"
    assert windows_network(r"\\?\UNC\fileserver\office\inbox") == "UNC path"
    assert windows_network(r"\\?\C:\senforms\inbox") is None
    if sys.platform != "win32":
        assert windows_network(r"C:\senforms\inbox") is None


def test_poll_option_forces_polling(fast: Settings) -> None:
    watcher = Watcher(fast, poll=7, factory=FakePipeline)
    assert watcher.mode == "polling"
    assert "polling every 7 s" in " ".join(watcher.describe())
    assert Watcher(fast, factory=FakePipeline).mode in ("events", "polling")


def test_polling_takes_files_too(fast: Settings, forms: list[bytes], running: Callable[..., Watcher]) -> None:
    running(poll=0.3)
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "polled.docx").write_bytes(forms[6])
    assert wait_for(lambda: processed_names(fast) == ["polled.docx"])


def test_status_file_and_status_lines(fast: Settings, forms: list[bytes]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "one.docx").write_bytes(forms[0])
    (fast.inbox / "two.docx").write_bytes(b"")
    # No daily round, so no archive: the watcher's own count is what "Done today" has to go on
    # (FakePipeline files nothing in an archive).
    run_once(fast, daily_round=False)
    assert not (fast.home / "senforms.db").exists()
    text = (fast.outbox / STATUS_NAME).read_text(encoding="utf-8")
    assert "Done today: 1" in text and "Set aside today: 1" in text
    (fast.inbox / "three.docx").write_bytes(forms[1])
    lines = status_lines(fast)
    assert "Waiting in the inbox: 1" in lines
    assert "Done today: 1" in lines
    state = json.loads((fast.home / ".senforms-watch.json").read_text(encoding="utf-8"))
    assert state["done"] == 1


def test_the_status_file_counts_forms_done_by_senforms_process_too(fast: Settings) -> None:
    """"Done today" comes from the archive: forms processed by ``senforms process`` count, not
    only those the watcher took, and the watcher's state file need not know them."""
    from senforms.intake.status import StatusFile, Today
    from senforms.pipeline import process_files
    from tests.pipeline_helpers import drop, filled, values

    form = drop(fast.home / "elsewhere", "early.docx", filled("early-discussion", values("early-discussion")))
    assert len(process_files([form], fast).processed) == 1
    status = StatusFile(fast)
    try:
        status.write(Today(), [], running=True, force=True)
    finally:
        getattr(status, "close", lambda: None)()  # the archive it keeps open for the count
    text = (fast.outbox / STATUS_NAME).read_text(encoding="utf-8")
    assert "Done today: 1" in text.splitlines()


class ArchiveDownPipeline(FakePipeline):
    """The archive is unreachable while the file ``archive-down`` exists in the home folder."""

    def __call__(self, path: Path, name: str) -> dict[str, Any]:
        from senforms.errors import ArchiveError

        if (self.settings.home / "archive-down").exists():
            raise ArchiveError("The archive database cannot be opened (connection refused).")
        return super().__call__(path, name)


def test_an_archive_outage_keeps_files_in_the_inbox_until_it_is_back(
    fast: Settings, running, forms: list[bytes]
) -> None:
    (fast.home / "archive-down").write_text("down", encoding="utf-8")
    running(factory=ArchiveDownPipeline)
    (fast.inbox / "early.docx").write_bytes(forms[0])
    time.sleep(3)
    assert not list(fast.problems.glob("*")), "an archive outage is not the file's fault"
    assert (fast.inbox / "early.docx").exists()
    (fast.home / "archive-down").unlink()
    assert wait_for(lambda: processed_names(fast) == ["early.docx"], 90)
    assert not (fast.inbox / "early.docx").exists()


# --- files still in use, giving up, and what the status says (issue 13 point 5) -----------------


@pytest.mark.parametrize(
    ("name", "lock", "program"),
    [
        ("plan.docx", "~$plan.docx", "Word"),
        ("Amelia early discussion.docx", "~$elia early discussion.docx", "Word"),
        ("Review 2025.docx", "~$view 2025.docx", "Word"),
        ("plan.docx", ".~lock.plan.docx#", "LibreOffice"),
    ],
)
def test_a_form_open_in_word_or_libreoffice_is_left_until_its_lock_file_is_gone(
    fast: Settings, running: Callable[..., Watcher], name: str, lock: str, program: str
) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / lock).write_bytes(b"owner")
    (fast.inbox / name).write_bytes(form_bytes(31))
    # With events, no rescan for 30 s: the lock file's removal itself must wake the watcher.
    watcher = running(replaced(fast, poll_seconds=30.0))
    if watcher.mode != "events":
        watcher.poll_seconds = 0.5
    status = fast.outbox / STATUS_NAME
    assert wait_for(lambda: status.exists() and f"{name}: still open in {program}" in status.read_text("utf-8"))
    time.sleep(1.0)  # well past the settling delay: the form is whole, but still open
    assert (fast.inbox / name).exists() and processed_names(fast) == []
    (fast.inbox / lock).unlink()  # closed in Word
    assert wait_for(lambda: processed_names(fast) == [name])
    assert not list(fast.problems.glob("*"))


def test_a_file_still_growing_is_never_given_up_however_long_the_copy(
    fast: Settings, running: Callable[..., Watcher]
) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    data = form_bytes(32)
    target = fast.inbox / "slow copy.docx"
    running(give_up_seconds=1.0)
    with target.open("wb") as handle:
        for start in range(0, len(data), len(data) // 8 + 1):  # eight chunks over about 3 s
            handle.write(data[start : start + len(data) // 8 + 1])
            handle.flush()
            time.sleep(0.4)
    assert wait_for(lambda: processed_names(fast) == ["slow copy.docx"])
    assert not list(fast.problems.glob("*"))


def test_a_file_that_never_opens_whole_is_set_aside_after_give_up_with_what_to_do(
    fast: Settings, running: Callable[..., Watcher]
) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "broken.docx").write_bytes(form_bytes(33)[:3000])
    began = time.monotonic()
    running(give_up_seconds=1.0)
    assert wait_for(lambda: "broken.docx" in notes(fast))
    assert time.monotonic() - began >= 1.0
    note = notes(fast)["broken.docx"]
    assert "did not change for 1 seconds" in note or "did not change for 2 seconds" in note
    assert "What to do:" in note and "Save As" in note


def test_give_up_defaults_to_two_minutes_not_fifteen(fast: Settings) -> None:
    assert Watcher(fast, factory=FakePipeline).scanner.give_up_seconds == getattr(fast, "give_up_seconds", 120.0)
    from senforms.cli import build_parser

    assert build_parser().parse_args(["watch"]).give_up is None  # the setting decides


def test_status_says_what_waits_and_why_and_counts_the_whole_problems_folder(fast: Settings) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    fast.problems.mkdir(parents=True, exist_ok=True)
    for old in ("last week.docx", "last month.pdf"):  # set aside by earlier runs
        (fast.problems / old).write_bytes(b"x")
        (fast.problems / f"{old}.txt").write_text("note", encoding="utf-8")
    data = form_bytes(34)
    (fast.inbox / "in word.docx").write_bytes(data)
    (fast.inbox / "~$ word.docx").write_bytes(b"owner")
    (fast.inbox / "copying.docx").write_bytes(data[:2000])
    (fast.inbox / "ready.docx").write_bytes(data)
    lines = status_lines(fast)
    text = "\n".join(lines)
    assert "The watcher is not running" in text
    assert "Waiting in the inbox: 3" in lines
    assert "  in word.docx: still open in Word" in text
    assert "  copying.docx: still being copied" in text
    assert "  ready.docx: next in line" in text
    assert "In the problems folder: 2" in text


def test_status_says_whether_a_watcher_is_running(fast: Settings, running: Callable[..., Watcher]) -> None:
    assert "The watcher is not running" in "\n".join(status_lines(fast))
    watcher = running()
    assert "The watcher is running." in status_lines(fast)
    watcher.stop()
    assert wait_for(lambda: "The watcher is not running" in "\n".join(status_lines(fast)))


# --- the status during an archive outage, warnings, and the worker's own errors ------------------


def test_the_status_file_says_the_watcher_is_waiting_for_the_archive_and_when_it_tries_again(
    fast: Settings, running: Callable[..., Watcher], forms: list[bytes]
) -> None:
    (fast.home / "archive-down").write_text("down", encoding="utf-8")
    running(factory=ArchiveDownPipeline)
    (fast.inbox / "early.docx").write_bytes(forms[0])
    status = fast.outbox / STATUS_NAME
    assert wait_for(lambda: status.exists() and "cannot be reached" in status.read_text("utf-8"))
    text = status.read_text("utf-8")
    assert "connection refused" in text and "tries again at" in text
    assert "early.docx: waiting for the archive" in text
    assert "waiting for the archive" in "\n".join(status_lines(fast))  # senforms status says it too
    (fast.home / "archive-down").unlink()
    assert wait_for(lambda: processed_names(fast) == ["early.docx"], 90)
    assert wait_for(lambda: "cannot be reached" not in status.read_text("utf-8"))


class WarningPipeline(FakePipeline):
    """Processes as FakePipeline does, with the warning the real pipeline gives when LibreOffice fails."""

    def __call__(self, path: Path, name: str) -> dict[str, Any]:
        result = super().__call__(path, name)
        result["warnings"] = ["Letters are Word documents, not PDFs: LibreOffice did not start."]
        return result


def test_warnings_from_processing_reach_the_log_and_the_status_file(fast: Settings, forms: list[bytes]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "early.docx").write_bytes(forms[0])
    run_once(fast, factory=WarningPipeline)
    logged = (fast.home / "senforms.log").read_text(encoding="utf-8")
    assert "WARNING UPN " in logged and "Letters are Word documents, not PDFs" in logged
    status = (fast.outbox / STATUS_NAME).read_text(encoding="utf-8")
    assert "Warnings today" in status and "Letters are Word documents, not PDFs" in status
    assert "Letters are Word documents" in "\n".join(status_lines(fast))  # kept for senforms status


def test_the_real_pipeline_hands_its_warnings_to_the_watcher(fast: Settings) -> None:
    from senforms.intake.worker import PipelineProcessor

    class Done:
        kind, upn, status, documents, warnings = "review", "A1", "processed", [], ["LibreOffice failed"]

    processor = PipelineProcessor.__new__(PipelineProcessor)
    processor.pipeline = type("P", (), {"process_file": lambda self, path, name: Done()})()
    assert processor(Path("x.docx"), "x.docx")["warnings"] == ["LibreOffice failed"]


def test_the_watcher_counts_what_a_form_made_as_senforms_process_does(fast: Settings, forms: list[bytes]) -> None:
    """The SEND register (CSV and XLSX) is named, not counted as two of the form's documents."""
    from senforms.intake.worker import PipelineProcessor

    outbox = fast.outbox

    class Done:
        kind, upn, status, warnings = "early-discussion", "A1", "processed", []
        documents = [
            outbox / "parents/A/letter.docx",
            outbox / "senco/SEND register.csv",
            outbox / "senco/SEND register.xlsx",
        ]

    processor = PipelineProcessor.__new__(PipelineProcessor)
    processor.pipeline = type("P", (), {"process_file": lambda self, path, name: Done()})()
    assert processor(Path("x.docx"), "x.docx")["made"] == "1 document, and the SEND register updated"

    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "one.docx").write_bytes(forms[0])
    run_once(fast)  # FakePipeline: one document, no "made" of its own
    logged = (fast.home / "senforms.log").read_text(encoding="utf-8")
    assert ": 1 document." in logged and "document(s)" not in logged


class BrokenAtStart:
    """A processor whose set-up fails the way a missing module or bad setting would."""

    def __init__(self, settings: Settings) -> None:
        raise RuntimeError("cannot load the letter templates")


class ConfigBrokenAtStart:
    def __init__(self, settings: Settings) -> None:
        raise ConfigError("senforms.toml: poll_second is not a setting.")


def test_a_worker_that_cannot_start_says_which_error_and_why(fast: Settings) -> None:
    from senforms.intake.worker import Worker, WorkerError

    with pytest.raises(WorkerError, match="RuntimeError: cannot load the letter templates"):
        Worker(fast, BrokenAtStart, start_timeout=60).start()
    from senforms.errors import SenformsError

    with pytest.raises(SenformsError) as caught:
        Worker(fast, ConfigBrokenAtStart, start_timeout=60).start()
    assert "poll_second" in caught.value.message
    assert getattr(caught.value, "type_name", "") == "ConfigError"
    assert caught.value.exit_code == ConfigError.exit_code


def test_watch_once_leaves_a_form_open_in_word_in_the_inbox_and_stops(fast: Settings, forms: list[bytes]) -> None:
    fast.inbox.mkdir(parents=True, exist_ok=True)
    (fast.inbox / "plan.docx").write_bytes(forms[0])
    (fast.inbox / "~$plan.docx").write_bytes(b"owner")
    (fast.inbox / "done.docx").write_bytes(forms[1])
    watcher = run_once(fast, timeout=30)
    assert processed_names(fast) == ["done.docx"]
    assert (fast.inbox / "plan.docx").exists() and not list(fast.problems.glob("*"))
    assert watcher.summary.set_aside == 0
    assert "plan.docx: still open in Word" in (fast.outbox / STATUS_NAME).read_text("utf-8")


# --- latency: a closed Word file is taken at once (issue 14 point 4) -----------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify reports a file closed after writing")
def test_with_events_a_word_file_is_taken_once_closed_without_waiting_to_settle(
    fast: Settings, forms: list[bytes], running: Callable[..., Watcher]
) -> None:
    slow = replaced(fast, settle_seconds=5.0, poll_seconds=30.0)
    watcher = running(slow)
    assert watcher.mode == "events"
    began = time.monotonic()
    (slow.inbox / "early.docx").write_bytes(forms[0])
    assert wait_for(lambda: processed_names(slow) == ["early.docx"], 4.0), "it waited for the settling delay"
    assert time.monotonic() - began < 4.0


def test_when_polling_a_word_file_still_waits_to_settle(
    fast: Settings, forms: list[bytes], running: Callable[..., Watcher]
) -> None:
    slow = replaced(fast, settle_seconds=2.0)
    running(slow, poll=0.2)
    (slow.inbox / "early.docx").write_bytes(forms[0])
    time.sleep(1.2)
    assert processed_names(slow) == [], "a polled file must stand still for the settling delay"
    assert wait_for(lambda: processed_names(slow) == ["early.docx"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify reports a file closed after writing")
def test_with_events_a_word_file_still_open_for_writing_is_not_taken(
    fast: Settings, forms: list[bytes], running: Callable[..., Watcher]
) -> None:
    slow = replaced(fast, settle_seconds=3.0, poll_seconds=30.0)
    running(slow)
    data = forms[0]
    with (slow.inbox / "early.docx").open("wb") as handle:
        handle.write(data[:-10])
        handle.flush()
        time.sleep(1.0)
        assert processed_names(slow) == []
        handle.write(data[-10:])
    assert wait_for(lambda: processed_names(slow) == ["early.docx"], 2.5)
