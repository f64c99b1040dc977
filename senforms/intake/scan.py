"""Finding files in the inbox and deciding when each is whole enough to take.

A file is taken only when it opens as what it claims to be (a Word file is a complete zip, a
PDF ends with ``%%EOF``), no Word or LibreOffice lock file sits beside it, and either it has
stood still for the settling delay or, for a Word file with native events, the operating system
has said that the program writing it closed it. Files appear before they are fully copied, and
Word writes a form while it is still open, so every one of these checks is needed.
"""

from __future__ import annotations

import logging
import os
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from senforms.config import Settings
from senforms.errors import SenformsError, UnreadableFileError, UnsupportedFileError
from senforms.read import _REFUSED

log = logging.getLogger("senforms.intake")

# Left alone whatever their state: the litter of Word, LibreOffice, Explorer, browsers and copy
# tools. Dot-files and dot-folders (LibreOffice's ".~lock.x.docx#", our claim folder) too.
_IGNORED_NAMES = {"thumbs.db", "desktop.ini", ".ds_store", "icon\r"}
_IGNORED_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", "~")

#: Word files are zips whose directory is written last, so "opens whole" proves them complete.
_ZIP_SUFFIXES = (".docx", ".docm", ".dotx")

#: The claim folder (see ``claims``); named here too because scan must not import claims.
CLAIM_DIR = ".senforms-claimed"
STILL_COPYING = "still being copied"
IN_WORD = "still open in Word"
IN_LIBREOFFICE = "still open in LibreOffice"
IN_OTHER = "still open in another program"
SETTLING = "just arrived"
READY = "next in line"


def ignored(name: str) -> bool:
    """True for a file or folder name the watcher must never take."""
    lower = name.lower()
    return name.startswith((".", "~$")) or lower in _IGNORED_NAMES or lower.endswith(_IGNORED_SUFFIXES)


def open_in(name: str, siblings: set[str]) -> str | None:
    """Which program still has ``name`` open, from the lock file it leaves beside it.

    ``siblings`` are the lower-cased names in the same folder. Word's owner file is ``~$`` and the
    name with its first one or two characters dropped when the name is long (it keeps the owner
    file's name to a fixed length); LibreOffice's is ``.~lock.NAME#``.
    """
    lower = name.lower()
    if f".~lock.{lower}#" in siblings:
        return IN_LIBREOFFICE
    if any(f"~${lower[cut:]}" in siblings for cut in (0, 1, 2)):
        return IN_WORD
    return None


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
    except OSError:
        return "locked"
    return None


