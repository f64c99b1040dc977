"""Delivering documents to the outbox: sorted by audience and pupil, named so a person knows
what each is, never overwriting, and never visible half-written."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
import unicodedata
from datetime import date
from pathlib import Path

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]+')
# Device names Windows reserves in every folder, with or without an extension ("CON.docx"),
# including the superscript-digit forms Windows also treats as devices.
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    *(f"{port}{n}" for port in ("COM", "LPT") for n in [*"123456789", "\u00b9", "\u00b2", "\u00b3"]),
}


def _visible(char: str) -> bool:
    """False for the characters that print as nothing or change the direction of what follows:
    zero-width space and joiners, the byte-order mark, the soft hyphen, and the bidi embeddings,
    overrides and isolates (U+202A-202E, U+2066-2069), with which a name can show its ending
    backwards ("report\u202excod.exe" shows as "reportexe.docx"). Unicode calls them all
    "format" characters (category Cf)."""
    return unicodedata.category(char) != "Cf"


def safe_name(text: str, limit: int = 80) -> str:
    """A file or folder name from form text: safe on Windows, never a path, nothing invisible.

    NFC, so that one name is one folder however its accents were typed; no characters Windows
    refuses or that hide or reverse text; no trailing dots or spaces (Windows drops them); never
    a reserved device name; at most ``limit`` characters."""
    name = unicodedata.normalize("NFC", "".join(c for c in text if _visible(c)))
    name = _UNSAFE.sub(" ", name)
    name = " ".join(name.split()).strip(" .")
    if not name or name.upper().split(".")[0].strip() in _RESERVED:
        name = f"_{name}" if name else "unnamed"
    return name[:limit].rstrip(" .") or "unnamed"


def pupil_folder(surname: str, forename: str, upn: str, limit: int = 80) -> str:
    """The pupil's folder in the outbox: "Surname Forename (UPN)". Long names are shortened,
    never the UPN, so two children with the same long surname never share a folder."""
    tail = f" ({safe_name(upn, 20)})"
    room = limit - len(tail)
    surname, forename = safe_name(surname, room), safe_name(forename, room)
    if len(surname) + 1 + len(forename) > room:
        # Both names shortened, the first name keeping at least a third, so that a person can
        # still tell apart the folders of two children with the same long surname.
        keep = max(room - 1 - len(surname), min(len(forename), room // 3))
        forename = safe_name(forename, keep)
        surname = safe_name(surname, room - 1 - len(forename))
    return f"{surname} {forename}{tail}"


def safe_file_name(text: str, limit: int = 150) -> str:
    """``safe_name`` for a file name: when it is shortened, it keeps its extension (".docx")."""
    name = safe_name(text, 10_000)
    suffix = Path(name).suffix if 1 < len(Path(name).suffix) <= 10 else ""
    return safe_name(name[: len(name) - len(suffix)], limit - len(suffix)) + suffix


# Outbox files are written here first, then moved into place, so a write cut off by a crash
# leaves its remains here rather than among a pupil's documents.
STAGING = ".senforms-partial"


def staging(outbox: Path) -> Path:
    return outbox / STAGING


def clear_staging(outbox: Path, *, older_than: float = 600.0) -> None:
    """Remove what crashed writes left in the staging folder. Only old files: another watcher
    may be writing one now, and a real write takes milliseconds."""
    cutoff = time.time() - older_than
    with contextlib.suppress(OSError):
        for leftover in staging(outbox).glob(".~senforms-*.part"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()


# The mode of documents written to the outbox when ``write_atomic`` is not given one: None means
# the process umask, as for any program's files; the command line sets it from ``file_mode`` in
# senforms.toml. (The archive and senforms.log are made owner-only where they are created.)
DEFAULT_FILE_MODE: int | None = None

_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def _create_temp(folder: Path) -> tuple[int, Path]:
    """A new, empty temporary file in ``folder``. Unlike ``tempfile.mkstemp``, which makes files
    readable by their owner only, it is created with mode 0666 less the umask, so staff on other
    accounts can open the outbox's documents as they can any other file in the folder."""
    for _ in range(100):
        tmp = folder / f".~senforms-{secrets.token_hex(6)}.part"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def private_file(path: Path) -> None:
    """Make ``path`` readable by its owner only, creating it empty if need be: for senforms.log,
    which names files and UPNs. An existing file made with the umask (by an earlier version, or
    by log rotation) is tightened."""
    with contextlib.suppress(OSError):  # some network shares keep their own permissions
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)


