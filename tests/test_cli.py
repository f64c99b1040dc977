"""The command line as office staff meet it: a plain message and its exit code for every mistake,
never a traceback; no new empty archive in a folder that is not a home; a warning when the
school's details are still placeholders; documents in the outbox others can open."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from senforms import cli
from senforms.errors import ExitCode
from tests.pipeline_helpers import drop, filled, pupil_upn, values


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def blank_with(
    capsys: pytest.CaptureFixture[str], home: Path, kind: str, data: dict[str, Any] | str
) -> tuple[int, str, str]:
    """``senforms blank KIND -o p.docx --data known.json``, with ``data`` (a dict as JSON, or the
    file's text as it is) in known.json."""
    path = home / "known.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return run(capsys, "--home", str(home), "blank", kind, "-o", str(home / "p.docx"), "--data", str(path))


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_process_outside_a_home_says_so_and_starts_no_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SENFORMS_HOME", raising=False)
    form = drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion")))
    code, _, err = run(capsys, "process", str(form))
    assert code == ExitCode.config_error
    assert f"{tmp_path} is not a senforms home folder" in err
    assert "--home" in err and "senforms init" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["early.docx"]  # no archive, no outbox, no log

    code, _, err = run(capsys, "status")
    assert code == ExitCode.config_error and "not a senforms home folder" in err


def test_process_warns_about_placeholders_and_names_them(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    form = drop(home, "early.docx", filled("early-discussion", values("early-discussion")))
    code, out, err = run(capsys, "--home", str(home), "process", str(form))
    assert code == ExitCode.ok, err
    assert 'still has "(fill in)" for school.address' in err and "signatory.name" in err
    assert "school.name" not in err  # the fixture filled that one in
    assert "early.docx: processed" in out and "documents, and the SEND register updated)" in out


def test_a_mistyped_file_name_is_a_plain_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--home", str(home), "process", str(home / "erly.docx"))
    assert code == ExitCode.unreadable_file
    assert "erly.docx: cannot be found. Check the name and the folder" in err
    assert not (home / "problems").exists() or not any((home / "problems").iterdir())  # no note for nothing

    code, _, err = run(capsys, "--home", str(home), "extract", str(home / "erly.docx"))
    assert code == ExitCode.bad_args and "cannot be opened" in err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@db/school", "is for a mysql database"),
        ("garbage", "is not a database address"),
        ("postgresql+psycopg2://u@h/db", "names the driver 'psycopg2'"),
    ],
)
def test_an_unsupported_archive_address_is_a_plain_message(
    home: Path, capsys: pytest.CaptureFixture[str], url: str, expected: str
) -> None:
    form = drop(home, "early.docx", filled("early-discussion", values("early-discussion")))
    code, _, err = run(capsys, "--home", str(home), "--archive", url, "process", str(form))
    assert code == ExitCode.config_error
    assert expected in err and "(from --archive)" in err and "SQLite" in err and "PostgreSQL" in err
    assert "leave it out to use senforms.db" in err
    assert form.exists()  # nothing was touched


def test_an_unsupported_archive_address_in_the_settings_names_the_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = home / "senforms.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('url = ""', 'url = "oracle://x/y"'), encoding="utf-8")
    code, _, err = run(capsys, "--home", str(home), "status")
    assert code == ExitCode.config_error
    assert f"url under [archive] in {config}" in err and "Open senforms.toml" in err


