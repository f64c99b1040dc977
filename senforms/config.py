"""The home folder and its ``senforms.toml``: the school's details and the few settings.

The home folder is the current directory unless ``--home`` or ``SENFORMS_HOME`` names another.

The file is checked by strict pydantic models, one per section, that refuse any section or key
they do not know: a misspelled ``poll_second = 60`` is an error that names it rather than a
setting silently ignored. What the rest of senforms uses is the flat, frozen ``Settings``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from senforms.errors import ConfigError

CONFIG_NAME = "senforms.toml"
PLACEHOLDER = "(fill in)"

DEFAULT_TOML = f'''# senforms settings for this school. Replace each "{PLACEHOLDER}" and save.
# Lines starting with # are notes and are ignored. A section or setting senforms does not know
# is an error that names it, so a misspelling is caught rather than silently ignored.

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
# Who may open the documents written to the outbox, as an octal file mode such as "0664"
# (owner and group may change them, everyone else may read). Empty: the folder's usual
# permissions (the process umask). The archive and senforms.log stay readable by their owner only.
file_mode = ""

[watch]
# Seconds between checks of the inbox for shared network folders, which send no events.
poll_seconds = 2
# A file is taken only when its size has not changed for this many seconds.
settle_seconds = 0.5
# A file that never opens as complete, and has not changed for this many seconds, is set aside
# with a note.
give_up_seconds = 120

[limits]
# Files larger than this are set aside unread.
max_file_mb = 20
# Reading one file may take at most this many seconds and this much memory.
seconds_per_file = 60
memory_mb_per_file = 1024

[reviews]
# How many days before a review is due the SENCO is reminded of it.
review_notice_days = 14

[reports]
# The day of the year the annual SEN report is written, like "15 July". Empty: never.
annual_report = ""

[retention]
# Records are kept until the pupil is this old (the usual advice: date of birth + 31 years).
years_after_birth = 31

[archive]
# The archive database. Empty: senforms.db in this folder (SQLite). For a shared archive,
# a PostgreSQL address such as "postgresql+psycopg://senforms@dbserver/senforms".
url = ""
'''


# --- the file's sections, checked strictly ------------------------------------------------------


class _Section(BaseModel):
    # strict: "60" (a string) is not silently taken for the number 60; extra: misspellings are errors.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SchoolSection(_Section):
    name: str = PLACEHOLDER
    address: str = PLACEHOLDER
    phone: str = PLACEHOLDER
    email: str = PLACEHOLDER


class SignatorySection(_Section):
    name: str = PLACEHOLDER
    role: str = "SENCO"


class SendiassSection(_Section):
    name: str = PLACEHOLDER
    phone: str = PLACEHOLDER
    website: str = PLACEHOLDER
    local_offer: str = PLACEHOLDER


class DocumentsSection(_Section):
    format: Literal["docx", "pdf"] = "docx"
    file_mode: str = ""

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("file_mode")
    @classmethod
    def _octal(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"0?o?[0-7]{3}", value):
            raise ValueError('must be an octal file mode such as "0664", or empty')
        return value


class WatchSection(_Section):
    poll_seconds: float = Field(default=2.0, gt=0)
    settle_seconds: float = Field(default=0.5, ge=0)
    give_up_seconds: float = Field(default=120.0, gt=0)


class LimitsSection(_Section):
    max_file_mb: int = Field(default=20, gt=0)
    seconds_per_file: float = Field(default=60.0, gt=0)
    memory_mb_per_file: int = Field(default=1024, gt=0)


class ReviewsSection(_Section):
    review_notice_days: int = Field(default=14, ge=0)


_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_DAYS_IN = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def day_and_month(text: str) -> tuple[int, int] | None:
    """``"15 July"`` as (15, 7); ``None`` for an empty string; ValueError for anything else."""
    text = " ".join(text.split())
    if not text:
        return None
    match = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)? ([A-Za-z]+)", text)
    month = next(
        (i for i, m in enumerate(_MONTHS, 1) if match and len(match[2]) >= 3 and m.startswith(match[2].lower())),
        None,
    )
    if match is None or month is None or not 1 <= int(match[1]) <= _DAYS_IN[month - 1]:
        raise ValueError(f'must be a day and a month, like "15 July", or empty; {text!r} is not')
    return int(match[1]), month


class ReportsSection(_Section):
    annual_report: str = ""

    @field_validator("annual_report")
    @classmethod
    def _date(cls, value: str) -> str:
        day_and_month(value)
        return " ".join(value.split())


class RetentionSection(_Section):
    years_after_birth: int = Field(default=31, ge=1)


class ArchiveSection(_Section):
    url: str = ""


class SettingsFile(_Section):
    """The whole of ``senforms.toml``."""

    school: SchoolSection = SchoolSection()
    signatory: SignatorySection = SignatorySection()
    sendiass: SendiassSection = SendiassSection()
    documents: DocumentsSection = DocumentsSection()
    watch: WatchSection = WatchSection()
    limits: LimitsSection = LimitsSection()
    reviews: ReviewsSection = ReviewsSection()
    reports: ReportsSection = ReportsSection()
    retention: RetentionSection = RetentionSection()
    archive: ArchiveSection = ArchiveSection()


# --- what the rest of senforms uses --------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    home: Path
    school: dict[str, str] = field(default_factory=dict)
    signatory: dict[str, str] = field(default_factory=dict)
    sendiass: dict[str, str] = field(default_factory=dict)
    document_format: str = "docx"
    # None: files are written with the process umask, as any program's files are.
    file_mode: int | None = None
    poll_seconds: float = 2.0
    settle_seconds: float = 0.5
    give_up_seconds: float = 120.0
    max_file_mb: int = 20
    seconds_per_file: float = 60
    memory_mb_per_file: int = 1024
    review_notice_days: int = 14
    annual_report: str = ""
    retention_years_after_birth: int = 31
    archive_url: str | None = None
    # ``--today`` or SENFORMS_TODAY: the date the reviews due, the digest, the annual report and
    # the retention list are worked out for, so a school can see what next week brings and tests
    # can move time. None: the real date, read afresh each time (a watcher runs for weeks).
    today_override: date | None = None

    def today(self) -> date:
        return self.today_override or date.today()

    @property
    def school_name(self) -> str:
        name = self.school.get("name", "")
        return "" if name == PLACEHOLDER else name

    @property
    def annual_report_day(self) -> tuple[int, int] | None:
        """(day, month) of the annual report, or None when it is off."""
        return day_and_month(self.annual_report)

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


def is_home(home: Path) -> bool:
    """Whether ``home`` has been set up as a senforms home (``init``, or the watcher's first run)."""
    return (home / CONFIG_NAME).is_file() or (home / "inbox").is_dir()


def settings_fingerprint(home: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """(modification time in ns, size) of ``senforms.toml``, (0, 0) when there is none: the
    watcher compares fingerprints to notice an edit without reading the file every time."""
    try:
        stat = (home_folder(home) / CONFIG_NAME).stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


_KIND_OF_VALUE = {
    "string_type": "text in quotes",
    "float_type": "a number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "model_type": "a section (a [heading] with settings under it)",
    "dict_type": "a section (a [heading] with settings under it)",
}


def _explain(error: Any, path: Path) -> str:
    """One pydantic error as a sentence a school's office can act on."""
    where = [str(part) for part in error["loc"]]
    kind = error["type"]
    if kind == "extra_forbidden":
        if len(where) == 1:
            known = ", ".join(f"[{name}]" for name in SettingsFile.model_fields)
            return f"{path} has a section [{where[0]}] that senforms does not know. The sections are: {known}."
        section = getattr(SettingsFile.model_fields.get(where[0]), "annotation", None)
        known = ", ".join(getattr(section, "model_fields", {}))
        return f"{path} has a setting {where[-1]!r} under [{where[0]}] that senforms does not know" + (
            f"; the settings there are: {known}." if known else "."
        )
    name = f"{where[-1]!r} under [{where[0]}]" if len(where) > 1 else f"[{where[0]}]"
    given = error.get("input")
    if kind in _KIND_OF_VALUE:
        return f"In {path}, {name} must be {_KIND_OF_VALUE[kind]}, not {given!r}."
    if kind == "literal_error":
        return f"In {path}, {name} must be {error['ctx']['expected']}, not {given!r}."
    if kind in ("greater_than", "greater_than_equal"):
        limit = error["ctx"].get("gt", error["ctx"].get("ge"))
        than = "more than" if kind == "greater_than" else "at least"
        return f"In {path}, {name} must be {than} {limit:g}, not {given!r}."
    message = str(error.get("msg", "is not right")).removeprefix("Value error, ")
    return f"In {path}, {name} {message}."


def parse_settings_file(text: str, path: Path) -> SettingsFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} cannot be read: {exc}. Text values need quotes around them, and each [section] "
            "and setting may appear only once."
        ) from exc
    try:
        return SettingsFile.model_validate(data)
    except ValidationError as exc:
        lines = [_explain(error, path) for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from None


def parse_today(given: str | None) -> date | None:
    """``--today`` if given, else SENFORMS_TODAY, as a date; a plain message if it is not one."""
    source, text = ("--today", given) if given else ("SENFORMS_TODAY", os.environ.get("SENFORMS_TODAY", ""))
    if not text.strip():
        return None
    for shape in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(text.strip(), shape).date()
        except ValueError:
            pass
    raise ConfigError(
        f"{source} is {text.strip()!r}, which is not a date senforms can read.",
        advice=f"Write the date like 30/11/2026 or 2026-11-30, or leave {source} out to use today's date.",
    )


def load_settings(
    home: str | os.PathLike[str] | None = None, *, archive_url: str | None = None, today: str | None = None
) -> Settings:
    root = home_folder(home)
    path = root / CONFIG_NAME
    parsed = SettingsFile()
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not saved as UTF-8 text; save it again as UTF-8.") from exc
        except OSError as exc:
            raise ConfigError(f"{path} cannot be opened: {exc.strerror or exc}.") from exc
        parsed = parse_settings_file(text, path)
    mode = parsed.documents.file_mode
    return Settings(
        home=root,
        school=parsed.school.model_dump(),
        signatory=parsed.signatory.model_dump(),
        sendiass=parsed.sendiass.model_dump(),
        document_format=parsed.documents.format,
        file_mode=int(mode.replace("o", ""), 8) if mode else None,
        poll_seconds=parsed.watch.poll_seconds,
        settle_seconds=parsed.watch.settle_seconds,
        give_up_seconds=parsed.watch.give_up_seconds,
        max_file_mb=parsed.limits.max_file_mb,
        seconds_per_file=parsed.limits.seconds_per_file,
        memory_mb_per_file=parsed.limits.memory_mb_per_file,
        review_notice_days=parsed.reviews.review_notice_days,
        annual_report=parsed.reports.annual_report,
        retention_years_after_birth=parsed.retention.years_after_birth,
        archive_url=_archive_url(root, path, archive_url, parsed.archive.url),
        today_override=parse_today(today),
    )


def _archive_url(home: Path, path: Path, given: str | None, configured: str) -> str | None:
    """The archive's address, checked now so that a mistyped one is a plain message rather than a
    database library's error. ``postgresql://`` is taken to mean the psycopg driver."""
    candidates = (
        (given, "--archive"),
        (os.environ.get("SENFORMS_ARCHIVE_URL"), "SENFORMS_ARCHIVE_URL"),
        (configured, f"url under [archive] in {path}"),
    )
    url, source = next(((u, s) for u, s in candidates if u), ("", ""))
    if not url:
        return None
    advice = {
        "--archive": "Give --archive an address like those above, or leave it out to use senforms.db in the home folder.",
        "SENFORMS_ARCHIVE_URL": "Correct SENFORMS_ARCHIVE_URL, or remove it to use senforms.db in the home folder.",
    }.get(source)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    usage = (
        f"senforms keeps its archive in SQLite (sqlite:///{(home / 'senforms.db').as_posix()}) or PostgreSQL "
        "(postgresql://user@server/database)"
    )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"The archive address {url!r} (from {source}) is not a database address. {usage}.", advice=advice
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite":
        return url
    if backend != "postgresql":
        raise ConfigError(
            f"The archive address {url!r} (from {source}) is for a {backend} database. {usage}.", advice=advice
        )
    given_driver = "+" in parsed.drivername
    if not given_driver:
        parsed = parsed.set(drivername="postgresql+psycopg")
        driver = "psycopg"
    if driver != "psycopg":
        raise ConfigError(
            f"The archive address {url!r} (from {source}) names the driver {driver!r}, which senforms does not "
            f"use. {usage}; postgresql+psycopg:// also works.",
            advice=advice,
        )
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            "The archive is in PostgreSQL, but the PostgreSQL driver is not installed. "
            "Install it with: pip install 'senforms[postgres]'."
        )
    # An address that names its driver is used exactly as written.
    return url if given_driver else parsed.render_as_string(hide_password=False)


def write_default_settings(home: Path) -> Path:
    """Write ``senforms.toml`` with placeholders, unless one is there already."""
    path = home / CONFIG_NAME
    if not path.exists():
        tmp = path.with_suffix(".toml.tmp")
        tmp.write_text(DEFAULT_TOML, encoding="utf-8")
        os.replace(tmp, path)
    return path
