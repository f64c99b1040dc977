"""The watched folder: take each form dropped in the inbox once, whole, and never lose one.

Office staff drop forms into a shared folder, usually on a network share, and leave senforms
running unattended. So the watcher trusts nothing it is told:

- it scans the inbox at start-up and again every few seconds, because native file events
  (inotify) never fire on SMB/NFS shares and can be missed even locally; events, where they
  work, only make it look sooner;
- a file is taken only when its size and modification time have stood still for the settling
  delay *and* it opens as what it claims to be (a Word file is a complete zip, a PDF ends with
  ``%%EOF``), because files appear before they are fully copied;
- it claims a file by an atomic rename into ``inbox/.senforms-claimed/``, so no file is taken
  twice, even by two watchers, and a file claimed by a watcher that was killed is taken up again
  at the next start (the pipeline is idempotent);
- each file is processed in a worker process with a time and memory limit, so no single bad
  file can take the watcher down with it; a file that cannot be processed is moved to
  ``problems/`` with a note saying why, in plain English.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from senforms.config import Settings
from senforms.deliver import set_aside, staging, write_atomic
from senforms.errors import ConfigError, ExitCode, SenformsError, UnreadableFileError, UnsupportedFileError
from senforms.office import MISSING_MESSAGE, office_available
from senforms.read import _REFUSED
from senforms.worker import Outcome, PipelineProcessor, ProcessorFactory, Worker, in_process

log = logging.getLogger("senforms.intake")

CLAIM_DIR = ".senforms-claimed"
STATUS_NAME = "senforms status.txt"
STATE_NAME = ".senforms-watch.json"
LOG_NAME = "senforms.log"
#: A half-copied file is waited for this long before it is set aside as incomplete.
GIVE_UP_SECONDS = 15 * 60.0

# Left alone whatever their state: the litter of Word, LibreOffice, Explorer, browsers and copy
# tools. Dot-files and dot-folders (LibreOffice's ".~lock.x.docx#", our claim folder) too.
_IGNORED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store", "icon\r"}
_IGNORED_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", "~")

# File systems on which native events do not report other machines' changes.
NETWORK_FILESYSTEMS = {
    "cifs",
    "smb",
    "smb2",
    "smb3",
    "smbfs",
    "nfs",
    "nfs4",
    "ncpfs",
    "afs",
    "9p",
    "drvfs",
    "davfs",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "fuse.sshfs",
    "fuse.rclone",
    "fuse.s3fs",
    "fuse.davfs2",
    "fuse.glusterfs",
    "fuse.gcsfuse",
    "fuse.cifs",
}


def ignored(name: str) -> bool:
    """True for a file or folder name the watcher must never take."""
    lower = name.lower()
    return name.startswith((".", "~$")) or lower in _IGNORED_NAMES or lower.endswith(_IGNORED_SUFFIXES)


# --- where the inbox lives ------------------------------------------------------------------


def _unescape_mount(text: str) -> str:
    # /proc/mounts writes space, tab, newline and backslash as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def linux_filesystem(path: Path, mounts: str | None = None) -> str | None:
    """The file-system type of the mount holding ``path`` (from ``/proc/mounts``), if known."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = str(path)
    best, best_type = "", None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = _unescape_mount(parts[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, parts[2]
    return best_type


def windows_network(path: str) -> str | None:
    """ "UNC path" or "mapped network drive" when a Windows path is on another machine."""
    if path.startswith(("\\\\?\\UNC\\", "//")) or (path.startswith("\\\\") and not path.startswith("\\\\?\\")):
        return "UNC path"
    if sys.platform != "win32" or len(path) < 2 or path[1] != ":":
        return None
    import ctypes

    drive_remote = 4  # GetDriveTypeW's DRIVE_REMOTE
    if ctypes.windll.kernel32.GetDriveTypeW(path[:2] + "\\") == drive_remote:  # type: ignore[attr-defined,unused-ignore]
        return "mapped network drive"
    return None


def network_filesystem(path: Path) -> str | None:
    """Why native events cannot be trusted for ``path``, or None if it looks local."""
    if sys.platform == "win32":
        # resolve(): an inbox that is a link to \\server\share is on the share.
        return windows_network(str(path.resolve()))
    kind = linux_filesystem(path.resolve()) if sys.platform.startswith("linux") else None
    if kind and (kind in NETWORK_FILESYSTEMS or kind.split(".")[-1] in NETWORK_FILESYSTEMS):
        return kind
    return None


def check_layout(settings: Settings) -> None:
    """Refuse an outbox, problems folder or archive inside the inbox: the watcher would take
    its own output as new forms (or move the archive away as a problem)."""
    inbox = settings.inbox.resolve()
    places = {"outbox": settings.outbox, "problems folder": settings.problems}
    url = settings.database_url
    if url.startswith("sqlite:///"):
        places["archive"] = Path(url.removeprefix("sqlite:///"))
    for label, place in places.items():
        resolved = place.resolve()
        if resolved == inbox or resolved.is_relative_to(inbox):
            raise ConfigError(
                f"The {label} ({place}) is inside the inbox ({settings.inbox}), so senforms would take "
                "its own files as new forms. The watcher has not started.",
                advice=f"Move the {label} out of the inbox folder (they sit side by side in the home folder).",
            )


# --- whether a file is whole ----------------------------------------------------------------


def incomplete(path: Path, size: int) -> str | None:
    """Why a file that has stopped changing is still not whole, or None when it opens as what
    it claims: "empty", "docx" (no complete zip directory), "pdf" (no %%EOF near the end),
    "locked" (another program still has it open for writing, on Windows)."""
    if size == 0:
        return "empty"
    try:
        with path.open("rb") as handle:
            head = handle.read(1024)
            if head[:4] == b"PK\x03\x04":
                try:
                    # Reading the central directory, which is written last, proves the zip whole.
                    with zipfile.ZipFile(handle) as archive:
                        archive.infolist()
                except (zipfile.BadZipFile, EOFError, ValueError, OSError):
                    return "docx"
            elif b"%PDF-" in head:
                handle.seek(max(0, size - 2048))
                if b"%%EOF" not in handle.read():
                    return "pdf"
    except PermissionError:
        return "locked"
    except OSError:
        return "locked"
    return None


def _incomplete_error(reason: str, waited: float) -> UnreadableFileError:
    minutes = f"{waited / 60:.0f} minutes" if waited >= 120 else f"{waited:.0f} seconds"
    if reason == "empty":
        return UnreadableFileError(
            f"The file is empty (0 bytes), and stayed empty for {minutes}. It may not have finished copying."
        )
    what = {"docx": "a complete Word file", "pdf": "a complete PDF file"}.get(reason, "ready to read")
    return UnreadableFileError(
        f"The file is damaged or was not completely copied: after {minutes} it is still not {what}."
    )


def symlink_error() -> UnreadableFileError:
    return UnreadableFileError(
        "This is a link (a shortcut) to a file somewhere else, not a form itself. senforms does not "
        "follow links, so that nothing outside the inbox is ever read or moved.",
        advice="Copy the form itself into the inbox folder (not a shortcut to it).",
    )


def oversized_error(size: int, limit_mb: int) -> UnreadableFileError:
    return UnreadableFileError(
        f"The file is too large ({size / (1024 * 1024):.1f} MB); senforms takes files up to {limit_mb} MB "
        "(max_file_mb in senforms.toml), and a form is usually well under 1 MB.",
        advice="Remove any large pictures or scans pasted into the form, save it, and drop it in again.",
    )


def _limit_error(what: str, settings: Settings) -> UnreadableFileError:
    if what == "timeout":
        message = (
            f"Reading this file took longer than the limit of {settings.seconds_per_file:.0f} seconds "
            "(seconds_per_file in senforms.toml), so it was stopped. The file may be damaged, or made "
            "to be hard to read."
        )
    else:
        message = (
            f"Reading this file needed more memory than the limit of {settings.memory_mb_per_file} MB "
            "(memory_mb_per_file in senforms.toml), so it was stopped. The file may be damaged, or "
            "made to be hard to read."
        )
    return UnreadableFileError(
        message,
        advice="Open it on your computer to check it, save it again as a new file, and drop that in. "
        "If it happens again, give the file to whoever looks after senforms.",
    )


UNEXPECTED_NOTE = (
    "Something went wrong inside senforms while it was processing this file, so it was set aside "
    "rather than risk a wrong record. The details are in senforms.log in the senforms home folder.\n\n"
    "What to do: drop the file in again. If it comes back here again, give this file and senforms.log "
    "to whoever looks after senforms."
)


# --- claims -----------------------------------------------------------------------------------


def _try_lock(path: Path) -> IO[bytes] | bool | None:
    """Lock ``path`` for this process: the open handle if locked, None if another live process
    holds it, False if this file system does not do locks. The operating system drops the lock
    when the holder dies, even by SIGKILL, which is how a crashed watcher's claims are found."""
    handle = path.open("a+b")
    try:
        if sys.platform == "win32":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        handle.close()
        return None
    except OSError as exc:
        handle.close()
        import errno

        if exc.errno in (errno.EAGAIN, errno.EACCES, getattr(errno, "EDEADLK", -1)):
            return None
        return False
    return handle


@dataclass
class _Seen:
    size: int
    mtime: int
    since: float  # when size and mtime were last seen to change
    first: float  # when the file was first seen
    checked: float = 0.0  # when it last failed the "opens whole" test


@dataclass
class Summary:
    processed: int = 0
    set_aside: int = 0

    @property
    def ok(self) -> bool:
        return self.set_aside == 0


@dataclass
class _Today:
    day: str = field(default_factory=lambda: date.today().isoformat())
    done: int = 0
    set_aside: int = 0

    def roll(self) -> None:
        today = date.today().isoformat()
        if today != self.day:
            self.day, self.done, self.set_aside = today, 0, 0


class _Events:
    """Native file events only wake the loop; the scan that follows decides everything."""

    def __init__(self, wake: threading.Event) -> None:
        from watchdog.events import FileSystemEventHandler

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return  # our own reads would wake us for nothing
                path = os.fsdecode(event.src_path)
                if CLAIM_DIR in path:
                    return
                wake.set()

        self.handler = Handler()


class Watcher:
    """Watches the inbox until ``stop()`` (or Ctrl-C, SIGTERM, or ``timeout`` seconds for tests).

    ``poll`` forces polling every ``poll`` seconds; otherwise native events are used where they
    work, with a rescan every ``settings.poll_seconds`` as a safety net. ``factory`` makes what
    processes a file inside the worker (the real pipeline by default; tests inject fakes).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        poll: float | None = None,
        factory: ProcessorFactory = PipelineProcessor,
        isolate: bool = True,
        give_up_seconds: float = GIVE_UP_SECONDS,
        timeout: float | None = None,
        log_file: bool = True,
    ) -> None:
        check_layout(settings)
        self.settings = settings
        self.inbox = settings.inbox
        self.claims = self.inbox / CLAIM_DIR
        self.factory = factory
        self.isolate = isolate
        self.give_up_seconds = give_up_seconds
        self.timeout = timeout
        self.log_file = log_file
        self.poll_seconds = float(poll if poll else settings.poll_seconds)
        network = network_filesystem(self.inbox)
        if poll:
            self.mode, self.reason = "polling", "as asked (--poll)"
        elif network:
            self.mode, self.reason = "polling", f"the inbox is on a network share ({network}), which sends no events"
        else:
            self.mode, self.reason = "events", "native file events, with a rescan as a safety net"
        self.owner = f"{_safe_host()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.mine = self.claims / self.owner
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._seen: dict[Path, _Seen] = {}
        self._lock: IO[bytes] | None = None
        self._worker: Worker | None = None
        self._run_file: Callable[..., Outcome] | None = None
        self._observer: Any = None
        self._seq = 0
        self._next_slot: Path | None = None
        self._archive_pause = 0.0
        self._today = _Today()
        self._status_written = 0.0
        self._status_text = ""
        self._heartbeat = 0.0
        self.summary = Summary()

    # -- control --

    def stop(self) -> None:
        """Ask the watcher to stop after the file in hand."""
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def describe(self) -> list[str]:
        how = (
            f"using native file events, with a rescan every {self.poll_seconds:g} s as a safety net"
            if self.mode == "events"
            else f"polling every {self.poll_seconds:g} s: {self.reason}"
        )
        lines = [
            f"Watching {self.inbox} and its subfolders, {how}.",
            f"Documents go to {self.settings.outbox}; files that cannot be processed go to {self.settings.problems}.",
            f"Log: {self.settings.home / LOG_NAME}",
        ]
        if self.settings.document_format == "pdf" and not office_available():
            lines.append(MISSING_MESSAGE)
        if unfilled := self.settings.unfilled():
            lines.append(
                "senforms.toml still has placeholders for: " + ", ".join(unfilled) + ". Letters will leave them out "
                "until they are filled in."
            )
        return lines

    # -- the loop --

    def run(self, *, once: bool = False) -> Summary:
        """Watch until stopped; with ``once``, process what is in the inbox now and return."""
        handler = _add_log_file(self.settings) if self.log_file else None
        restore = self._install_signals()
        try:
            self._start()
            self._loop(once)
        finally:
            self._shutdown()
            restore()
            if handler is not None:
                logging.getLogger("senforms").removeHandler(handler)
                handler.close()
        return self.summary

    def _start(self) -> None:
        for folder in (self.inbox, self.settings.outbox, self.settings.problems, self.mine):
            folder.mkdir(parents=True, exist_ok=True)
        self._next_slot = self._new_slot()
        lock = _try_lock(self.mine / ".lock")
        self._lock = None if isinstance(lock, bool) else lock
        if lock is False:
            log.warning("This file system does not support locks; claims are recovered by age instead.")
        self._load_today()
        if self.isolate:
            self._worker = Worker(self.settings, self.factory)
            self._worker.start()
            self._run_file = self._worker.run
        else:
            self._run_file = in_process(self.settings, self.factory)
        if self.mode == "events":
            try:
                from watchdog.observers import Observer

                observer = Observer()
                observer.schedule(_Events(self._wake).handler, str(self.inbox), recursive=True)
                observer.start()
                self._observer = observer
            except Exception as exc:  # inotify limits, unsupported platform: polling still works
                self.mode, self.reason = "polling", f"native events failed to start ({exc})"
                log.warning("Native file events are unavailable (%s); polling every %g s.", exc, self.poll_seconds)
        log.info("Watcher started (%s, %s): %s", self.owner, self.mode, self.inbox)

    def _loop(self, once: bool) -> None:
        started = time.monotonic()
        self._recover()
        last_scan = 0.0
        while not self._stop.is_set():
            if self.timeout is not None and time.monotonic() - started > self.timeout:
                break
            try:
                self._wake.clear()
                now = time.monotonic()
                last_scan = now
                ready = self._scan(now, once)
                for path in ready:
                    if self._stop.is_set():
                        break
                    self._take(path)
                self._beat()
                self._write_status()
                if once and not self._seen:
                    break
                if ready:
                    continue  # more may have arrived while those were processed
            except Exception:
                # A watched folder is unattended: nothing here may end the loop but a stop.
                log.exception("Unexpected error in the watcher loop; carrying on.")
                self._stop.wait(1.0)
            wait = self.poll_seconds - (time.monotonic() - last_scan)
            settle = self.settings.settle_seconds
            # Next look: when a changing file will have settled, or when a settled file that did
            # not yet open whole is due to be tried again.
            due = [max(s.since + settle, s.checked + max(settle, 1.0)) for s in self._seen.values()]
            if due:
                wait = min(wait, min(due) - time.monotonic() + 0.01)
            if self.timeout is not None:
                wait = min(wait, self.timeout - (time.monotonic() - started))
            if wait > 0:
                self._wake.wait(wait)

    def _shutdown(self) -> None:
        if self._next_slot is not None:
            with contextlib.suppress(OSError):
                self._next_slot.rmdir()
        if self._observer is not None:
            # watchdog logs a harmless error from its inotify thread as it is stopped.
            logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(5)
            self._observer = None
        if self._worker is not None:
            self._worker.close()
            self._worker = None
        self._write_status(force=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        # An empty claim folder is tidied away; one with files in it is for the next start.
        with contextlib.suppress(OSError):
            (self.mine / ".lock").unlink()
            self.mine.rmdir()
        log.info("Watcher stopped: %d processed, %d set aside.", self.summary.processed, self.summary.set_aside)

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        saved: dict[int, Any] = {}

        def handle(signum: int, _frame: Any) -> None:
            log.info("Stopping (signal %d) after the file in hand.", signum)
            self.stop()

        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            if hasattr(signal, name):
                signum = getattr(signal, name)
                saved[signum] = signal.signal(signum, handle)

        def restore() -> None:
            for signum, old in saved.items():
                signal.signal(signum, old)

        return restore

    # -- finding files --

    def _walk(self) -> Iterator[tuple[Path, os.stat_result]]:
        stack = [self.inbox]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                log.warning("Cannot list %s: %s", folder, exc.strerror or exc)
                continue
            for entry in entries:
                if ignored(entry.name):
                    continue
                path = Path(entry.path)
                try:
                    if entry.is_symlink() or getattr(entry, "is_junction", lambda: False)():
                        self._set_aside(path, symlink_error(), "symlink")
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(path)
                    elif entry.is_file(follow_symlinks=False):
                        # os.stat, not the scandir cache: on Windows the directory entry's size
                        # lags behind a file that is still being written.
                        yield path, os.stat(path, follow_symlinks=False)
                except OSError:
                    continue  # gone, or claimed by another watcher, since the listing

    def _scan(self, now: float, once: bool) -> list[Path]:
        """Look at every file in the inbox; return those ready to take, oldest first."""
        present: set[Path] = set()
        ready: list[tuple[float, int, Path]] = []
        limit = self.settings.max_file_mb * 1024 * 1024
        for path, st in self._walk():
            present.add(path)
            seen = self._seen.get(path)
            if seen is None or (seen.size, seen.mtime) != (st.st_size, st.st_mtime_ns):
                first = seen.first if seen else now
                self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now, first)
                continue
            if now - seen.since < self.settings.settle_seconds:
                continue
            if path.suffix.lower() in _REFUSED:
                # Refused by its name alone, so its note names what it is, whatever its state.
                message = f"{_REFUSED[path.suffix.lower()]} senforms reads Word (.docx) and PDF forms only."
                self._set_aside(path, UnsupportedFileError(message), "unsupported type")
                continue
            if st.st_size > limit:
                self._set_aside(path, oversized_error(st.st_size, self.settings.max_file_mb), "too large")
                continue
            if now - seen.checked < max(self.settings.settle_seconds, 1.0):
                continue
            reason = incomplete(path, st.st_size)
            if reason:
                if once or now - seen.first >= self.give_up_seconds:
                    self._set_aside(path, _incomplete_error(reason, now - seen.first), f"incomplete ({reason})")
                else:
                    seen.checked = now
                continue
            # In the order they arrived (then were last written), so a plan dropped after its
            # early discussion note is processed after it.
            ready.append((seen.first, st.st_mtime_ns, path))
        for gone in set(self._seen) - present:
            del self._seen[gone]
        ready.sort()
        return [path for _, _, path in ready]

    @property
    def waiting(self) -> int:
        return len(self._seen)

    # -- taking files --

    def _new_slot(self) -> Path:
        self._seq += 1
        slot = self.mine / f"{self._seq:06d}"
        slot.mkdir(parents=True, exist_ok=True)
        return slot

    def _slot(self) -> Path:
        """A claim folder, made one claim ahead. Files move into a folder that file events are
        already watched in: a move into a folder too new to be watched leaves watchdog holding
        the move's first half back for half a second, and every event behind it waits too."""
        slot = self._next_slot if self._next_slot is not None and self._next_slot.is_dir() else self._new_slot()
        self._next_slot = self._new_slot()
        return slot

    def _claim(self, path: Path) -> Path | None:
        """Move ``path`` into this watcher's claim folder; None if someone else took it first."""
        slot = self._slot()
        target = slot / path.name
        try:
            os.replace(path, target)
        except FileNotFoundError:
            slot.rmdir()
            return None
        except OSError as exc:
            # On Windows a file still open in another program cannot be moved: try again later.
            log.info("Cannot claim a file yet (%s); will retry.", exc.strerror or exc)
            slot.rmdir()
            return None
        return target

    def _take(self, path: Path) -> None:
        seen = self._seen.pop(path, None)
        claimed = self._claim(path)
        if claimed is None:
            return
        try:
            st = os.stat(claimed, follow_symlinks=False)
            if os.path.islink(claimed):
                self._set_aside(claimed, symlink_error(), "symlink")
                return
            if seen is not None and (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime):
                # It changed between the last look and the claim: put it back to settle again.
                self._unclaim(claimed, path)
                return
        except OSError:
            return
        if self._process(claimed) == "retry":
            # The archive could not be reached: not the file's fault, so it goes back where it was
            # and is tried again after a pause that grows while the archive stays away.
            self._unclaim(claimed, path)
            self._archive_pause = min(60.0, max(2.0, self._archive_pause * 2))
            log.error(
                "The archive cannot be reached; the file stays in the inbox. Trying again in %g s.", self._archive_pause
            )
            self._stop.wait(self._archive_pause)
        else:
            self._archive_pause = 0.0

    def _unclaim(self, claimed: Path, original: Path) -> None:
        try:
            if not original.exists():
                os.replace(claimed, original)
                claimed.parent.rmdir()
        except OSError as exc:
            # Not lost: claimed files are taken up again when the watcher next starts.
            log.warning(
                "Could not put %s back in the inbox (%s); it is taken up at the next start.", _ref(claimed), exc
            )

    def _process(self, claimed: Path) -> str | None:
        """Process a claimed file; returns "retry" when the archive could not be reached."""
        name = claimed.name
        assert self._run_file is not None
        try:
            outcome = self._run_file(claimed, name, tick=self._beat)
        except Exception:
            log.exception("The worker could not be asked to process %s", _ref(claimed))
            self._set_aside(claimed, None, "unexpected error")
            return None
        if (
            outcome.status == "problem"
            and outcome.error is not None
            and outcome.error.exit_code == ExitCode.archive_error
        ):
            return "retry"
        if outcome.status == "ok":
            result = outcome.result
            ref = _ref(claimed)
            self._done(claimed)
            log.info(
                "%s %s for UPN %s (%s): %d document(s).",
                str(result.get("status", "processed")).capitalize(),
                result.get("kind", "form"),
                result.get("upn", "?"),
                ref,
                len(result.get("documents", [])),
            )
        elif outcome.status == "problem" and outcome.error is not None:
            self._set_aside(claimed, outcome.error, getattr(outcome.error, "type_name", type(outcome.error).__name__))
        elif outcome.status in ("timeout", "memory"):
            log.warning("%s: over the %s limit; the worker was restarted.", _ref(claimed), outcome.status)
            self._set_aside(claimed, _limit_error(outcome.status, self.settings), outcome.status)
        else:
            log.error("Unexpected failure processing %s:\n%s", _ref(claimed), outcome.detail)
            self._set_aside(claimed, None, "unexpected error")
        return None

    def _done(self, claimed: Path) -> None:
        # The pipeline keeps the original in the archive; the inbox copy can go.
        with contextlib.suppress(FileNotFoundError):
            claimed.unlink()
        self._drop_slot(claimed)
        self.summary.processed += 1
        self._today.roll()
        self._today.done += 1

    def _set_aside(self, path: Path, error: SenformsError | None, why: str) -> None:
        note = error.note() if error is not None else UNEXPECTED_NOTE
        ref = _ref(path)
        try:
            target = set_aside(path, self.settings.problems, note)
        except FileNotFoundError:
            return  # another watcher took it, or someone removed it
        except OSError as exc:
            log.error("Could not set aside %s (%s): %s", ref, why, exc)
            return
        self._seen.pop(path, None)
        self._drop_slot(path)
        self.summary.set_aside += 1
        self._today.roll()
        self._today.set_aside += 1
        log.warning("Set aside %s: %s (moved to the problems folder with a note).", ref, why)
        del target

    def _drop_slot(self, claimed: Path) -> None:
        if claimed.parent.parent.parent == self.claims:
            with contextlib.suppress(OSError):
                claimed.parent.rmdir()

    # -- recovery after a crash --

    def _recover(self) -> None:
        """Process again what a killed watcher (this one's predecessor) had claimed."""
        try:
            owners = [d for d in self.claims.iterdir() if d.is_dir() and d != self.mine]
        except OSError:
            return
        for owner in sorted(owners):
            lock_path = owner / ".lock"
            lock: IO[bytes] | bool | None = None
            if lock_path.exists():
                lock = _try_lock(lock_path)
                if lock is None:
                    continue  # another watcher is alive and working on these
                if lock is False:
                    with contextlib.suppress(OSError):
                        if time.time() - lock_path.stat().st_mtime < 300:
                            continue  # no locks here: trust a recent heartbeat instead
            adopted: list[Path] = []
            try:
                for slot in sorted(owner.iterdir()):
                    if not slot.is_dir():
                        continue
                    for file in slot.iterdir():
                        mine = self._claim(file)
                        if mine is not None:
                            adopted.append(mine)
                    with contextlib.suppress(OSError):
                        slot.rmdir()
            finally:
                if lock not in (None, False):
                    lock.close()  # type: ignore[union-attr]
                with contextlib.suppress(OSError):
                    lock_path.unlink()
                with contextlib.suppress(OSError):
                    owner.rmdir()
            if adopted:
                log.info("Taking up %d file(s) left by a watcher that stopped unexpectedly.", len(adopted))
            for claimed in adopted:
                if self._stop.is_set():
                    return
                self._process(claimed)

    def _beat(self) -> None:
        """Touch this watcher's lock file now and then: a heartbeat where locks are not kept."""
        now = time.monotonic()
        if now - self._heartbeat > 30:
            self._heartbeat = now
            with contextlib.suppress(OSError):
                os.utime(self.mine / ".lock")

    # -- status --

    def _state_path(self) -> Path:
        return self.settings.home / STATE_NAME

    def _load_today(self) -> None:
        try:
            data = json.loads(self._state_path().read_text(encoding="utf-8"))
            if data.get("day") == date.today().isoformat():
                self._today = _Today(data["day"], int(data.get("done", 0)), int(data.get("set_aside", 0)))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no state file yet, or a damaged one: today's counts start from zero

    def _write_status(self, *, force: bool = False) -> None:
        self._today.roll()
        counts = (self.waiting, self._today.done, self._today.set_aside)
        now = time.monotonic()
        changed = counts != getattr(self, "_last_counts", None)
        # At most once a second during a burst, and once a minute when idle so staff can see
        # from the time that the watcher is alive.
        if not force and not (changed and now - self._status_written >= 1.0) and now - self._status_written < 60:
            return
        self._last_counts = counts
        self._status_written = now
        state = {"day": self._today.day, "done": self._today.done, "set_aside": self._today.set_aside}
        try:
            write_atomic(self._state_path(), json.dumps(state).encode("utf-8"), overwrite=True)
            running = not (self._stop.is_set() or force)
            text = "\n".join(status_lines(self.settings, waiting=self.waiting, today=self._today, running=running))
            write_atomic(
                self.settings.outbox / STATUS_NAME,
                (text + "\n").encode("utf-8"),
                overwrite=True,
                stage=staging(self.settings.outbox),
            )
        except OSError as exc:
            log.warning("Cannot write the status file: %s", exc)


def _safe_host() -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40] or "host"


def _ref(path: Path) -> str:
    """How the log names a file: its type and a short fingerprint, never its name, because
    office staff often name files after the pupil. The UPN identifies the pupil instead."""
    import hashlib

    try:
        with path.open("rb") as handle:
            digest = hashlib.sha256(handle.read(1024 * 1024)).hexdigest()[:10]
    except OSError:
        digest = hashlib.sha256(str(path).encode("utf-8", "replace")).hexdigest()[:10]
    return f"file {digest}{path.suffix.lower()[:6]}"


def _add_log_file(settings: Settings) -> logging.Handler | None:
    try:
        handler = logging.handlers.RotatingFileHandler(
            settings.home / LOG_NAME, maxBytes=1_000_000, backupCount=5, encoding="utf-8"
        )
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("senforms")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


# --- status -----------------------------------------------------------------------------------


def count_waiting(settings: Settings) -> int:
    """Files in the inbox (and claimed, not yet finished) that the watcher would take."""
    total = 0
    stack = [settings.inbox]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if ignored(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            else:
                total += 1
    claims = settings.inbox / CLAIM_DIR
    if claims.is_dir():
        total += sum(1 for p in claims.glob("*/*/*") if p.is_file())
    return total


def status_lines(
    settings: Settings, *, waiting: int | None = None, today: _Today | None = None, running: bool | None = None
) -> list[str]:
    """The status shown in ``outbox/senforms status.txt`` and by ``senforms status``."""
    if today is None:
        today = _Today()
        try:
            data = json.loads((settings.home / STATE_NAME).read_text(encoding="utf-8"))
            if data.get("day") == today.day:
                today = _Today(today.day, int(data.get("done", 0)), int(data.get("set_aside", 0)))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no state file yet, or a damaged one: today's counts start from zero
    if waiting is None:
        waiting = count_waiting(settings)
    lines = [f"senforms, {datetime.now():%d/%m/%Y %H:%M:%S}"]
    if running is not None:
        lines.append("The watcher is running." if running else "The watcher has stopped.")
    lines += [
        f"Waiting in the inbox: {waiting}",
        f"Done today: {today.done}",
        f"Set aside today: {today.set_aside}" + (" (see the problems folder)" if today.set_aside else ""),
    ]
    return lines
