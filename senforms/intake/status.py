"""What the watcher tells people: ``outbox/senforms status.txt``, ``senforms status``, the day's
counts (kept in ``.senforms-watch.json`` so they survive a restart) and the log file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import logging.handlers
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import TYPE_CHECKING, Any

from senforms.config import Settings
from senforms.deliver import staging, write_atomic
from senforms.intake.claims import CLAIM_DIR, running_watchers
from senforms.intake.scan import IN_LIBREOFFICE, IN_WORD, READY, STILL_COPYING, waiting_now

if TYPE_CHECKING:
    from senforms.archive.store import Archive

STATUS_NAME = "senforms status.txt"
STATE_NAME = ".senforms-watch.json"
LOG_NAME = "senforms.log"
#: How many of the day's warnings the status keeps (the log keeps them all).
WARNINGS_KEPT = 20
#: How many waiting files the status names one by one.
WAITING_LISTED = 20

#: A whole file in the inbox whose very bytes the archive already holds.
ALREADY_FILED = "already filed"

# What staff can do about each reason a file waits.
_ADVICE = {
    IN_WORD: "close it in Word and senforms takes it; if Word is closed, delete the ~$ file beside it",
    IN_LIBREOFFICE: "close it in LibreOffice and senforms takes it; if LibreOffice is closed, delete the "
    ".~lock file beside it",
    STILL_COPYING: "senforms takes it once it is whole; if it stays incomplete it is set aside with a note",
    ALREADY_FILED: "this exact file is already on record; the watcher moves it to the processed folder "
    "and does not file it twice",
}


@dataclass
class Summary:
    processed: int = 0
    set_aside: int = 0

    @property
    def ok(self) -> bool:
        return self.set_aside == 0


@dataclass
class Today:
    """The day's counts and warnings, and what a running watcher is waiting on."""

    day: str = field(default_factory=lambda: date.today().isoformat())
    done: int = 0
    set_aside: int = 0
    warnings: list[str] = field(default_factory=list)
    #: (name inside the inbox, why it waits), from the watcher that wrote the state.
    waiting: list[tuple[str, str]] | None = None
    #: Set while the watcher backs off from an archive outage: what is wrong and when it tries again.
    outage: str | None = None
    retry_at: str | None = None
    #: The daily round: when it last ran (dd/mm/yyyy HH:MM), and, if it did not finish, why (a
    #: plain sentence) and when the watcher tries again (HH:MM:SS). Kept across days: a round
    #: that failed yesterday evening still matters this morning.
    round_ran: str | None = None
    round_problem: str | None = None
    round_retry_at: str | None = None

    def roll(self) -> None:
        today = date.today().isoformat()
        if today != self.day:
            self.day, self.done, self.set_aside, self.warnings = today, 0, 0, []

    def warn(self, text: str) -> None:
        self.roll()
        self.warnings = [*self.warnings, f"{datetime.now():%H:%M} {text}"][-WARNINGS_KEPT:]

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "done": self.done,
            "set_aside": self.set_aside,
            "warnings": self.warnings,
            "waiting": self.waiting,
            "outage": self.outage,
            "retry_at": self.retry_at,
            "round_ran": self.round_ran,
            "round_problem": self.round_problem,
            "round_retry_at": self.round_retry_at,
        }

    @classmethod
    def load(cls, home: Path) -> Today:
        today = cls()
        try:
            data = json.loads((home / STATE_NAME).read_text(encoding="utf-8"))
            if data.get("day") == today.day:
                today.done, today.set_aside = int(data.get("done", 0)), int(data.get("set_aside", 0))
                today.warnings = [str(w) for w in data.get("warnings") or []][-WARNINGS_KEPT:]
            if data.get("waiting") is not None:
                today.waiting = [(str(n), str(w)) for n, w in data["waiting"]]
            today.outage, today.retry_at = data.get("outage"), data.get("retry_at")
            today.round_ran, today.round_problem = data.get("round_ran"), data.get("round_problem")
            today.round_retry_at = data.get("round_retry_at")
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no state file yet, or a damaged one: today's counts start from zero
        return today


def ref(path: Path) -> str:
    """How the log names a file: its type and a short fingerprint, never its name, because
    office staff often name files after the pupil. The UPN identifies the pupil instead."""
    try:
        with path.open("rb") as handle:
            digest = hashlib.sha256(handle.read(1024 * 1024)).hexdigest()[:10]
    except OSError:
        digest = hashlib.sha256(str(path).encode("utf-8", "replace")).hexdigest()[:10]
    return f"file {digest}{path.suffix.lower()[:6]}"


def add_log_file(settings: Settings) -> logging.Handler | None:
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


def count_claimed(settings: Settings) -> int:
    """Files a watcher has claimed and not yet finished."""
    claims = settings.inbox / CLAIM_DIR
    return sum(1 for p in claims.glob("*/*/*") if p.is_file()) if claims.is_dir() else 0


