"""One form at a time in a separate process, so a file that makes a parser hang or eat memory
costs that file, not the watcher.

The worker process is persistent: it imports senforms and opens the archive once, then takes
files one by one over a pipe, so isolation costs a few milliseconds a file rather than a
process start. If a file takes longer than its time limit, or the worker dies, the watcher
kills it and starts another for the next file.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from senforms.config import Settings
from senforms.errors import ExitCode, SenformsError, UnreadableFileError
from senforms.read import forget_read_forms

log = logging.getLogger("senforms.intake")


class Processor(Protocol):
    """What the worker calls for each file: returns a small picklable summary, raises
    ``SenformsError`` for a problem with the file. ``close``, ``filed`` and ``order`` are
    optional (tests inject processors without them)."""

    def __call__(self, path: Path, name: str) -> dict[str, Any]: ...


ProcessorFactory = Callable[[Settings], Processor]


class PipelineProcessor:
    """The real work: ``senforms.pipeline.Pipeline.process_file``."""

    def __init__(self, settings: Settings) -> None:
        from senforms.pipeline import REGISTER_EVERY_S, Pipeline

        # The SEND register is written when the inbox goes quiet (``idle``) and at most every
        # REGISTER_EVERY_S seconds while forms keep coming, not once per form: at 50,000 pupils
        # a whole register costs seconds. It is written whole here, at start: a crash may have
        # left a version undelivered, or a row out of date that no version records (a plan's
        # review date, a meeting).
        self.pipeline = Pipeline(settings, register_every=REGISTER_EVERY_S)
        self.settings = settings
        with contextlib.suppress(SenformsError):
            self.pipeline.write_register(pending_only=False)
        self._finish_pending()

    def _finish_pending(self) -> None:
        """Letters of forms filed before a crash, a killed worker or a full outbox: written now,
        at start, rather than only when the same file happens to be dropped again. An outbox
        still out of reach is not a reason not to start; they are tried again next start."""
        try:
            for done in self.pipeline.finish_pending():
                log.info("Finished writing the documents of an earlier %s for UPN %s.", done.kind, done.upn)
        except SenformsError as exc:
            log.warning("Documents of earlier forms are still waiting for the outbox: %s", exc.message)

    def __call__(self, path: Path, name: str) -> dict[str, Any]:
        return _summary(self.pipeline.process_file(path, name=name))

    def filed(self, path: Path) -> dict[str, Any] | None:
        """The summary of ``path`` if the archive already has it (its documents finished), else
        None: asked after a worker died or ran out of time, so that a form it had filed is never
        set aside as if it had failed (issue 9)."""
        done = self.pipeline.filed_already(path)
        return None if done is None else _summary(done)

    def order(self, paths: list[Path]) -> list[Path]:
        """``paths`` in the cycle's order (early discussions before plans before reviews), so
        that a pupil's forms dropped together are filed in the order they were written."""
        from senforms.pipeline import cycle_order

        return sorted(paths, key=lambda p: cycle_order(p, self.settings))

    def idle(self) -> bool:
        """No file for a moment: bring the outbox's register and list of letters up to date, and
        let go of the forms kept from the batch's readings (children's data held no longer than
        the batch needs it). Returns whether something is still behind (the list open in Excel,
        the share away), for the worker to try again while the inbox stays quiet."""
        forget_read_forms()
        if self.pipeline.behind:
            try:
                self.pipeline.catch_up()
            except SenformsError as exc:  # tried again in a while
                log.warning("The SEND register could not be written yet: %s", exc.message)
        return self.pipeline.behind

    def close(self) -> None:
        self.pipeline.close()


def _summary(done: Any) -> dict[str, Any]:
    from senforms.pipeline import made  # loaded already: the worker runs the pipeline

    return {
        "kind": str(done.kind),
        "upn": str(done.upn),
        "status": str(done.status),
        "documents": [str(p) for p in done.documents],
        # What the form produced as "senforms process" says it ("5 documents, and the SEND
        # register updated"): the register is the school's, not one of this form's documents.
        "made": made(done.documents),
        # What "senforms process" would print (letters left as Word files, and so on).
        "warnings": [str(w) for w in getattr(done, "warnings", [])],
    }


#: How long the worker waits without a file before calling its processor's ``idle``.
IDLE_S = 1.0
#: While ``idle`` says something is still behind, how often it is tried again if no file comes:
#: a list the office has open in Excel is brought up to date soon after Excel lets go of it, not
#: only when the next form arrives. A minute: each failed try is a line in the log.
RETRY_IDLE_S = 60.0


def next_request(
    conn: Connection,
    idle: Callable[[], bool | None] | None,
    *,
    quiet: float = IDLE_S,
    again: float = RETRY_IDLE_S,
) -> Any:
    """The watcher's next request. While none comes: the processor's ``idle`` once the pipe has
    been quiet for ``quiet`` seconds, then every ``again`` seconds for as long as it returns True
    (something still behind). Raises ``EOFError`` when the watcher has gone."""
    if idle is not None:
        wait = quiet
        while not conn.poll(wait):
            if not idle():
                break
            wait = again
    return conn.recv()


