"""senforms.toml is checked strictly: a misspelled section or setting is an error naming it and the
file, in plain English, and the file ``init`` writes loads with the documented defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from senforms.config import (
    CONFIG_NAME,
    DEFAULT_TOML,
    load_settings,
    settings_fingerprint,
    write_default_settings,
)
from senforms.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_archive_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENFORMS_ARCHIVE_URL", raising=False)


def write(home: Path, text: str) -> Path:
    path = home / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


def error(home: Path, text: str) -> str:
    write(home, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(home)
    message = caught.value.message
    # Written for office staff: no pydantic class names, links or "Input should be".
    for jargon in ("pydantic", "validation error", "Input should", "extra_forbidden", "https://"):
        assert jargon not in message
    return message


def test_the_default_file_loads_with_the_documented_defaults(tmp_path: Path) -> None:
    write_default_settings(tmp_path)
    settings = load_settings(tmp_path)
    assert settings.document_format == "docx"
    assert settings.poll_seconds == 2
    assert settings.give_up_seconds == 120
    assert settings.file_mode is None
    assert settings.review_notice_days == 14
    assert settings.annual_report == "" and settings.annual_report_day is None
    assert settings.retention_years_after_birth == 31
    assert settings.database_url.endswith("senforms.db")
    assert "school.name" in settings.unfilled()
    assert settings.school.get("name") == "(fill in)" and dict(settings.school.items())["email"] == "(fill in)"


def test_no_file_gives_the_same_defaults_as_the_default_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write_default_settings(tmp_path / "a")
    (tmp_path / "b").mkdir()
    written, missing = load_settings(tmp_path / "a"), load_settings(tmp_path / "b")
    assert {k: v for k, v in vars(written).items() if k != "home"} == {
        k: v for k, v in vars(missing).items() if k != "home"
    }


def test_a_misspelled_setting_is_named_with_its_section_and_file(tmp_path: Path) -> None:
    message = error(tmp_path, DEFAULT_TOML.replace('format = "docx"', 'formats = "pdf"'))
    assert "'formats'" in message and "[documents]" in message and str(tmp_path / CONFIG_NAME) in message
    assert "format, file_mode" in message  # what it could have been

    message = error(tmp_path, DEFAULT_TOML.replace("poll_seconds = 2", "poll_second = 60"))
    assert "'poll_second'" in message and "[watch]" in message


def test_a_misspelled_section_is_named(tmp_path: Path) -> None:
    message = error(tmp_path, DEFAULT_TOML.replace("[sendiass]", "[sendias]"))
    assert "[sendias]" in message and "does not know" in message and "[sendiass]" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('poll_seconds = "60"', "'poll_seconds' under [watch] must be a number, not '60'"),
        ("poll_seconds = 0", "'poll_seconds' under [watch] must be more than 0"),
        ("max_file_mb = 2.5", "'max_file_mb' under [limits] must be a whole number"),
        ('format = "odt"', "'format' under [documents] must be 'docx' or 'pdf', not 'odt'"),
        (
            'annual_report = "31 February"',
            "'annual_report' under [reports] must be a day and a month, like \"15 July\"",
        ),
        ('file_mode = "rw-r--r--"', "'file_mode' under [documents] must be an octal file mode"),
    ],
)
def test_a_wrong_kind_of_value_says_what_is_expected(tmp_path: Path, line: str, expected: str) -> None:
    key = line.split(" =")[0]
    text = "\n".join(line if row.startswith(f"{key} =") else row for row in DEFAULT_TOML.splitlines())
    assert line in text
    assert expected in error(tmp_path, text)


def test_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    message = error(tmp_path, DEFAULT_TOML.replace('role = "SENCO"', "role = SENCO"))
    assert "cannot be read" in message and "quotes" in message


def test_new_settings_are_read(tmp_path: Path) -> None:
    text = (
        DEFAULT_TOML.replace('file_mode = ""', 'file_mode = "0640"')
        .replace('annual_report = ""', 'annual_report = "15 july"')
        .replace("give_up_seconds = 120", "give_up_seconds = 30")
        .replace('format = "docx"', 'format = "PDF"')
    )
    write(tmp_path, text)
    settings = load_settings(tmp_path)
    assert settings.file_mode == 0o640
    assert settings.annual_report_day == (15, 7)
    assert settings.give_up_seconds == 30
    assert settings.document_format == "pdf"


def test_the_fingerprint_changes_when_the_file_is_edited(tmp_path: Path) -> None:
    assert settings_fingerprint(tmp_path) == (0, 0)
    path = write_default_settings(tmp_path)
    before = settings_fingerprint(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("poll_seconds = 2", "poll_seconds = 3"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # coarse clocks: make the edit visible
    assert settings_fingerprint(tmp_path) != before


def test_archive_addresses_senforms_uses_are_kept(tmp_path: Path) -> None:
    exact = "postgresql+psycopg://senforms@/senforms?host=/run/postgresql&port=5433"
    assert load_settings(tmp_path, archive_url=exact).database_url == exact
    assert load_settings(tmp_path, archive_url="postgresql://u@db/sen").database_url == "postgresql+psycopg://u@db/sen"
    assert load_settings(tmp_path).database_url == f"sqlite:///{(tmp_path / 'senforms.db').as_posix()}"


def test_today_can_be_moved_by_option_or_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import date

    from senforms.config import load_settings

    monkeypatch.delenv("SENFORMS_TODAY", raising=False)
    assert load_settings(tmp_path).today() == date.today()
    monkeypatch.setenv("SENFORMS_TODAY", "2027-03-01")
    assert load_settings(tmp_path).today() == date(2027, 3, 1)
    # The option wins over the environment.
    assert load_settings(tmp_path, today="14/02/2027").today() == date(2027, 2, 14)


def test_a_today_that_is_not_a_date_is_a_plain_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from senforms.cli import main

    assert main(["--home", str(tmp_path), "--today", "31/02/2026", "status"]) == 9
    err = capsys.readouterr().err
    assert "--today is '31/02/2026', which is not a date" in err and "Traceback" not in err
