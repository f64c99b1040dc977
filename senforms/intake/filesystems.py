"""Where the inbox lives: a network share sends no native file events, so it must be polled;
and the outbox, problems folder and archive must not be inside the inbox."""

from __future__ import annotations

import sys
from pathlib import Path

from senforms.config import Settings
from senforms.errors import ConfigError

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