@dataclass
class Outcome:
    """What happened to one file in the worker."""

    status: str  # "ok", "problem", "timeout", "crash"
    result: dict[str, Any] = field(default_factory=dict)
    error: SenformsError | None = None
    detail: str = ""  # a traceback, for the log only


def error_info(exc: SenformsError) -> dict[str, Any]:
    return {"type": type(exc).__name__, "exit_code": int(exc.exit_code), "message": exc.message, "note": exc.note()}


class ReportedError(SenformsError):
    """A ``SenformsError`` raised in the worker, carried back as its message, advice and code
    (exception classes with their own constructor arguments do not all pickle)."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info["message"])
        self.type_name = str(info.get("type", "SenformsError"))
        code = info.get("exit_code", ExitCode.bad_args)
        self.exit_code = ExitCode(code) if code in ExitCode._value2member_map_ else ExitCode.bad_args
        self._note = str(info.get("note", info["message"]))

    def note(self) -> str:
        return self._note


def _limit_memory(extra_mb: int) -> None:
    """Cap the worker's address space at what it uses now plus ``extra_mb``.

    Counting from the current size (not from zero) keeps the limit meaning "memory for one file"
    whatever the interpreter and its libraries already reserve on this machine. ``resource``
    exists on POSIX only; on Windows the time limit is the only guard.
    """
    try:
        import resource
    except ImportError:
        return
    current = 0
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    current = int(line.split()[1]) * 1024
    except OSError:
        current = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    limit = current + extra_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    # Some systems (macOS) refuse RLIMIT_AS; the time limit still applies there.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker if the watcher dies (even by SIGKILL), so a
    restarted watcher never works on the same file as an orphaned worker. Elsewhere the worker
    finishes its file and stops when the pipe from the dead watcher closes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # no prctl here (not glibc, or not Linux): the worker stops when the pipe closes
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # the watcher died before the request
        os._exit(1)


def _worker_main(conn: Connection, settings: Settings, factory: ProcessorFactory, memory_mb: int) -> None:
    # Ctrl-C in a terminal (and systemd's SIGTERM to the whole group) reach this process too; the
    # watcher decides when to stop, so that the file in hand is finished, not cut off half-way.
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    _die_with_parent()
    try:
        processor = factory(settings)
    except SenformsError as exc:
        conn.send(("fatal", error_info(exc)))
        return
    except BaseException as exc:
        # Carried back as its class and message (the traceback goes to the log): the watcher says
        # what went wrong in one line, instead of failing on an exit code that does not exist.
        conn.send(("crash", {"type": type(exc).__name__, "message": str(exc), "detail": traceback.format_exc()}))
        return
    _limit_memory(memory_mb)
    conn.send(("ready", os.getpid()))
    idle: Callable[[], bool | None] | None = getattr(processor, "idle", None)
    try:
        while True:
            try:
                request = next_request(conn, idle)
            except EOFError:
                break
            if request is None:
                break
            what, *rest = request
            try:
                if what == "filed":
                    filed = getattr(processor, "filed", None)
                    conn.send(("ok", filed(Path(rest[0])) if filed is not None else None))
                    continue
                if what == "order":
                    order = getattr(processor, "order", None)
                    paths = [Path(p) for p in rest[0]]
                    conn.send(("ok", [str(p) for p in (order(paths) if order is not None else paths)]))
                    continue
                path, name = rest
                conn.send(("ok", processor(Path(path), name)))
            except SenformsError as exc:
                conn.send(("problem", error_info(exc)))
            except MemoryError:
                conn.send(("memory", ""))
            except Exception:
                conn.send(("crash", traceback.format_exc()))
    finally:
        close = getattr(processor, "close", None)
        if close is not None:
            close()


class WorkerError(SenformsError):
    """The worker could not start (the archive cannot be opened, a setting is wrong)."""


class Worker:
    """The watcher's side of the worker process: ``run(path, name)`` with a time limit."""

    def __init__(
        self,
        settings: Settings,
        factory: ProcessorFactory = PipelineProcessor,
        *,
        seconds: float | None = None,
        memory_mb: int | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.seconds = float(seconds if seconds is not None else settings.seconds_per_file)
        self.memory_mb = int(memory_mb if memory_mb is not None else settings.memory_mb_per_file)
        self.start_timeout = start_timeout
        # "spawn" everywhere: forking a process that runs watchdog threads is unsafe, and it is
        # what Windows does anyway, so both platforms behave the same.
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self.restarts = 0

    def start(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self.settings, self.factory, self.memory_mb),
            name="senforms-worker",
            daemon=True,
        )
        proc.start()
        child.close()
        if not parent.poll(self.start_timeout):
            proc.kill()
            proc.join(5)
            raise WorkerError(f"The senforms worker did not start within {self.start_timeout:.0f} seconds.")
        try:
            kind, payload = parent.recv()
        except EOFError:
            proc.join(5)
            raise WorkerError(f"The senforms worker stopped as it started (exit code {proc.exitcode}).") from None
        if kind == "fatal":
            proc.join(5)
            raise ReportedError(payload)
        if kind == "crash":
            proc.join(5)
            log.error("The senforms worker could not start:\n%s", payload.get("detail", ""))
            raise WorkerError(
                f"The senforms worker could not start: {payload['type']}: {payload['message']}",
                advice="The details are in senforms.log in the senforms home folder; give them to whoever "
                "looks after senforms.",
            )
        self._proc, self._conn = proc, parent

    def run(self, path: Path, name: str, *, tick: Callable[[], None] | None = None) -> Outcome:
        """Process one file; ``tick`` is called about once a second while waiting."""
        return self._ask(("process", str(path), name), self.seconds, tick)

    def filed(self, path: Path, *, tick: Callable[[], None] | None = None) -> dict[str, Any] | None:
        """The summary of ``path`` if the archive already has it; None if not, or if that cannot be
        found out (the worker fails again): the file is then set aside, as before."""
        outcome = self._ask(("filed", str(path)), self.seconds, tick)
        return outcome.result if outcome.status == "ok" and outcome.result else None

    def order(self, paths: list[Path], *, tick: Callable[[], None] | None = None) -> list[Path]:
        """``paths`` in the cycle's order, read in the worker (a hostile file hangs the worker,
        never the watcher); as given if the worker cannot say."""
        outcome = self._ask(("order", [str(p) for p in paths]), self.seconds, tick)
        if outcome.status == "ok" and isinstance(outcome.result, list) and len(outcome.result) == len(paths):
            return [Path(p) for p in outcome.result]
        return paths

    def _ask(self, request: tuple[Any, ...], seconds: float, tick: Callable[[], None] | None) -> Outcome:
        self.start()
        assert self._conn is not None
        try:
            self._conn.send(request)
        except (OSError, EOFError):
            self._discard()
            self.start()
            assert self._conn is not None
            self._conn.send(request)
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._discard()
                return Outcome("timeout")
            try:
                if self._conn.poll(min(left, 1.0)):
                    kind, payload = self._conn.recv()
                    break
            except (EOFError, OSError):
                code = self._proc.exitcode if self._proc is not None else None
                self._discard()
                return Outcome("crash", detail=f"the worker process ended (exit code {code})")
            if tick is not None:
                tick()
        if kind == "ok":
            return Outcome("ok", result=payload)
        if kind == "problem":
            return Outcome("problem", error=ReportedError(payload))
        if kind == "memory":
            # The interpreter may be in a poor state after running out of memory: start afresh.
            self._discard()
            return Outcome("memory")
        return Outcome("crash", detail=str(payload))

    def _discard(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self.restarts += 1
        if conn is not None:
            conn.close()
        if proc is not None:
            proc.kill()
            proc.join(10)

    def close(self) -> None:
        """Ask the worker to finish (closing the archive cleanly); kill it if it does not."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None or conn is None:
            return
        with contextlib.suppress(OSError, EOFError):
            conn.send(None)
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        conn.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


class InProcess:
    """The worker's contract without a subprocess, for debugging (no time or memory limit)."""

    def __init__(self, settings: Settings, factory: ProcessorFactory = PipelineProcessor) -> None:
        self.processor = factory(settings)
        self._idle: Callable[[], bool | None] = getattr(self.processor, "idle", lambda: None)

    def run(self, path: Path, name: str, *, tick: Callable[[], None] | None = None) -> Outcome:
        try:
            result = self.processor(path, name)
            # Without a worker there is no quiet moment to wait for: the register is written after each file.
            self._idle()
            return Outcome("ok", result=result)
        except SenformsError as exc:
            return Outcome("problem", error=exc)
        except Exception:
            return Outcome("crash", detail=traceback.format_exc())

    def filed(self, path: Path, *, tick: Callable[[], None] | None = None) -> dict[str, Any] | None:
        filed = getattr(self.processor, "filed", None)
        try:
            return filed(path) if filed is not None else None
        except Exception:
            return None

    def order(self, paths: list[Path], *, tick: Callable[[], None] | None = None) -> list[Path]:
        order = getattr(self.processor, "order", None)
        try:
            return order(paths) if order is not None else paths
        except Exception:
            return paths

    def close(self) -> None:
        close = getattr(self.processor, "close", None)
        if close is not None:
            close()


def in_process(settings: Settings, factory: ProcessorFactory = PipelineProcessor) -> Callable[..., Outcome]:
    """``InProcess(...).run``, kept for callers of the earlier function."""
    return InProcess(settings, factory).run


def limit_error(what: str, settings: Settings) -> UnreadableFileError:
    """The note for a file stopped by the worker's time ("timeout") or memory limit."""
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


if __name__ == "__main__":  # pragma: no cover - the worker is started through multiprocessing
    sys.exit("senforms.intake.worker is started by 'senforms watch', not run directly.")