def count_waiting(settings: Settings) -> int:
    """Files in the inbox (and claimed, not yet finished) that the watcher would take."""
    return len(waiting_now(settings)) + count_claimed(settings)


def count_problems(settings: Settings) -> int:
    """Files in the problems folder (each with its note beside it), however they got there."""
    try:
        names = [e.name for e in os.scandir(settings.problems) if e.is_file(follow_symlinks=False) or e.is_symlink()]
    except OSError:
        return 0
    present = set(names)
    # A note is NAME.txt beside NAME; a note alone (its file was removed) still counts once.
    return sum(1 for n in names if not (n.endswith(".txt") and n.removesuffix(".txt") in present))


def _archive_exists(url: str) -> bool:
    """False for an SQLite archive not created yet: opening it would create it."""
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()


@contextmanager
def _archive_to_ask(settings: Settings, archive: Archive | None) -> Iterator[Archive | None]:
    """The watcher's archive, or the home folder's opened for the while; None when it cannot be
    asked: it does not exist yet (a status must not create one) or it cannot be reached."""
    from senforms.archive.store import Archive
    from senforms.errors import SenformsError

    if archive is not None:
        yield archive
        return
    if not _archive_exists(settings.database_url):
        yield None
        return
    try:
        opened = Archive(settings.database_url)
    except SenformsError:
        yield None
        return
    try:
        yield opened
    finally:
        opened.close()


def received_on(day: date, archive: Archive | None) -> int | None:
    """How many forms the archive received on ``day`` (the school's local day), whoever
    processed them: the watcher or ``senforms process``. None when the archive cannot say. One
    count on the index of ``received_at`` (migration 0008_received_by_day)."""
    from sqlalchemy import func, select

    from senforms.archive import tables as t
    from senforms.errors import SenformsError

    if archive is None:
        return None
    # Stored in UTC (SQLite keeps it without its offset), so the local day's bounds are too.
    start = datetime.combine(day, clock.min).astimezone().astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), clock.min).astimezone().astimezone(UTC)
    query = select(func.count()).where(t.ReceivedForm.received_at >= start, t.ReceivedForm.received_at < end)
    try:
        with archive.reading() as session:
            return int(session.execute(query).scalar_one())
    except SenformsError:
        return None


def already_filed(settings: Settings, waiting: list[tuple[str, str]], archive: Archive | None) -> list[tuple[str, str]]:
    """``waiting`` with each whole file the archive already holds (the same bytes) marked
    ALREADY_FILED: ``senforms process`` files a form where it is, and only the watcher moves it
    out of the inbox. Unchanged when the archive cannot be asked."""
    from sqlalchemy import select

    from senforms.archive import tables as t
    from senforms.errors import SenformsError

    digests: dict[str, str] = {}
    for name, why in waiting:
        if why == READY:
            with contextlib.suppress(OSError):
                digests[name] = hashlib.sha256((settings.inbox / name).read_bytes()).hexdigest()
    if archive is None or not digests:
        return waiting
    query = select(t.ReceivedForm.content_hash).where(t.ReceivedForm.content_hash.in_(set(digests.values())))
    try:
        with archive.reading() as session:
            filed = set(session.execute(query).scalars())
    except SenformsError:
        return waiting
    return [(name, ALREADY_FILED if digests.get(name) in filed else why) for name, why in waiting]


def status_lines(
    settings: Settings, *, today: Today | None = None, running: bool | None = None, archive: Archive | None = None
) -> list[str]:
    """The status shown in ``outbox/senforms status.txt`` and by ``senforms status``.

    The watcher passes its own ``today`` (with what it waits on and why) and its archive;
    ``senforms status`` reads the watcher's state file and looks at the inbox itself.
    """
    with _archive_to_ask(settings, archive) as known:
        return _status_lines(settings, today, running, known)


