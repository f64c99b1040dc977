"""Delivering documents to the outbox: sorted by audience and pupil, named so a person knows
what each is, never overwriting, and never visible half-written."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from pathlib import Path

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]+')
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_name(text: str, limit: int = 80) -> str:
    """A file or folder name from form text: safe on Windows, never a path."""
    name = _UNSAFE.sub(" ", text)
    name = " ".join(name.split()).strip(" .")
    if not name or name.upper().split(".")[0] in _RESERVED:
        name = f"_{name}" if name else "unnamed"
    return name[:limit].rstrip(" .")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    if stage is not None:
        stage.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(stage or path.parent)
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
        if overwrite:
            os.replace(tmp, path)
            return path
        target = path
        n = 1
        while True:
            try:
                # A hard link fails if the target exists, so no other writer's file is replaced.
                os.link(tmp, target)
                tmp.unlink()
                return target
            except FileExistsError:
                n += 1
                target = path.with_name(f"{path.stem} ({n}){path.suffix}")
            except OSError:
                # File systems without hard links (some network shares): check, then rename.
                if target.exists():
                    n += 1
                    target = path.with_name(f"{path.stem} ({n}){path.suffix}")
                    continue
                os.replace(tmp, target)
                return target
    finally:
        if tmp.exists():
            tmp.unlink()


def set_aside(source: Path, problems: Path, note: str) -> Path:
    """Move a file that could not be processed into ``problems/`` with a note beside it.

    The file is moved, never deleted or changed; if a file of that name is already set aside, the
    new one gets a free name. The note (``<file>.txt``) is written first, so that a crash between
    the two steps leaves a note without its file, never a file without a note.
    """
    problems.mkdir(parents=True, exist_ok=True)
    target = problems / safe_name(source.name, limit=150)
    n = 1
    while target.exists() or target.with_name(target.name + ".txt").exists():
        n += 1
        target = problems / f"{Path(safe_name(source.name, 150)).stem} ({n}){source.suffix}"
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