def write_atomic(
    path: Path, data: bytes, *, overwrite: bool = False, stage: Path | None = None, mode: int | None = None
) -> Path:
    """Write ``data`` so that ``path`` appears complete or not at all.

    Unless ``overwrite``, an existing file is never replaced: the new one is given the first free
    name ``stem (2).ext``, ``stem (3).ext`` and so on. Returns the path written. ``stage`` is a
    folder on the same file system to write in first (see ``staging``); by default, beside ``path``.
    ``mode`` (default ``DEFAULT_FILE_MODE``, else the umask) is the new file's permissions.
    """
    # Folders are made only when missing: a form's three documents would otherwise cost six
    # mkdir calls and their checks, in the folders that nearly always exist already.
    folder = stage or path.parent
    try:
        fd, tmp = _create_temp(folder)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(folder)
    mode = DEFAULT_FILE_MODE if mode is None else mode
    try:
        if mode is not None:
            # Exactly what the school asked for, whatever the umask; some network shares keep
            # their own permissions and refuse, which is theirs to decide.
            with contextlib.suppress(OSError):
                os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if stage is not None and not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
        return _put_in_place(tmp, path, overwrite=overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _put_in_place(tmp: Path, path: Path, *, overwrite: bool) -> Path:
    """Move the written ``tmp`` to ``path`` (or, unless ``overwrite``, the first free name)."""
    if overwrite:
        os.replace(tmp, path)
        return path
    target = path
    n = 1
    while True:
        try:
            # A hard link fails if the target exists, so no other writer's file is replaced.
            os.link(tmp, target)
        except FileExistsError:
            n += 1
            target = path.with_name(f"{path.stem} ({n}){path.suffix}")
            continue
        except OSError:
            # File systems without hard links (some network shares): check, then rename.
            if target.exists():
                n += 1
                target = path.with_name(f"{path.stem} ({n}){path.suffix}")
                continue
            os.replace(tmp, target)
            return target
        tmp.unlink()
        return target


#: The note's last line when ``set_aside`` is given the day: what the weekly digest dates it by.
SET_ASIDE_ON = "Set aside on {:%d/%m/%Y}."
SET_ASIDE_ON_RE = re.compile(r"^Set aside on (\d{2}/\d{2}/\d{4})\.$", re.MULTILINE)


def set_aside(source: Path, problems: Path, note: str, *, on: date | None = None) -> Path:
    """Move a file that could not be processed into ``problems/`` with a note beside it.

    The file is moved, never deleted or changed; if a file of that name is already set aside, the
    new one gets a free name. The note (``<file>.txt``) is written first, so that a crash between
    the two steps leaves a note without its file, never a file without a note.

    ``on`` (``settings.today()``) ends the note with the day it was set aside, so the weekly
    digest dates it as senforms saw the day (``--today``), not by the note's file time.
    """
    if on is not None:
        note = note.rstrip() + "\n\n" + SET_ASIDE_ON.format(on)
    problems.mkdir(parents=True, exist_ok=True)
    name = Path(safe_file_name(source.name))
    target = problems / name
    n = 1
    while target.exists() or target.with_name(target.name + ".txt").exists():
        n += 1
        target = problems / f"{name.stem} ({n}){name.suffix}"
    note_path = write_atomic(
        target.with_name(target.name + ".txt"), (note.rstrip() + "\n").encode("utf-8"), overwrite=True
    )
    try:
        os.replace(source, target)
    except FileNotFoundError:
        # The file went (another watcher took it, or it never existed): no note for nothing.
        note_path.unlink(missing_ok=True)
        raise
    return target