def test_a_control_character_in_data_is_named(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = values("early-discussion")
    data["pupil"]["legal_forename"] = "Mil\x01lie"
    code, _, err = blank_with(capsys, home, "support-plan", data)
    assert code == ExitCode.bad_args
    assert "U+0001 in pupil.legal_forename" in err
    assert not (home / "p.docx").exists()

    code, _, err = blank_with(capsys, home, "support-plan", "[1, 2]")
    assert code == ExitCode.bad_args and "one JSON object" in err


def test_an_unexpected_error_is_an_internal_error_with_the_traceback_in_the_log(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("a fault deep inside")

    monkeypatch.setitem(cli._COMMANDS, "status", broken)
    code, _, err = run(capsys, "--home", str(home), "status")
    assert code == ExitCode.internal == 1
    assert "internal error" in err and f"see the log: {home / 'senforms.log'}" in err
    assert "a fault deep inside" not in err
    log = (home / "senforms.log").read_text(encoding="utf-8")
    assert "Traceback" in log and "RuntimeError: a fault deep inside" in log
    if sys.platform != "win32":
        assert mode(home / "senforms.log") == 0o600


def test_extract_prints_answers_as_a_person_reads_them(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    form = drop(home, "early.docx", filled("early-discussion", values("early-discussion")))
    code, out, err = run(capsys, "--home", str(home), "extract", str(form))
    assert code == ExitCode.ok, err
    words = set(out.replace(":", " ").split())
    assert not words & {"None", "True", "False"}, out
    assert any(line.rstrip().endswith(("Yes", "No")) for line in out.splitlines())
    # a multi-line answer stays indented under its name, so the next name is still plain to see
    lines = out.splitlines()
    address = next(i for i, line in enumerate(lines) if line.strip().startswith("address: 14 Orchard Close"))
    assert lines[address + 1].startswith(" " * 15) and lines[address + 1].strip() == "Little Bramford"


def test_extract_on_a_form_still_being_filled_shows_what_it_says_so_far(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pre-filled review record, not yet completed: extract says what the form says so far, by
    the names printed on it, then what is still missing, and exits as for any form to correct."""
    from senforms.kinds import KINDS
    from senforms.wordform import make_form

    review = values("review")
    partial = {"pupil": review["pupil"], "review_date": review["review_date"], "cycle": review["cycle"]}
    form = drop(home, "review (pre-filled).docx", make_form(KINDS["review"], school="Oakfield", values=partial))
    code, out, err = run(capsys, "--home", str(home), "extract", str(form))
    assert code == ExitCode.invalid_form
    assert out.startswith("The SEN support review record says so far:")
    assert f"  UPN: {review['pupil']['upn']}" in out and "  Legal surname: Hart" in out
    assert "pupil.upn" not in out  # the names on the form, not senforms' own
    assert "Decision: this must be filled in" in err


def test_watch_once_does_not_say_it_is_watching(
    home: Path, capsys: pytest.CaptureFixture[str], umask_022: None
) -> None:
    assert run(capsys, "--home", str(home), "init")[0] == ExitCode.ok
    code, out, _ = run(capsys, "--home", str(home), "watch", "--once")
    assert code == ExitCode.ok
    assert "Watching" not in out and "then stopping" in out
    assert "Press Ctrl-C" not in out
    if sys.platform != "win32":
        assert mode(home / "senforms.log") == 0o600  # it names files and UPNs: owner only


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_outbox_documents_follow_the_umask_and_the_archive_stays_private(
    home: Path, capsys: pytest.CaptureFixture[str], umask_022: None
) -> None:
    form = drop(home, "early.docx", filled("early-discussion", values("early-discussion")))
    code, _, err = run(capsys, "--home", str(home), "process", str(form))
    assert code == ExitCode.ok, err
    documents = [p for p in (home / "outbox").rglob("*") if p.is_file()]
    assert len(documents) >= 3
    assert {p.name: oct(mode(p)) for p in documents} == {p.name: oct(0o644) for p in documents}
    assert mode(home / "senforms.db") == 0o600

    bad = drop(home, "bad.docx", b"not a form at all")
    run(capsys, "--home", str(home), "process", str(bad))
    notes = list((home / "problems").glob("*.txt"))
    assert notes and all(mode(p) == 0o644 for p in notes)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_file_mode_in_the_settings_overrides_the_umask(
    home: Path, capsys: pytest.CaptureFixture[str], umask_022: None
) -> None:
    config = home / "senforms.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('file_mode = ""', 'file_mode = "0664"'), encoding="utf-8"
    )
    form = drop(home, "early.docx", filled("early-discussion", values("early-discussion")))
    try:
        code, _, err = run(capsys, "--home", str(home), "process", str(form))
    finally:
        from senforms import deliver

        deliver.DEFAULT_FILE_MODE = None
    assert code == ExitCode.ok, err
    documents = [p for p in (home / "outbox").rglob("*") if p.is_file()]
    assert documents and all(mode(p) == 0o664 for p in documents)
    assert mode(home / "senforms.db") == 0o600


def test_messages_agree_in_number_and_article() -> None:
    from senforms.errors import article, count

    assert count(1, "second") == "1 second" and count(1.0, "second") == "1 second"
    assert count(2, "second") == "2 seconds" and count(0.5, "second") == "0.5 seconds"
    assert article("Early discussion note PDF") == "an Early discussion note PDF"
    assert article("SEN support plan") == "a SEN support plan" and article("EHC plan") == "an EHC plan"
    assert article("UPN") == "a UPN" and article("Review record") == "a Review record"
    assert article("one-page profile") == "a one-page profile" and article("hour") == "an hour"


def test_process_counts_what_the_form_made_and_names_the_register_apart(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SEND register (CSV and XLSX) is the school's one living file, not two of the form's
    documents: office staff count the letters and forms made for the form they dropped in."""
    early = drop(home, "early.docx", filled("early-discussion", values("early-discussion")))
    code, out, err = run(capsys, "--home", str(home), "process", str(early))
    assert code == ExitCode.ok, err
    files = [p for p in (home / "outbox").rglob("*") if p.is_file()]
    assert sorted(p.name for p in files if p.stem == "SEND register") == ["SEND register.csv", "SEND register.xlsx"]
    made = [p for p in files if p.suffix == ".docx"]  # the letters and the pre-filled plan
    assert len(made) == 3
    upn = values("early-discussion")["pupil"]["upn"]
    assert f"early.docx: processed (early-discussion, UPN {upn}, 3 documents, and the SEND register updated)" in out

    # The same form again makes nothing: said in words, not "0 documents".
    code, out, err = run(capsys, "--home", str(home), "process", str(early))
    assert code == ExitCode.ok, err
    assert f"early.docx: already processed (early-discussion, UPN {upn}, no documents)" in out


def test_status_counts_forms_done_by_senforms_process_from_the_archive(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """"Done today" is what the archive received today, whoever processed it, as of --today."""
    from datetime import date, timedelta

    run(capsys, "--home", str(home), "status")
    assert not (home / "senforms.db").exists()  # asking the status never creates an archive

    early = drop(home, "early.docx", filled("early-discussion", values("early-discussion")))
    assert run(capsys, "--home", str(home), "process", str(early))[0] == ExitCode.ok
    code, out, _ = run(capsys, "--home", str(home), "status")
    assert code == ExitCode.ok and "Done today: 1" in out.splitlines()

    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    code, out, _ = run(capsys, "--home", str(home), "--today", tomorrow, "status")
    assert code == ExitCode.ok and "Done today: 0" in out.splitlines()


def test_status_says_a_form_senforms_process_filed_from_the_inbox_is_already_filed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``senforms process`` files a form where it is; only the watcher moves it out of the inbox.
    Until then the status says it is on record, not that it is next in line to be filed."""
    early = values("early-discussion")
    filed = drop(home / "inbox", "early.docx", filled("early-discussion", early))
    drop(home / "inbox", "plan.docx", filled("support-plan", values("support-plan", pupil=early["pupil"])))
    assert run(capsys, "--home", str(home), "process", str(filed))[0] == ExitCode.ok
    assert filed.exists()
    code, out, _ = run(capsys, "--home", str(home), "status")
    assert code == ExitCode.ok
    assert "Waiting in the inbox: 2" in out.splitlines()
    assert "  early.docx: already filed (this exact file is already on record;" in out
    assert "  plan.docx: next in line" in out.splitlines()


def test_a_blank_form_for_a_pupil_says_what_filing_it_would_do_on_or_off_sen_support(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan for a pupil whose early discussion decided to monitor starts SEN support, and sends
    the parents the formal notification; an early discussion note for a pupil on SEN support is
    set aside. The office is told so when it prints the form."""
    monitored = values("early-discussion", decision="monitor")
    decided = values(
        "early-discussion",
        pupil={"upn": pupil_upn(77), "legal_surname": "Okoro", "legal_forename": "Ada", "date_of_birth": "2016-05-01"},
    )
    for name, data in (("monitored.docx", monitored), ("decided.docx", decided)):
        assert run(capsys, "--home", str(home), "process", str(drop(home, name, filled("early-discussion", data))))[0] == 0
    note = "Note: the archive does not have this pupil on SEN support now."
    for data, expected in ((monitored, True), (decided, False)):
        upn, out_file = data["pupil"]["upn"], home / f"plan {data['pupil']['upn']}.docx"
        code, out, err = run(capsys, "--home", str(home), "blank", "support-plan", "--upn", upn, "-o", str(out_file))
        assert code == ExitCode.ok, err
        assert (note in out) is expected
        assert ("formal notification of SEN support" in out) is expected
    # A review record is no plan: nothing to say.
    code, out, _ = run(
        capsys, "--home", str(home), "blank", "review", "--upn", monitored["pupil"]["upn"], "-o", str(home / "r.docx")
    )
    assert code == ExitCode.ok and note not in out
    # An early discussion note for a pupil on SEN support would be set aside: said before it is printed.
    for data, expected in ((monitored, False), (decided, True)):
        upn, out_file = data["pupil"]["upn"], home / f"early {data['pupil']['upn']}.docx"
        code, out, _ = run(capsys, "--home", str(home), "blank", "early-discussion", "--upn", upn, "-o", str(out_file))
        assert code == ExitCode.ok
        assert ("An early discussion note for them would be set aside" in out) is expected


def test_a_preferred_contact_in_data_that_the_form_does_not_offer_names_the_choices(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = values("early-discussion")
    data["pupil"]["parents"][1]["preferred_contact"] = "text message"
    code, _, err = blank_with(capsys, home, "early-discussion", data)
    assert code == ExitCode.bad_args
    assert "gives a preferred contact the form does not offer: 'text message' for parent or carer 2." in err
    assert "What to do: Use one of Letter, E-mail or Phone" in err
    assert not (home / "p.docx").exists()

    # The form's own words are fine too, in any case: "E-mail" as the dropdown shows it.
    data["pupil"]["parents"][1]["preferred_contact"] = "e-mail"
    code, _, err = blank_with(capsys, home, "early-discussion", data)
    assert code == ExitCode.ok, err
