"""The home folder and its ``senforms.toml``: the school's details and the few settings.

The home folder is the current directory unless ``--home`` or ``SENFORMS_HOME`` names another.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from senforms.errors import ConfigError

CONFIG_NAME = "senforms.toml"
PLACEHOLDER = "(fill in)"

DEFAULT_TOML = f'''# senforms settings for this school. Replace each "{PLACEHOLDER}" and save.
# Lines starting with # are notes and are ignored.

[school]
name = "{PLACEHOLDER}"
address = "{PLACEHOLDER}"
phone = "{PLACEHOLDER}"
email = "{PLACEHOLDER}"

# Who signs the letters to parents and carers.
[signatory]
name = "{PLACEHOLDER}"
role = "SENCO"

# The local SEND information, advice and support service (SENDIASS), named in letters to parents.
[sendiass]
name = "{PLACEHOLDER}"
phone = "{PLACEHOLDER}"
website = "{PLACEHOLDER}"
local_offer = "{PLACEHOLDER}"

[documents]
# "docx" for Word documents, or "pdf" to convert letters with LibreOffice.
format = "docx"

[watch]
# Seconds between checks of the inbox for shared network folders, which send no events.
poll_seconds = 5
# A file is taken only when its size has not changed for this many seconds.
settle_seconds = 0.5

[limits]
max_file_mb = 20
seconds_per_file = 60
memory_mb_per_file = 1024
'''


@dataclass(frozen=True)
class Settings:
    home: Path
    school: dict[str, str] = field(default_factory=dict)
    signatory: dict[str, str] = field(default_factory=dict)
    sendiass: dict[str, str] = field(default_factory=dict)
    document_format: str = "docx"
    poll_seconds: float = 5.0
    settle_seconds: float = 0.5
    max_file_mb: int = 20
    seconds_per_file: float = 60
    memory_mb_per_file: int = 1024
    archive_url: str | None = None

    @property
    def school_name(self) -> str:
        name = self.school.get("name", "")
        return "" if name == PLACEHOLDER else name

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def problems(self) -> Path:
        return self.home / "problems"

    @property
    def templates(self) -> Path:
        return self.home / "templates"

    @property
    def database_url(self) -> str:
        return self.archive_url or f"sqlite:///{(self.home / 'senforms.db').as_posix()}"

    def unfilled(self) -> list[str]:
        """Settings still showing the placeholder, for a plain reminder at start-up."""
        return [
            f"{section}.{key}"
            for section in ("school", "signatory", "sendiass")
            for key, value in getattr(self, section).items()
            if value == PLACEHOLDER
        ]


def home_folder(home: str | os.PathLike[str] | None = None) -> Path:
    return Path(home or os.environ.get("SENFORMS_HOME") or Path.cwd()).resolve()


def load_settings(home: str | os.PathLike[str] | None = None, *, archive_url: str | None = None) -> Settings:
    root = home_folder(home)
    path = root / CONFIG_NAME
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} cannot be read: {exc}") from exc
    documents = data.get("documents", {})
    watch = data.get("watch", {})
    limits = data.get("limits", {})
    try:
        settings = Settings(
            home=root,
            school={k: str(v) for k, v in data.get("school", {}).items()},
            signatory={k: str(v) for k, v in data.get("signatory", {}).items()},
            sendiass={k: str(v) for k, v in data.get("sendiass", {}).items()},
            document_format=str(documents.get("format", "docx")).lower(),
            poll_seconds=float(watch.get("poll_seconds", 5)),
            settle_seconds=float(watch.get("settle_seconds", 0.5)),
            max_file_mb=int(limits.get("max_file_mb", 20)),
            seconds_per_file=float(limits.get("seconds_per_file", 60)),
            memory_mb_per_file=int(limits.get("memory_mb_per_file", 1024)),
            archive_url=archive_url or os.environ.get("SENFORMS_ARCHIVE_URL") or data.get("archive", {}).get("url"),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"A setting in {path} has the wrong kind of value: {exc}") from exc
    if settings.document_format not in ("docx", "pdf"):
        raise ConfigError(f'[documents] format in {path} must be "docx" or "pdf", not {settings.document_format!r}.')
    return settings


def write_default_settings(home: Path) -> Path:
    """Write ``senforms.toml`` with placeholders, unless one is there already."""
    path = home / CONFIG_NAME
    if not path.exists():
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(DEFAULT_TOML, encoding="utf-8")
        os.replace(tmp, path)
    return path