def incomplete_error(reason: str, waited: float) -> UnreadableFileError:
    minutes = f"{waited / 60:.0f} minutes" if waited >= 120 else f"{waited:.0f} seconds"
    if reason == "empty":
        return UnreadableFileError(
            f"The file is empty (0 bytes), and stayed empty for {minutes}. It may not have finished copying.",
            advice="Copy the form into the inbox again from where it was saved. If it comes back here "
            "empty again, open it on your computer to check it has the answers in it.",
        )
    what = {"docx": "a complete Word file", "pdf": "a complete PDF file"}.get(reason, "ready to read")
    return UnreadableFileError(
        f"The file is damaged or was not completely copied: it did not change for {minutes} and is still not {what}.",
        advice="Open the form on your computer. If it opens, save it again (File, Save As, a new name) and "
        "drop the new file in the inbox. If it does not open, the copy you have is damaged: fill the form in "
        "again or ask whoever sent it for another copy.",
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


@dataclass
class Seen:
    size: int
    mtime: int
    since: float  # when size and mtime were last seen to change
    first: float  # when the file was first seen
    checked: float = 0.0  # when it last failed the "opens whole" test
    why: str = SETTLING  # why it is still waiting, for the status file


#: A file to move to problems/ with the error's note, and a few words for the log.
SetAside = tuple[Path, SenformsError, str]


class Closed:
    """Files the operating system said were closed after writing (or moved in), with their size and
    time then: while they still match, the writer is done with the file and it need not settle.
    Filled from watchdog's thread, read by the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[Path, tuple[int, int]] = {}

    def note(self, path: Path) -> None:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return
        with self._lock:
            self._stats[path] = (st.st_size, st.st_mtime_ns)

    def matches(self, path: Path, st: os.stat_result) -> bool:
        with self._lock:
            return self._stats.get(path) == (st.st_size, st.st_mtime_ns)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._stats.pop(path, None)


class Events:
    """Native file events only wake the loop; the scan that follows decides everything. A
    "closed" event (Linux inotify's close-after-write) or a move into the inbox also marks the
    file as finished by its writer."""

    def __init__(self, wake: threading.Event, closed: Closed) -> None:
        from watchdog.events import FileSystemEventHandler

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return  # our own reads would wake us for nothing
                path = os.fsdecode(event.src_path)
                if CLAIM_DIR in path:
                    return  # our own claims (a lock file going away, though, must wake us)
                if event.event_type == "closed":
                    closed.note(Path(path))
                elif event.event_type == "moved" and not event.is_directory:
                    closed.note(Path(os.fsdecode(event.dest_path)))
                wake.set()

        self.handler = Handler()


class Scanner:
    """Remembers what each file in the inbox looked like, and says which are ready to take."""

    def __init__(self, settings: Settings, *, events: bool, give_up_seconds: float) -> None:
        self.settings = settings
        self.inbox = settings.inbox
        self.events = events
        self.give_up_seconds = give_up_seconds
        self.seen: dict[Path, Seen] = {}
        self.closed = Closed()

    def walk(self) -> Iterator[tuple[Path, os.stat_result | None, str | None]]:
        """Every file in the inbox and its subfolders: (path, stat or None for a link, which
        program still has it open)."""
        stack = [self.inbox]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                log.warning("Cannot list %s: %s", folder, exc.strerror or exc)
                continue
            siblings = {entry.name.lower() for entry in entries}
            for entry in entries:
                if ignored(entry.name):
                    continue
                path = Path(entry.path)
                try:
                    if entry.is_symlink() or getattr(entry, "is_junction", lambda: False)():
                        yield path, None, None
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(path)
                    elif entry.is_file(follow_symlinks=False):
                        # os.stat, not the scandir cache: on Windows the directory entry's size
                        # lags behind a file that is still being written.
                        yield path, os.stat(path, follow_symlinks=False), open_in(entry.name, siblings)
                except OSError:
                    continue  # gone, or claimed by another watcher, since the listing

    def scan(self, now: float, once: bool) -> tuple[list[Path], list[SetAside]]:
        """Look at every file in the inbox: those ready to take (oldest first), and those to set aside."""
        present: set[Path] = set()
        ready: list[tuple[float, int, Path]] = []
        out: list[SetAside] = []
        limit = self.settings.max_file_mb * 1024 * 1024
        settle = self.settings.settle_seconds
        for path, st, program in self.walk():
            if st is None:
                out.append((path, symlink_error(), "symlink"))
                continue
            present.add(path)
            seen = self.seen.get(path)
            # With native events, a Word file its writer has closed is taken as soon as it opens
            # whole: the zip's directory is written last, so no settling delay is needed.
            closed = self.events and path.suffix.lower() in _ZIP_SUFFIXES and self.closed.matches(path, st)
            if seen is None or (seen.size, seen.mtime) != (st.st_size, st.st_mtime_ns):
                first = seen.first if seen else now
                seen = self.seen[path] = Seen(st.st_size, st.st_mtime_ns, now, first)
                if not closed:
                    continue
            if program:
                # Word writes the form while it is open; wait until it is closed, however long.
                seen.why = program
                continue
            if not closed and now - seen.since < settle:
                seen.why = SETTLING
                continue
            if path.suffix.lower() in _REFUSED:
                # Refused by its name alone, so its note names what it is, whatever its state.
                message = f"{_REFUSED[path.suffix.lower()]} senforms reads Word (.docx) and PDF forms only."
                out.append((path, UnsupportedFileError(message), "unsupported type"))
                continue
            if st.st_size > limit:
                out.append((path, oversized_error(st.st_size, self.settings.max_file_mb), "too large"))
                continue
            if not closed and now - seen.checked < max(settle, 1.0):
                continue
            reason = incomplete(path, st.st_size)
            if reason:
                # Given up on only after it has not changed for give_up_seconds: a slow copy that
                # is still growing is never cut off.
                if once or now - seen.since >= self.give_up_seconds:
                    out.append((path, incomplete_error(reason, now - seen.since), f"incomplete ({reason})"))
                else:
                    seen.checked = now
                    seen.why = IN_OTHER if reason == "locked" else STILL_COPYING
                continue
            seen.why = READY
            # In the order they arrived (then were last written), so a plan dropped after its
            # early discussion note is processed after it.
            ready.append((seen.first, st.st_mtime_ns, path))
        for gone in set(self.seen) - present:
            del self.seen[gone]
            self.closed.forget(gone)
        ready.sort()
        return [path for _, _, path in ready], out

    def pending(self) -> bool:
        """Whether anything is still expected to become ready by itself (``watch --once`` waits for
        those, not for a form someone has open in Word)."""
        return any(s.why not in (IN_WORD, IN_LIBREOFFICE) for s in self.seen.values())

    def forget(self, path: Path) -> Seen | None:
        self.closed.forget(path)
        return self.seen.pop(path, None)

    def next_due(self) -> float | None:
        """When a changing file will have settled, or a settled file that did not yet open whole
        is due to be tried again (monotonic time); None when nothing is waiting on a clock."""
        settle = self.settings.settle_seconds
        due = [
            max(s.since + settle, s.checked + max(settle, 1.0))
            for s in self.seen.values()
            if s.why not in (IN_WORD, IN_LIBREOFFICE)  # those wait for an event or the next poll
        ]
        return min(due) if due else None

    def waiting(self) -> list[tuple[str, str]]:
        """(name inside the inbox, why it waits) for each file not yet taken."""
        return sorted((_inside(self.inbox, path), seen.why) for path, seen in self.seen.items())


def _inside(inbox: Path, path: Path) -> str:
    try:
        return path.relative_to(inbox).as_posix()
    except ValueError:
        return path.name


def waiting_now(settings: Settings) -> list[tuple[str, str]]:
    """What is in the inbox and why it waits, from one look (for ``senforms status``, which has
    no history): open in Word or LibreOffice, not yet whole, or ready for the watcher."""
    scanner = Scanner(settings, events=False, give_up_seconds=float("inf"))
    found = []
    for path, st, program in scanner.walk():
        if st is None:
            continue
        if program:
            why = program
        else:
            reason = incomplete(path, st.st_size)
            why = READY if reason is None else (IN_OTHER if reason == "locked" else STILL_COPYING)
        found.append((_inside(settings.inbox, path), why))
    return sorted(found)
