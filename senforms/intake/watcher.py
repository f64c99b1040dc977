"""The watcher loop: scan, claim, process in the worker, report; until stopped.

Shaped like paperless-ngx's consumer: a loop with a stop flag (and a timeout for tests) that
asks ``scan`` what is ready, ``claims`` to take it, the worker to process it, and ``status`` to
say so. Every decision about a file is in those modules; this one only runs them in order.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from senforms.config import Settings, load_settings, settings_fingerprint
from senforms.deliver import set_aside
from senforms.errors import ExitCode, SenformsError, count
from senforms.intake.claims import Claims
from senforms.intake.filesystems import check_layout, network_filesystem
from senforms.intake.scan import READY, Events, Scanner
from senforms.intake.status import StatusFile, Summary, Today, add_log_file, describe, ref
from senforms.intake.worker import (
    UNEXPECTED_NOTE,
    InProcess,
    Outcome,
    PipelineProcessor,
    ProcessorFactory,
    Worker,
    limit_error,
)

if TYPE_CHECKING:
    from senforms.archive.store import Archive

log = logging.getLogger("senforms.intake")

# Refused only because the pupil's earlier form had not been filed yet: in a batch, tried again
# after the other files (the earlier form may be among them), as ``senforms process`` does.
WAITING_ERRORS = frozenset({"NoSuchPupilError", "CycleError"})
LATER = "later"  # what _process returns for a form put back to be tried after the batch

#: The daily round runs at start, when the date changes, and at most this often otherwise (a review
#: record owed because a plan was filed today, a document the outbox could not take earlier).
ROUND_SECONDS = 300.0
#: After a failed round (archive unavailable, outbox full), wait this long before the next try.
ROUND_RETRY_SECONDS = 60.0


class Watcher:
    """Watches the inbox until ``stop()`` (or Ctrl-C, SIGTERM, or ``timeout`` seconds for tests).

    ``poll`` forces polling every ``poll`` seconds; otherwise native events are used where they
    work, with a rescan every ``settings.poll_seconds`` as a safety net. ``factory`` makes what
    processes a file inside the worker (the real pipeline by default; tests inject fakes).
    ``give_up_seconds``: how long a file that never opens whole may stand unchanged before it is
    set aside (``give_up_seconds`` in senforms.toml by default).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        poll: float | None = None,
        factory: ProcessorFactory = PipelineProcessor,
        isolate: bool = True,
        give_up_seconds: float | None = None,
        timeout: float | None = None,
        log_file: bool = True,
        daily_round: bool = True,
    ) -> None:
        check_layout(settings)
        self.settings, self.inbox, self.factory, self.isolate = settings, settings.inbox, factory, isolate
        self.timeout, self.log_file = timeout, log_file
        if give_up_seconds is None:
            give_up_seconds = float(getattr(settings, "give_up_seconds", 120.0))
        self.poll_seconds = float(poll if poll else settings.poll_seconds)
        network = network_filesystem(self.inbox)
        if poll:
            self.mode, self.reason = "polling", "as asked (--poll)"
        elif network:
            self.mode, self.reason = "polling", f"the inbox is on a network share ({network}), which sends no events"
        else:
            self.mode, self.reason = "events", "native file events, with a rescan as a safety net"
        self.scanner = Scanner(settings, events=self.mode == "events", give_up_seconds=give_up_seconds)
        self.claims = Claims(self.inbox)
        self.owner = self.claims.owner
        self._stop, self._wake = threading.Event(), threading.Event()
        self._worker: Worker | InProcess | None = None
        self._run_file: Callable[..., Outcome] | None = None
        self._observer: Any = None
        self._archive_pause = 0.0
        self._today = Today()
        self._status = StatusFile(settings)
        self._settings_stamp = settings_fingerprint(settings.home)
        self.summary = Summary()
        # The daily round (senforms.year.round), run from this loop: never in the way of a form.
        self.daily_round = daily_round
        self._round_day: date | None = None
        self._round_next = self._round_hold = 0.0  # monotonic times: next routine run, no try before
        self._round_archive: Archive | None = None

    def stop(self) -> None:
        """Ask the watcher to stop after the file in hand."""
        self._stop.set()
        self._wake.set()

    def describe(self) -> list[str]:
        return describe(self.settings, self.mode, self.reason, self.poll_seconds)

    # -- the loop --

    def run(self, *, once: bool = False) -> Summary:
        """Watch until stopped; with ``once``, process what is in the inbox now and return."""
        handler = add_log_file(self.settings) if self.log_file else None
        restore = stop_on_signals(self.stop)
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
        for folder in (self.inbox, self.settings.outbox, self.settings.problems):
            folder.mkdir(parents=True, exist_ok=True)
        self.claims.open()
        self._today = Today.load(self.settings.home)
        # A retry time left by a watcher that stopped means nothing now: this one runs the round soon.
        self._today.outage = self._today.retry_at = self._today.round_retry_at = None
        if self.isolate:
            worker = Worker(self.settings, self.factory)
            worker.start()
            self._worker = worker
        else:
            self._worker = InProcess(self.settings, self.factory)
        self._run_file = self._worker.run
        if self.mode == "events":
            try:
                from watchdog.observers import Observer

                observer = Observer()
                observer.schedule(Events(self._wake, self.scanner.closed).handler, str(self.inbox), recursive=True)
                observer.start()
                self._observer = observer
            except Exception as exc:  # inotify limits, unsupported platform: polling still works
                self.mode, self.reason = "polling", f"native events failed to start ({exc})"
                self.scanner.events = False
                log.warning("Native file events are unavailable (%s); polling every %g s.", exc, self.poll_seconds)
        log.info("Watcher started (%s, %s): %s", self.owner, self.mode, self.inbox)

    def _loop(self, once: bool) -> None:
        started = time.monotonic()
        for claimed in self.claims.orphans():  # what a killed watcher had claimed
            if self._stop.is_set():
                return
            self._process(claimed)
        last_scan = 0.0
        while not self._stop.is_set():
            if self.timeout is not None and time.monotonic() - started > self.timeout:
                break
            try:
                self._wake.clear()
                self._reload_settings()
                last_scan = now = time.monotonic()
                ready, bad = self.scanner.scan(now, once)
                for path, error, why in bad:
                    self._set_aside(path, error, why)
                if len(ready) > 1 and self._worker is not None:
                    ready = self._worker.order(ready, tick=self.claims.beat)
                later = [path for path in ready if not self._stop.is_set() and self._take(path, batch=len(ready) > 1)]
                for path in later:
                    if self._stop.is_set():
                        break
                    self._take(path, batch=False)
                self.claims.beat()
                self._write_status()
                # After the first scan's files, not before them: forms waiting in the inbox at
                # start come first, and the round follows within the same turn of the loop.
                # Forms found at start are often not ready on the first look (they must stand
                # still for settle_seconds), so the first round also waits while any are still
                # settling, for at most ROUND_RETRY_SECONDS: otherwise the week's digest is
                # written without the forms that were waiting for it.
                first_wait = self._round_day is None and time.monotonic() - started < ROUND_RETRY_SECONDS
                if not (first_wait and self.scanner.pending()):
                    self._run_round()
                if once and not self.scanner.pending():
                    break
                if ready:
                    continue  # more may have arrived while those were processed
            except Exception:
                # A watched folder is unattended: nothing here may end the loop but a stop.
                log.exception("Unexpected error in the watcher loop; carrying on.")
                self._stop.wait(1.0)
            wait = self.poll_seconds - (time.monotonic() - last_scan)
            for due in (self.scanner.next_due(), self._status.due()):
                if due is not None:
                    wait = min(wait, due - time.monotonic() + 0.01)
            if self.timeout is not None:
                wait = min(wait, self.timeout - (time.monotonic() - started))
            if wait > 0:
                self._wake.wait(wait)

    def _reload_settings(self) -> None:
        """A SENCO who edits senforms.toml (the school's details, the review notice, a limit)
        should not have to find whoever can restart the watcher: an edit is noticed on the next
        look at the inbox and used for the next file. A mistake in the edit keeps the settings
        from before and says so in the log and the status file; the archive's address is never
        changed under a running watcher."""
        stamp = settings_fingerprint(self.settings.home)
        if stamp == self._settings_stamp:
            return
        self._settings_stamp = stamp
        try:
            fresh = load_settings(self.settings.home, archive_url=self.settings.archive_url)
        except SenformsError as exc:
            log.error("senforms.toml was changed but cannot be used; the settings from before stay: %s", exc.message)
            self._today.warn(f"senforms.toml was changed but has a mistake, so it is not used yet: {exc.message}")
            return
        fresh = replace(fresh, archive_url=self.settings.archive_url, today_override=self.settings.today_override)
        if fresh == self.settings:
            return
        self.settings = self.scanner.settings = self._status.settings = fresh
        if isinstance(self._worker, Worker):
            self._worker.close()
            worker = Worker(fresh, self.factory)
            worker.start()
            self._worker = worker
        elif self._worker is not None:
            self._worker.close()
            self._worker = InProcess(fresh, self.factory)
        self._run_file = self._worker.run if self._worker is not None else None
        log.info("senforms.toml was changed: the new settings are used from the next file.")

    def _shutdown(self) -> None:
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
        if self._round_archive is not None:
            self._round_archive.close()
            self._round_archive = None
        self._write_status(force=True)
        self._status.close()
        self.claims.close()
        log.info("Watcher stopped: %d processed, %d set aside.", self.summary.processed, self.summary.set_aside)

    # -- the daily round --

    def _run_round(self) -> None:
        """The daily round, when the date has changed since the last one or ``ROUND_SECONDS``
        have passed; cheap otherwise. A failure (archive unavailable, outbox full) is logged and
        tried again later; it never stops the watcher and never touches the inbox."""
        if not self.daily_round or self._stop.is_set():
            return
        today, clock = self.settings.today(), time.monotonic()
        if (today == self._round_day and clock < self._round_next) or clock < self._round_hold:
            return
        from senforms.archive.store import Archive
        from senforms.year.round import run_round

        self._today.round_ran = f"{datetime.now():%d/%m/%Y %H:%M}"
        try:
            if self._round_archive is None:
                self._round_archive = Archive(self.settings.database_url)
            report = run_round(self.settings, archive=self._round_archive, today=today)
        except Exception as exc:
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            log.error("The daily round could not run (%s); trying again in %g s.", message, ROUND_RETRY_SECONDS)
            if self._round_archive is not None:
                with contextlib.suppress(Exception):
                    self._round_archive.close()
                self._round_archive = None
            self._round_hold = clock + ROUND_RETRY_SECONDS
            self._round_failed(f"It could not run: {message.rstrip('.')}. Nothing was sent.")
            return
        if report.issued:
            log.info("Daily round: issued %s.", ", ".join(report.issued))
        if report.waiting or report.failed:
            # Filed, not yet written (or a producer failed): try again soon, not tomorrow.
            self._round_hold = clock + ROUND_RETRY_SECONDS
            if report.waiting:
                why = (
                    f"Its documents are kept in the archive but could not be written to the outbox "
                    f"({report.waiting}). Check that the shared drive has space and that the outbox folder "
                    "can be written to; nothing is lost."
                )
            else:
                why = "Part of it failed, so some documents may be missing; the details are in senforms.log."
            self._round_failed(why)
        else:
            self._round_day, self._round_next, self._round_hold = today, clock + ROUND_SECONDS, 0.0
            self._today.round_problem = self._today.round_retry_at = None
            self._write_status(force=True, running=True)

    def _round_failed(self, why: str) -> None:
        """Say in the status file why the round did not finish and when it is tried again."""
        retry = datetime.now() + timedelta(seconds=ROUND_RETRY_SECONDS)
        self._today.round_problem = why
        self._today.round_retry_at = f"{retry:%H:%M:%S}"
        self._write_status(force=True, running=True)

    # -- one file --

    def _take(self, path: Path, *, batch: bool = False) -> bool:
        """Claim and process one ready file. Returns True for a form put back to be tried again
        after the rest of the batch (``batch``: other files came with it)."""
        seen = self.scanner.forget(path)
        claimed = self.claims.claim(path)
        if claimed is None:
            return False
        try:
            if claimed.is_symlink():
                from senforms.intake.scan import symlink_error

                self._set_aside(claimed, symlink_error(), "symlink")
                return False
            st = claimed.stat()
            if seen is not None and (st.st_size, st.st_mtime_ns) != (seen.size, seen.mtime):
                # It changed between the last look and the claim: put it back to settle again.
                self.claims.unclaim(claimed, path)
                return False
        except OSError:
            return False
        outage = self._process(claimed, batch=batch)
        if outage == LATER:
            self.claims.unclaim(claimed, path)
            return True
        if outage is None:
            if self._today.outage:
                log.info("The archive can be reached again.")
            self._archive_pause, self._today.outage, self._today.retry_at = 0.0, None, None
            return False
        # The archive could not be reached: not the file's fault, so it goes back where it was
        # and is tried again after a pause that grows while the archive stays away.
        self.claims.unclaim(claimed, path)
        self._archive_pause = min(60.0, max(2.0, self._archive_pause * 2))
        retry = datetime.now() + timedelta(seconds=self._archive_pause)
        self._today.outage, self._today.retry_at = outage, f"{retry:%H:%M:%S}"
        log.error(
            "The archive cannot be reached; the file stays in the inbox. Trying again in %g s.", self._archive_pause
        )
        if seen is not None:  # still known, so the status names it as waiting for the archive
            seen.why = READY
            self.scanner.seen[path] = seen
        self._write_status(force=True, running=True)
        self._stop.wait(self._archive_pause)
        return False

    def _process(self, claimed: Path, *, batch: bool = False) -> str | None:
        """Process a claimed file; returns what is wrong when the archive could not be reached,
        or ``LATER`` for a form to try again after the rest of its ``batch``."""
        assert self._run_file is not None
        try:
            outcome = self._run_file(claimed, claimed.name, tick=self.claims.beat)
        except SenformsError as exc:
            if exc.exit_code == ExitCode.archive_error:  # the worker restarted and found no archive
                return exc.message
            log.error("The worker could not be asked to process %s: %s", ref(claimed), exc.message)
            self._set_aside(claimed, None, "unexpected error")
            return None
        except Exception:
            log.exception("The worker could not be asked to process %s", ref(claimed))
            self._set_aside(claimed, None, "unexpected error")
            return None
        error = outcome.error
        if outcome.status == "problem" and error is not None and error.exit_code == ExitCode.archive_error:
            return error.message
        if outcome.status == "ok":
            result = outcome.result
            self._done(claimed)
            upn = result.get("upn", "?")
            log.info(
                "%s %s for UPN %s (%s): %s.",
                str(result.get("status", "processed")).capitalize(),
                result.get("kind", "form"),
                upn,
                ref(claimed),
                result.get("made") or count(len(result.get("documents", [])), "document"),
            )
            for warning in result.get("warnings", []):
                log.warning("UPN %s: %s", upn, warning)
                self._today.warn(f"UPN {upn}: {warning}")
        elif outcome.status == "problem" and error is not None:
            why = getattr(error, "type_name", type(error).__name__)
            if batch and why in WAITING_ERRORS:
                return LATER
            self._set_aside(claimed, error, why)
        elif self._filed_meanwhile(claimed, outcome):
            pass  # filed before the worker died: done, its letters finished by a fresh worker
        elif outcome.status in ("timeout", "memory"):
            log.warning("%s: over the %s limit; the worker was restarted.", ref(claimed), outcome.status)
            self._set_aside(claimed, limit_error(outcome.status, self.settings), outcome.status)
        else:
            log.error("Unexpected failure processing %s:\n%s", ref(claimed), outcome.detail)
            self._set_aside(claimed, None, "unexpected error")
        return None

    def _filed_meanwhile(self, claimed: Path, outcome: Outcome) -> bool:
        """After the worker died or ran out of time: whether it had filed the form first (the
        out-of-memory killer can strike while the letters are written). A filed form is done,
        its letters finished by a fresh worker; it is never set aside as a failure (issue 9)."""
        if self._worker is None:
            return False
        filed = self._worker.filed(claimed, tick=self.claims.beat)
        if not filed:
            return False
        log.warning(
            "%s: the worker stopped (%s) after filing the form for UPN %s; its documents are finished.",
            ref(claimed),
            outcome.status,
            filed.get("upn", "?"),
        )
        self._done(claimed)
        return True

    def _done(self, claimed: Path) -> None:
        # The pipeline keeps the original in the archive; the inbox copy can go.
        with contextlib.suppress(FileNotFoundError):
            claimed.unlink()
        self.claims.drop_slot(claimed)
        self.summary.processed += 1
        self._today.roll()
        self._today.done += 1

    def _set_aside(self, path: Path, error: SenformsError | None, why: str) -> None:
        note = error.note() if error is not None else UNEXPECTED_NOTE
        name = ref(path)
        try:
            set_aside(path, self.settings.problems, note, on=self.settings.today())
        except FileNotFoundError:
            return  # another watcher took it, or someone removed it
        except OSError as exc:
            log.error("Could not set aside %s (%s): %s", name, why, exc)
            return
        self.scanner.forget(path)
        self.claims.drop_slot(path)
        self.summary.set_aside += 1
        self._today.roll()
        self._today.set_aside += 1
        log.warning("Set aside %s: %s (moved to the problems folder with a note).", name, why)

    def _write_status(self, *, force: bool = False, running: bool | None = None) -> None:
        waiting = self.scanner.waiting()
        if self._today.outage:
            waiting = [(n, "waiting for the archive" if w == READY else w) for n, w in waiting]
        if running is None:
            running = not (self._stop.is_set() or force)
        self._status.write(self._today, waiting, running=running, force=force)


def stop_on_signals(stop: Callable[[], None]) -> Callable[[], None]:
    """Ctrl-C, SIGTERM (systemd) and SIGBREAK call ``stop`` (the file in hand is finished first);
    returns what puts the old handlers back. Only the main thread may set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    saved: dict[int, Any] = {}

    def handle(signum: int, _frame: Any) -> None:
        log.info("Stopping (signal %d) after the file in hand.", signum)
        stop()

    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signum = getattr(signal, name)
            saved[signum] = signal.signal(signum, handle)

    def restore() -> None:
        for signum, old in saved.items():
            signal.signal(signum, old)

    return restore