def _status_lines(settings: Settings, today: Today | None, running: bool | None, archive: Archive | None) -> list[str]:
    if running is None:
        running = running_watchers(settings.inbox) > 0
    if today is None:
        today = Today.load(settings.home)
        if not running or today.waiting is None:
            waiting = already_filed(settings, waiting_now(settings), archive)
            today.waiting, today.outage, today.retry_at = waiting, None, None
    waiting = list(today.waiting or [])
    lines = [f"senforms, {datetime.now():%d/%m/%Y %H:%M:%S}"]
    if running:
        lines.append("The watcher is running.")
    else:
        lines.append(
            "The watcher is not running: forms dropped in the inbox wait until it is started (senforms watch)."
        )
    if today.outage:
        lines.append(
            f"The archive cannot be reached ({today.outage}). Forms stay in the inbox, nothing is lost; "
            f"the watcher tries again at {today.retry_at or 'once it is back'}."
        )
    lines += round_lines(today, running=running)
    lines.append(f"Waiting in the inbox: {len(waiting) + count_claimed(settings)}")
    for name, why in waiting[:WAITING_LISTED]:
        advice = _ADVICE.get(why)
        lines.append(f"  {name}: {why}" + (f" ({advice})" if advice else ""))
    if len(waiting) > WAITING_LISTED:
        lines.append(f"  and {len(waiting) - WAITING_LISTED} more")
    problems = count_problems(settings)
    # Forms handled by senforms process count too: the archive knows them all. The watcher's own
    # count stands in only when the archive cannot be asked (none yet, or out of reach).
    done = None if today.outage else received_on(settings.today(), archive)
    lines += [
        f"Done today: {today.done if done is None else done}",
        f"Set aside today: {today.set_aside}" + (" (see the problems folder)" if today.set_aside else ""),
        f"In the problems folder: {problems}" + (" (each has a note beside it saying what to do)" if problems else ""),
    ]
    if today.warnings:
        lines.append("Warnings today (details in senforms.log):")
        lines += [f"  {w}" for w in today.warnings]
    return lines


def round_lines(today: Today, *, running: bool) -> list[str]:
    """What the status says of the daily round (review records, the digest, annual reports):
    when it last ran and, if it did not finish, why and when it is tried again."""
    if today.round_ran is None:
        return []
    lines = [f"The daily round last ran at {today.round_ran}."]
    if today.round_problem:
        if not running:
            again = "It runs again when the watcher is started (senforms watch), or with senforms round."
        elif today.round_retry_at:
            again = f"The watcher tries again at {today.round_retry_at}."
        else:
            again = "The watcher tries again shortly."
        lines.append(f"It did not finish. {today.round_problem} {again}")
    return lines


class StatusFile:
    """Writes the watcher's state and ``outbox/senforms status.txt``: at most once a second
    during a burst, and once a minute when idle so staff can see from the time that it is alive."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: Kept open for "Done today" (``received_on``): opened on first use, again if the
        #: settings name another archive.
        self._archive: Archive | None = None
        self._written = 0.0
        self._last: Any = None
        #: A change not yet written (held back by the once-a-second limit).
        self.unwritten = False

    def due(self) -> float | None:
        """When a held-back change may be written (monotonic time), so the loop wakes for it."""
        return self._written + 1.0 if self.unwritten else None

    def write(self, today: Today, waiting: list[tuple[str, str]], *, running: bool, force: bool = False) -> None:
        today.roll()
        today.waiting = waiting
        now = time.monotonic()
        key = (
            tuple(waiting),
            today.done,
            today.set_aside,
            len(today.warnings),
            today.outage,
            today.round_ran,
            today.round_problem,
        )
        changed = key != self._last
        if not force and not (changed and now - self._written >= 1.0) and now - self._written < 60:
            self.unwritten = changed
            return
        self._last, self._written, self.unwritten = key, now, False
        try:
            state = json.dumps(today.to_json()).encode("utf-8")
            write_atomic(self.settings.home / STATE_NAME, state, overwrite=True)
            text = "\n".join(status_lines(self.settings, today=today, running=running, archive=self._archive_now()))
            outbox = self.settings.outbox
            write_atomic(outbox / STATUS_NAME, (text + "\n").encode("utf-8"), overwrite=True, stage=staging(outbox))
        except OSError as exc:
            logging.getLogger("senforms.intake").warning("Cannot write the status file: %s", exc)


    def _archive_now(self) -> Archive | None:
        """The archive to count today's forms in, if it exists and can be opened (else None:
        the watcher's own count stands in)."""
        from senforms.archive.store import Archive
        from senforms.errors import SenformsError

        url = self.settings.database_url
        if self._archive is not None and self._archive.url != url:
            self.close()
        if self._archive is None:
            if not _archive_exists(url):
                return None
            try:
                self._archive = Archive(url)
            except SenformsError:
                return None
        return self._archive

    def close(self) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None


def describe(settings: Settings, mode: str, reason: str, poll_seconds: float) -> list[str]:
    """What ``senforms watch`` says as it starts: where it watches, how, and where things go."""
    from senforms.office import MISSING_MESSAGE, office_available

    how = (
        f"using native file events, with a rescan every {poll_seconds:g} s as a safety net"
        if mode == "events"
        else f"polling every {poll_seconds:g} s: {reason}"
    )
    lines = [
        f"Watching {settings.inbox} and its subfolders, {how}.",
        f"Documents go to {settings.outbox}; files that cannot be processed go to {settings.problems}.",
        f"Log: {settings.home / LOG_NAME}",
    ]
    if settings.document_format == "pdf" and not office_available():
        lines.append(MISSING_MESSAGE)
    if unfilled := settings.unfilled():
        lines.append(
            "senforms.toml still has placeholders for: " + ", ".join(unfilled) + ". Letters will leave them out "
            "until they are filled in."
        )
    return lines
