"""The watched folder: take each form dropped in the inbox once, whole, and never lose one.

Office staff drop forms into a shared folder, usually on a network share, and leave senforms
running unattended. So the watcher trusts nothing it is told:

- it scans the inbox at start-up and again every few seconds, because native file events
  (inotify) never fire on SMB/NFS shares and can be missed even locally; events, where they
  work, only make it look sooner (``filesystems`` decides which);
- a file is taken only when it opens as what it claims to be, no Word or LibreOffice lock file
  sits beside it, and it has settled or its writer closed it (``scan``);
- it claims a file by an atomic rename into ``inbox/.senforms-claimed/``, so no file is taken
  twice, even by two watchers, and a file claimed by a watcher that was killed is taken up again
  at the next start (``claims``);
- each file is processed in a worker process with a time and memory limit, so no single bad
  file can take the watcher down with it (``worker``); a file that cannot be processed is moved
  to ``problems/`` with a note saying why, in plain English;
- what it is doing and waiting for is in ``outbox/senforms status.txt`` (``status``).

The loop that runs these in order is ``watcher.Watcher``.
"""

from senforms.intake.claims import CLAIM_DIR, _try_lock, running_watchers
from senforms.intake.filesystems import (
    NETWORK_FILESYSTEMS,
    check_layout,
    linux_filesystem,
    network_filesystem,
    windows_network,
)
from senforms.intake.scan import ignored, incomplete, open_in, waiting_now
from senforms.intake.status import (
    LOG_NAME,
    STATE_NAME,
    STATUS_NAME,
    Summary,
    count_problems,
    count_waiting,
    status_lines,
)
from senforms.intake.watcher import Watcher

__all__ = [
    "CLAIM_DIR",
    "LOG_NAME",
    "NETWORK_FILESYSTEMS",
    "STATE_NAME",
    "STATUS_NAME",
    "Summary",
    "Watcher",
    "_try_lock",
    "check_layout",
    "count_problems",
    "count_waiting",
    "ignored",
    "incomplete",
    "linux_filesystem",
    "network_filesystem",
    "open_in",
    "running_watchers",
    "status_lines",
    "waiting_now",
    "windows_network",
]
