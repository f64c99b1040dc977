"""Claims: a file is taken by an atomic rename into ``inbox/.senforms-claimed/OWNER/NNNNNN/``,
so no file is taken twice, even by two watchers; a file claimed by a watcher that was killed is
taken up again at the next start (the pipeline is idempotent).

Each watcher holds a lock on ``OWNER/.lock`` while it runs. The operating system drops the lock
when the holder dies, even by SIGKILL, which is how a crashed watcher's claims are found; where
the file system keeps no locks, the lock file's time (touched as a heartbeat) stands in for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from senforms.intake.scan import CLAIM_DIR

log = logging.getLogger("senforms.intake")

LOCK_NAME = ".lock"
#: Without locks, a claim folder whose heartbeat is older than this belongs to a dead watcher.
HEARTBEAT_STALE = 300.0
HEARTBEAT_EVERY = 30.0


def _try_lock(path: Path) -> IO[bytes] | bool | None:
    """Lock ``path`` for this process: the open handle if locked, None if another live process
    holds it, False if this file system does not do locks."""
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


def _safe_host() -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:40] or "host"


def alive(owner: Path) -> bool:
    """Whether the watcher that owns this claim folder is still running."""
    lock_path = owner / LOCK_NAME
    if not lock_path.exists():
        return False
    lock = _try_lock(lock_path)
    if lock is None:
        return True
    if lock is False:
        try:
            return time.time() - lock_path.stat().st_mtime < HEARTBEAT_STALE
        except OSError:
            return False
    lock.close()  # type: ignore[union-attr]
    return False


def running_watchers(inbox: Path) -> int:
    """How many watchers are running on this inbox, from their claim folders' locks."""
    try:
        owners = [d for d in (inbox / CLAIM_DIR).iterdir() if d.is_dir()]
    except OSError:
        return 0
    return sum(1 for owner in owners if alive(owner))


class Claims:
    """This watcher's claim folder: claiming, putting back, and adopting a dead watcher's claims."""

    def __init__(self, inbox: Path) -> None:
        self.root = inbox / CLAIM_DIR
        self.owner = f"{_safe_host()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.mine = self.root / self.owner
        self._seq = 0
        self._next_slot: Path | None = None
        self._lock: IO[bytes] | None = None
        self._heartbeat = 0.0

    def open(self) -> None:
        self.mine.mkdir(parents=True, exist_ok=True)
        self._next_slot = self._new_slot()
        lock = _try_lock(self.mine / LOCK_NAME)
        self._lock = None if isinstance(lock, bool) else lock
        if lock is False:
            log.warning("This file system does not support locks; claims are recovered by age instead.")

    def close(self) -> None:
        if self._next_slot is not None:
            with contextlib.suppress(OSError):
                self._next_slot.rmdir()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        # An empty claim folder is tidied away; one with files in it is for the next start.
        with contextlib.suppress(OSError):
            (self.mine / LOCK_NAME).unlink()
            self.mine.rmdir()

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

    def claim(self, path: Path) -> Path | None:
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

    def unclaim(self, claimed: Path, original: Path) -> bool:
        """Put a claimed file back where it was; False (and logged) if it cannot be."""
        try:
            if not original.exists():
                os.replace(claimed, original)
                claimed.parent.rmdir()
            return True
        except OSError as exc:
            from senforms.intake.status import ref

            # Not lost: claimed files are taken up again when the watcher next starts.
            log.warning("Could not put %s back in the inbox (%s); it is taken up at the next start.", ref(claimed), exc)
            return False

    def drop_slot(self, claimed: Path) -> None:
        if claimed.parent.parent.parent == self.root:
            with contextlib.suppress(OSError):
                claimed.parent.rmdir()

    def orphans(self) -> Iterator[Path]:
        """Claim files left by watchers that stopped unexpectedly, each claimed again by this one."""
        try:
            owners = [d for d in self.root.iterdir() if d.is_dir() and d != self.mine]
        except OSError:
            return
        for owner in sorted(owners):
            lock_path = owner / LOCK_NAME
            lock: IO[bytes] | bool | None = None
            if lock_path.exists():
                lock = _try_lock(lock_path)
                if lock is None:
                    continue  # another watcher is alive and working on these
                if lock is False:
                    with contextlib.suppress(OSError):
                        if time.time() - lock_path.stat().st_mtime < HEARTBEAT_STALE:
                            continue  # no locks here: trust a recent heartbeat instead
            adopted: list[Path] = []
            try:
                for slot in sorted(owner.iterdir()):
                    if not slot.is_dir():
                        continue
                    for file in slot.iterdir():
                        mine = self.claim(file)
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
            yield from adopted

    def beat(self) -> None:
        """Touch this watcher's lock file now and then: a heartbeat where locks are not kept."""
        now = time.monotonic()
        if now - self._heartbeat > HEARTBEAT_EVERY:
            self._heartbeat = now
            with contextlib.suppress(OSError):
                os.utime(self.mine / LOCK_NAME)
