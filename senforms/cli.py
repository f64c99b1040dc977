"""The ``senforms`` command line: parses arguments, calls the library, maps its exceptions to
exit codes and plain messages. No work is done here that a library function could do."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from senforms.errors import ExitCode, FormInvalidError, NotAHomeError, SenformsError, count

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return register


def _settings(args: argparse.Namespace, *, need_home: bool = False) -> Any:
    """The settings; with ``need_home``, refuse a folder that was never set up, rather than
    quietly starting a new, empty archive whose letters name no school."""
    from senforms.config import CONFIG_NAME, is_home, load_settings

    settings = load_settings(
        getattr(args, "home", None), archive_url=getattr(args, "archive", None), today=getattr(args, "today", None)
    )
    if need_home and not is_home(settings.home):
        raise NotAHomeError(
            f"{settings.home} is not a senforms home folder: it has no {CONFIG_NAME} and no inbox folder."
        )
    _use_file_mode(settings)
    return settings


def _use_file_mode(settings: Any) -> None:
    from senforms import deliver

    deliver.DEFAULT_FILE_MODE = settings.file_mode


def _warn_unfilled(settings: Any) -> None:
    """Before writing documents: say which school details they will be missing."""
    from senforms.config import CONFIG_NAME

    if not (settings.home / CONFIG_NAME).is_file():
        print(
            f"Warning: there is no {CONFIG_NAME} in {settings.home}, so documents will carry no school details "
            "(name the home folder with --home, or run 'senforms init' to make one).",
            file=sys.stderr,
        )
    elif unfilled := settings.unfilled():
        print(
            f'Warning: {settings.home / CONFIG_NAME} still has "(fill in)" for '
            + ", ".join(unfilled)
            + ". Documents leave these out until they are filled in.",
            file=sys.stderr,
        )


def _bad_text(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, character) for each character in ``value`` that a Word or PDF document cannot hold."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _bad_text(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _bad_text(item, f"{where}.{i}")
    elif isinstance(value, str):
        for char in value:
            code = ord(char)
            if (code < 0x20 and char not in "\t\n\r") or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
                yield where, f"U+{code:04X}"
                break


def _check_contacts(values: dict[str, Any], data_file: str) -> None:
    """Each parent's preferred contact in a values file is one of the form's choices (as
    'extract --json' prints it, or as the form shows it): otherwise the form would carry a value
    its dropdown does not have, and the filled form would be refused when it came back."""
    from senforms.kinds import ContactBy

    pupil = values.get("pupil")
    parents = pupil.get("parents") if isinstance(pupil, dict) else None
    if not isinstance(parents, list):
        return
    wrong = []
    for number, parent in enumerate(parents, start=1):
        given = parent.get("preferred_contact") if isinstance(parent, dict) else None
        if given is None or (isinstance(given, str) and not given.strip()):
            continue
        try:
            cast(Any, ContactBy)(str(given))  # by value or label, as validation reads the form
        except ValueError:
            wrong.append(f"'{given}' for parent or carer {number}")
    if wrong:
        allowed = [c.label for c in ContactBy]
        raise SenformsError(
            f"The values file {data_file} gives a preferred contact the form does not offer: " + "; ".join(wrong) + ".",
            advice=f"Use one of {', '.join(allowed[:-1])} or {allowed[-1]} in the values file (or leave it out), "
            "then run the command again.",
        )


@command("blank")
def _blank(args: argparse.Namespace) -> int:
    from senforms.forms import blank_form

    values = None
    if args.data:
        try:
            values = json.loads(Path(args.data).read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise SenformsError(f"The values file {args.data} cannot be opened: {exc.strerror or exc}.") from exc
        except UnicodeDecodeError as exc:
            raise SenformsError(f"The values file {args.data} is not UTF-8 text; save it again as UTF-8.") from exc
        except json.JSONDecodeError as exc:
            raise SenformsError(
                f"The values file {args.data} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from exc
        if not isinstance(values, dict):
            raise SenformsError(
                f"The values file {args.data} must hold one JSON object, in the shape 'senforms extract --json' prints."
            )
        bad = list(_bad_text(values))
        if bad:
            raise SenformsError(
                f"The values file {args.data} has an invisible control character that a document cannot hold: "
                + "; ".join(f"{char} in {where}" for where, char in bad)
                + ". Type those values again without it (it often comes from copying out of another program)."
            )
        _check_contacts(values, args.data)
    output = Path(args.output)
    if output.exists():
        # Often a form someone has filled in, named after the pupil as the README suggests.
        raise SenformsError(
            f"{output} already exists, and senforms never writes over a file.",
            advice="Give the new form another name, or move or delete that file first.",
        )
    settings = _settings(args)
    _warn_unfilled(settings)
    if args.upn:
        values = _with_pupil_from_archive(settings, args.upn, values or {}, args.data, kind=args.kind)
    data = blank_form(settings, args.kind, values=values, pdf=args.pdf or str(args.output).lower().endswith(".pdf"))
    from senforms.deliver import write_atomic

    write_atomic(output, data)
    print(f"Wrote {args.output}")
    return ExitCode.ok


def _with_pupil_from_archive(
    settings: Settings, upn: str, values: dict[str, Any], data_file: str | None, *, kind: str
) -> dict[str, Any]:
    """``values`` with the pupil section as the archive knows the pupil (``blank --upn``)."""
    from senforms.archive.record import open_status
    from senforms.archive.roll import form_pupil
    from senforms.archive.store import Archive
    from senforms.reports.record import BadDetailError, find_pupil_row
    from senforms.rules import ON_REGISTER
    from senforms.values import format_uk_date, parse_upn

    archive = Archive(settings.database_url)
    try:
        with archive.reading() as session:
            row = find_pupil_row(session, upn)
            pupil = form_pupil(row)
            left, left_to = row.left_on, row.left_to
            status = open_status(session, row.id)
    finally:
        archive.close()
    given = values.get("pupil")
    typed: dict[str, Any] = given if isinstance(given, dict) else {}
    differ = _other_child(typed, pupil)
    if differ:
        # The values file is about another child: its answers must not go out under this one.
        raise BadDetailError(
            f"The values file {data_file} is about another pupil than --upn {pupil['upn']}: "
            + "; ".join(differ)
            + ".",
            advice="Give one pupil: use a values file about this pupil (or with no pupil in it), or drop --upn.",
        )
    if pupil["upn"] != parse_upn(upn):
        print(f"UPN {upn} is this pupil's former UPN; the form has their UPN now, {pupil['upn']}.")
    if values:
        print(
            f"The answers from {data_file} are put in as they are: check that every one is about "
            f"{pupil['legal_forename']} {pupil['legal_surname']} before the form goes out."
        )
    if left is not None:
        print(
            f"Note: the archive says this pupil left the school on {format_uk_date(left)}"
            + (f" (to {left_to})" if left_to else "")
            + ". Check that the form is for the right child."
        )
    if kind == "early-discussion" and status is not None and status.provision in ON_REGISTER:
        print(
            "Note: the archive has this pupil on the SEN register already ("
            + ("an EHC plan" if status.provision == "E" else "SEN support")
            + "). An early discussion note for them would be set aside: use the note of a meeting with "
            "parents, or the review record."
        )
    if kind == "support-plan" and (status is None or status.provision not in ON_REGISTER):
        # The plan will be what starts SEN support (rules.formal_notification_with_plan).
        print(
            "Note: the archive does not have this pupil on SEN support now. When this plan is filed, "
            "senforms adds them to the SEND register and writes to their parents with the formal "
            "notification of SEN support that the law requires."
        )
    return {**values, "pupil": {**typed, **pupil}}


def _other_child(typed: dict[str, Any], pupil: dict[str, Any]) -> list[str]:
    """How a values file's pupil differs in who they are (UPN, legal name, date of birth) from
    the archive's pupil; empty when it names nobody or the same child."""
    from datetime import date

    from pydantic_core import PydanticCustomError

    from senforms.values import parse_uk_date, parse_upn, same_name

    differ = []
    if typed.get("upn"):
        try:
            same = parse_upn(typed["upn"]) == pupil["upn"]
        except PydanticCustomError:
            same = False
        if not same:
            differ.append(f"it has UPN {typed['upn']}")
    for key, what in (("legal_forename", "first name"), ("legal_surname", "surname")):
        if typed.get(key) and not same_name(str(typed[key]), str(pupil[key])):
            differ.append(f"its {what} is {typed[key]}, not {pupil[key]}")
    if typed.get("date_of_birth"):
        raw = str(typed["date_of_birth"])
        try:
            born: date | None = parse_uk_date(raw)  # as a form's date: 14/02/2016 or 2016-02-14
        except PydanticCustomError:
            born = None
        if born != pupil["date_of_birth"]:
            differ.append(f"its date of birth is {raw}")
    return differ


@command("extract")
def _extract(args: argparse.Namespace) -> int:
    from senforms.forms import read
    from senforms.layout import fields
    from senforms.validate import validate

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SenformsError(f"{path} cannot be opened: {exc.strerror or exc}") from exc
    raw = read(data, name=path.name, settings=_settings(args))
    try:
        model, warnings = validate(raw)
    except FormInvalidError:
        # A form still being filled in (a pre-filled plan or review, say): what it says so far,
        # then what is missing, rather than only what is missing.
        labels = fields(raw.kind)
        answered = {
            (labels[key].label if key in labels else key): "ticked" if value is True else str(value)
            for key, value in raw.values.items()
            if value not in ("", None, False)
        }
        if answered and not args.json:
            print(f"The {raw.kind.title} says so far:")
            for label, value in answered.items():
                print(f"  {label}: " + value.replace("\n", "\n    "))
            print()
        raise
    for warning in warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    if args.json:
        print(model.model_dump_json(indent=2))
    else:
        _print_model(model.model_dump(mode="json"))
    return ExitCode.ok


def _print_model(data: Any, indent: str = "") -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_model(value, indent + "  ")
        elif isinstance(value, list) and not value:
            print(f"{indent}{key}: (none)")
        elif isinstance(value, list) and not all(isinstance(item, dict) for item in value):
            print(f"{indent}{key}: {', '.join(_shown(item) for item in value)}")
        elif isinstance(value, list):
            print(f"{indent}{key}:")
            for i, item in enumerate(value, 1):
                print(f"{indent}  {i}.")
                _print_model(item, indent + "    ")
        else:
            # Lines after the first of an address or a paragraph stay under their heading.
            text = _shown(value).replace("\n", "\n" + indent + " " * (len(key) + 2))
            print(f"{indent}{key}: {text}".rstrip())


def _shown(value: Any) -> str:
    """A value as a person reads it: nothing for an empty answer, Yes or No for a tick box."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


@command("process")
def _process(args: argparse.Namespace) -> int:
    from senforms.pipeline import made, process_files

    settings = _settings(args, need_home=True)
    paths: list[Path] = []
    missing: list[Path] = []
    for name in args.files:
        path = Path(name)
        (paths if path.is_file() else missing).append(path)
    for path in missing:
        what = "is a folder, not a file" if path.is_dir() else "cannot be found"
        print(f"{path}: {what}. Check the name and the folder, then try again.", file=sys.stderr)
    if not paths:
        return int(ExitCode.unreadable_file)
    _warn_unfilled(settings)
    report = process_files(paths, settings, notify=lambda line: print(line, file=sys.stderr))
    for path, done in report.processed:
        print(f"{path.name}: {done.status} ({done.kind}, UPN {done.upn}, {made(done.documents)})")
        for warning in done.warnings:
            print(f"  Warning: {warning}")
    for path, target, error in report.set_aside:
        print(f"{path.name}: set aside in {target.parent} with a note.\n  {error.message}", file=sys.stderr)
    if missing:
        return int(ExitCode.some_files_failed)
    return int(report.exit_code)


@command("init")
def _init(args: argparse.Namespace) -> int:
    from senforms.home import init_home

    settings = _settings(args)
    for line in init_home(settings) or [f"{settings.home} is ready; nothing needed doing."]:
        print(line)
    return ExitCode.ok


def build_parser() -> argparse.ArgumentParser:
    from senforms.kinds import KINDS

    parser = argparse.ArgumentParser(prog="senforms", description="The paperwork of SEN support, as a pipeline.")
    parser.add_argument("--home", help="the home folder (default: SENFORMS_HOME or the current folder)")
    parser.add_argument(
        "--archive", help="archive database URL (default: SENFORMS_ARCHIVE_URL or SQLite in the home folder)"
    )
    parser.add_argument(
        "--today",
        metavar="DATE",
        help="work as if today were DATE, to see what a later day brings (default: SENFORMS_TODAY or today)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("blank", help="write a blank or pre-filled form")
    p.add_argument("kind", choices=sorted(KINDS), metavar="KIND", help=", ".join(KINDS))
    p.add_argument("-o", "--output", required=True, help="the .docx (or .pdf) file to write")
    p.add_argument("--data", help="a JSON file of known values, in the shape 'extract --json' prints")
    p.add_argument("--pdf", action="store_true", help="write a fillable PDF form instead of Word")
    p.add_argument(
        "--upn",
        help="fill in the pupil's details (UPN, names, date of birth, class, parents) as the archive "
        "has them, from the school roll or their last form",
    )

    p = sub.add_parser("extract", help="read a filled form and print what it says")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("process", help="process completed forms: file them and write the next documents")
    p.add_argument("files", nargs="+", metavar="FILE")

    sub.add_parser("init", help="set up the home folder: inbox, outbox, archive, senforms.toml, blank forms")

    p = sub.add_parser("watch", help="watch the inbox and process each form dropped in it")
    p.add_argument("--once", action="store_true", help="process what is in the inbox now, then stop")
    p.add_argument(
        "--poll",
        type=float,
        metavar="SECONDS",
        help="look for new files every SECONDS instead of using file events (network shares are polled anyway)",
    )
    p.add_argument(
        "--give-up",
        type=float,
        default=None,
        metavar="SECONDS",
        help="set aside a file that is still not complete after SECONDS without change "
        "(default: give_up_seconds in senforms.toml, 120)",
    )
    sub.add_parser("status", help="how many forms are waiting, done today and set aside today")
    sub.add_parser("check-templates", help="check that every letter template can be filled in")
    _pupil_arguments(sub)
    _reports_arguments(sub)
    _annual_report_arguments(sub)
    _export_arguments(sub)
    _retention_arguments(sub)
    _year_arguments(sub)
    _register_arguments(sub)
    _pupils_arguments(sub)
    return parser


# --- the watched folder -------------------------------------------------------------------------


@command("watch")
def _watch(args: argparse.Namespace) -> int:
    from senforms.config import CONFIG_NAME
    from senforms.intake import Watcher

    settings = _settings(args)
    if not (settings.home / CONFIG_NAME).exists() or not settings.inbox.is_dir():
        # The first run in an empty folder sets it up, so "senforms watch" is the one command needed.
        from senforms.config import load_settings
        from senforms.home import init_home

        for line in init_home(settings):
            print(line)
        settings = load_settings(settings.home, archive_url=getattr(args, "archive", None), today=args.today)
    if args.poll is not None and args.poll <= 0:
        raise SenformsError("--poll needs a number of seconds greater than 0, for example --poll 10.")
    give_up = settings.give_up_seconds if args.give_up is None else args.give_up
    watcher = Watcher(settings, poll=args.poll, give_up_seconds=give_up)
    for line in watcher.describe():
        if args.once and line.startswith("Watching "):
            line = f"Processing the files now in {settings.inbox}, then stopping."
        print(line)
    if not args.once:
        print("Press Ctrl-C to stop (the file in hand is finished first).")
    sys.stdout.flush()
    summary = watcher.run(once=args.once)
    print(f"Stopped: {summary.processed} processed, {summary.set_aside} set aside.")
    return int(ExitCode.ok if summary.ok or not args.once else ExitCode.some_files_failed)


@command("status")
def _status(args: argparse.Namespace) -> int:
    from senforms.intake import status_lines

    for line in status_lines(_settings(args, need_home=True)):
        print(line)
    return ExitCode.ok


# --- letter templates ----------------------------------------------------------------------------


if TYPE_CHECKING:
    from senforms.archive.roll import RollReport
    from senforms.config import Settings


@command("check-templates")
def _check_templates(args: argparse.Namespace) -> int:
    from senforms.documents import check_templates

    settings = _settings(args)
    problems = check_templates(settings)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        from senforms.errors import TemplateError

        print(
            "\nWhat to do: correct each template named above in Word and save it, or delete the school's "
            "copy to go back to the original; then run senforms check-templates again.",
            file=sys.stderr,
        )
        return int(TemplateError.exit_code)
    print("All letter templates can be filled in.")
    _print_reading_ages(settings)
    return ExitCode.ok


def _print_reading_ages(settings: Settings) -> None:
    """Each parent letter's reading age, so a school that edits a template sees it: a warning
    above 11, never an error (the letter still goes out)."""
    from senforms.documents import READING_AGE_LIMIT, reading_ages

    try:
        ages = reading_ages(settings)
    except LookupError:
        # textstat 0.7.13 fetches the CMU pronouncing dictionary through nltk on first use; offline
        # that fails, and a missing reading age must not make a school think its letters are broken.
        print("\nThe reading age of the letters could not be worked out on this computer.")
        return
    print("\nReading age of each letter to parents (aim for 11 or under):")
    for name, age in ages:
        warning = (
            "  <- harder than most parents find easy: use shorter sentences and everyday words"
            if age > READING_AGE_LIMIT
            else ""
        )
        print(f"  {name}.docx: {age:g}{warning}")


LOG_NAME = "senforms.log"


def _log_path(args: argparse.Namespace) -> Path:
    """senforms.log in the home folder; outside a home, a log in the temporary folder rather than
    a stray file in whatever folder the command was typed in."""
    from senforms.config import home_folder, is_home

    with contextlib.suppress(Exception):
        home = home_folder(getattr(args, "home", None))
        if is_home(home):
            return home / LOG_NAME
    return Path(tempfile.gettempdir()) / LOG_NAME


def _record_internal_error(args: argparse.Namespace) -> str:
    """Append the traceback to the log; return where it went, for the message."""
    from senforms.deliver import private_file

    path = _log_path(args)
    try:
        private_file(path)
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{datetime.now():%Y-%m-%d %H:%M:%S} ERROR internal error in 'senforms {args.command}'\n")
            log.write(traceback.format_exc())
    except OSError:
        return "the log could not be written"
    return str(path)


# --- a pupil's record, and correcting a pupil's details -----------------------------------------


class _PupilParser(argparse.ArgumentParser):
    """``senforms pupil UPN [options]`` shows or notes a pupil's record; ``senforms pupil fix UPN
    [options]`` corrects who they are. argparse cannot have both a free UPN and a "fix" action
    in one parser, so the first word decides which of two parsers reads the rest. No UPN can be
    the word "fix", so nothing is ambiguous."""

    fix_parser: argparse.ArgumentParser

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        args = list(sys.argv[1:] if args is None else args)
        if args[:1] == ["fix"]:
            namespace = namespace if namespace is not None else argparse.Namespace()
            namespace.pupil_command = "fix"
            return self.fix_parser.parse_known_args(args[1:], namespace)
        found, extra = super().parse_known_args(args, namespace)
        found.pupil_command = "show"
        return found, extra


def _pupil_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "pupil",
        help="show a pupil's whole record, note that they left or a legal hold; 'pupil fix' corrects their details",
        usage="senforms pupil UPN [--json] [--left DATE [--to SCHOOL] [--passed-on]] [--hold REASON | --release-hold]\n"
        "       senforms pupil fix UPN [--upn NEW_UPN] [--legal-forename NAME] [--legal-surname NAME] "
        "[--date-of-birth DATE]",
        description="Show the pupil's whole record in date order: forms received (and corrections), the SEND "
        "register, meetings, outcomes with every rating, provision, documents sent and to whom. With --left, "
        "--hold or --release-hold, note that on the record instead. 'senforms pupil fix UPN --help' tells of "
        "correcting a pupil's UPN, legal name or date of birth.",
    )
    p.__class__ = _PupilParser
    p.add_argument("upn", metavar="UPN", help="the pupil's UPN (or former UPN)")
    p.add_argument("--json", action="store_true", help="print the record as JSON for other programs")
    p.add_argument("--left", metavar="DATE", help="the date the pupil left the school, like 20/07/2026")
    p.add_argument("--to", metavar="SCHOOL", help="the school (or setting) the pupil moved to")
    p.add_argument(
        "--passed-on", action="store_true", help="the pupil's SEN file has been passed on to that school (Code 6.57)"
    )
    hold = p.add_mutually_exclusive_group()
    hold.add_argument("--hold", metavar="REASON", help="place a legal hold: the record must not be destroyed")
    hold.add_argument("--release-hold", action="store_true", help="release the legal hold")

    fix = argparse.ArgumentParser(
        prog="senforms pupil fix",
        description="Correct the archive's record of a pupil. Forms that disagreed with the old details "
        "and were set aside can then be dropped in again.",
    )
    fix.add_argument("upn", metavar="UPN", help="the pupil's UPN as the archive has it now")
    fix.add_argument(
        "--upn", dest="new_upn", metavar="NEW_UPN", help="the right UPN (the old one is kept as the former UPN)"
    )
    fix.add_argument("--legal-forename", metavar="NAME", help="the right legal first name")
    fix.add_argument("--legal-surname", metavar="NAME", help="the right legal surname")
    fix.add_argument("--date-of-birth", metavar="DATE", help="the right date of birth, like 14/02/2016")
    p.fix_parser = fix


@command("pupil")
def _pupil(args: argparse.Namespace) -> int:
    if args.pupil_command != "fix":
        return _pupil_record(args)
    from senforms.archive.pupils import fix_in_home

    fixed = fix_in_home(
        _settings(args),
        args.upn,
        new_upn=args.new_upn,
        legal_forename=args.legal_forename,
        legal_surname=args.legal_surname,
        date_of_birth=args.date_of_birth,
    )
    for change in fixed.changes:
        print(f"UPN {fixed.upn}: {change}.")
    print("Forms set aside because of the old details can now be dropped in again.")
    return ExitCode.ok


# --- reports from the whole record (issue 12) -------------------------------------------------------


def _reports_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "evidence",
        help="write the evidence pack for an EHC needs assessment request (Code of Practice 6.63)",
        description="Write one Word document from the archive: needs, every cycle with its outcomes and "
        "ratings (with a chart), provision and its cost, specialists' advice, and views over time.",
    )
    p.add_argument("upn", metavar="UPN", help="the pupil's UPN")
    p.add_argument("-o", "--output", metavar="FILE.docx", help="where to write it (default: the outbox's senco folder)")
    p = sub.add_parser(
        "provision-map",
        help="write the provision map: every provision, pupils, hours, cost and outcomes achieved (6.76)",
    )
    p.add_argument("--from", dest="start", metavar="DATE", help="first day (default: 1 September of this school year)")
    p.add_argument("--to", dest="end", metavar="DATE", help="last day (default: today)")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="FILE.xlsx or FILE.docx (default: both, in the outbox's senco folder)"
    )


def _write_new(path: Path, content: bytes) -> None:
    """Write a whole file or nothing: a half-written report is never left under its name."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)


@command("evidence")
def _evidence(args: argparse.Namespace) -> int:
    from senforms.reports.evidence import evidence_pack_on_request

    settings = _settings(args, need_home=True)
    today = settings.today()
    pack = evidence_pack_on_request(settings, args.upn, today)
    content = pack.content
    # By default beside the SENCO's other documents: the home folder itself holds the archive and
    # is not shared with staff, and the current folder may be anywhere.
    senco = settings.outbox / "senco"
    out = Path(args.output) if args.output else senco / f"Evidence pack {args.upn.strip().upper()} {today}.docx"
    if out.suffix.lower() != ".docx":
        out = out.with_name(out.name + ".docx")
    _write_new(out, content)
    print(f"Wrote {out}.")
    if pack.note:
        print(pack.note)
    return ExitCode.ok


@command("provision-map")
def _provision_map(args: argparse.Namespace) -> int:
    from senforms.errors import SenformsError as _Error
    from senforms.reports.provision_map import build_map, map_docx, map_xlsx, parse_day
    from senforms.values import school_year_start

    settings = _settings(args, need_home=True)
    end = parse_day(args.end, "--to") if args.end else settings.today()
    start = parse_day(args.start, "--from") if args.start else school_year_start(end)
    if start > end:
        raise _Error(f"--from ({start:%d/%m/%Y}) is after --to ({end:%d/%m/%Y}).", advice="Swap the two dates.")
    result = build_map(settings, start, end)
    stem = f"Provision map {start} to {end}"
    senco = settings.outbox / "senco"  # as for the evidence pack: where the SENCO looks
    wanted = [Path(args.output)] if args.output else [senco / f"{stem}.xlsx", senco / f"{stem}.docx"]
    for out in wanted:
        if out.suffix.lower() == ".xlsx":
            _write_new(out, map_xlsx(result))
        elif out.suffix.lower() == ".docx":
            _write_new(out, map_docx(result, settings.today()))
        else:
            raise _Error(f"{out} is neither a .xlsx nor a .docx file.", advice="Name the file FILE.xlsx or FILE.docx.")
        print(f"Wrote {out}.")
    for line in result.unread:
        print(f"Check: {line}", file=sys.stderr)
    return ExitCode.ok


# --- the annual report to parents ----------------------------------------------------------------


def _annual_report_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "annual-report",
        help="write the annual report to parents (Code of Practice 6.64) now, for every pupil on SEN support",
        description="Write each annual report now, covering 1 September to today (or --today), for a school "
        "that wants them early or again. Written into the outbox they count as this school year's reports: "
        "the daily round does not send them again on the day set in senforms.toml. Reports already issued this "
        "school year (by the round or by this command) are not written again unless --again is given. Written "
        "with -o they are a copy for the school, for every pupil, and the round still sends the reports on their day.",
    )
    p.add_argument("--upn", metavar="UPN", help="only the pupil with this UPN")
    p.add_argument(
        "-o",
        "--output",
        metavar="FOLDER",
        help="write a copy for the school in FOLDER (default: the outbox, where they are archived and "
        "recorded as sent)",
    )
    p.add_argument(
        "--again",
        action="store_true",
        help="also write into the outbox the reports already issued this school year (a second copy for parents)",
    )


@command("annual-report")
def _annual_report(args: argparse.Namespace) -> int:
    from senforms.year.annual import annual_reports_on_request

    settings = _settings(args, need_home=True)
    _warn_unfilled(settings)
    done = annual_reports_on_request(
        settings, upn=args.upn, folder=Path(args.output) if args.output else None, again=args.again
    )
    for path in done.written:
        print(f"Wrote {path}")
    if not done.written and not done.already:
        print("No pupil is on SEN support, so there are no annual reports to write.")
    for line in annual_report_notes(done):
        print(line)
    return ExitCode.ok


def annual_report_notes(done: Any) -> list[str]:
    """What 'senforms annual-report' says about the reports issued before it ran (OnRequest)."""
    if not done.already:
        return []
    days = sorted({a.on for a in done.already})
    on = ", ".join(f"{d:%d/%m/%Y}" for d in days)
    n = len(done.already)

    def who(a: Any) -> str:  # staff know pupils by name; the UPN tells two of a name apart
        return f"{a.name} (UPN {a.upn})" if getattr(a, "name", "") else f"UPN {a.upn}"

    which = f"The annual report for {who(done.already[0])} was" if n == 1 else f"{n} annual reports were"
    said = f"{which} already issued this school year (on {on})"
    if done.copies:
        lines = [f"{said}; the files in the folder are copies for the school, and nothing was sent or recorded."]
    elif done.again:
        lines = [f"{said}; {'it was' if n == 1 else 'they were'} written again into the outbox, as --again asked."]
    else:
        lines = [
            f"{said}, so {'it was' if n == 1 else 'they were'} not written again.",
            "To send parents a second copy, run the command again with --again; for a copy for the school only, "
            "use -o FOLDER.",
        ]
    if n > 1:
        named = [who(a) for a in done.already[:ALREADY_NAMED]]
        more = f", and {n - ALREADY_NAMED} more" if n > ALREADY_NAMED else ""
        lines.insert(1, f"  Already issued: {', '.join(named)}{more}.")
    return lines


#: How many pupils the annual-report command names one by one as already issued.
ALREADY_NAMED = 20


def _pupil_record(args: argparse.Namespace) -> int:
    from senforms.reports.record import record_in_home, record_json_text, record_lines, update_in_home

    # A home folder is needed unless the archive is named: never a new, empty SQLite file here.
    settings = _settings(args, need_home=not args.archive)
    if args.left or args.to or args.passed_on or args.hold is not None or args.release_hold:
        said = update_in_home(
            settings,
            args.upn,
            left_on=args.left,
            left_to=args.to,
            passed_on=args.passed_on,
            hold=args.hold,
            release=args.release_hold,
        )
        for line in said:
            # With --json the record follows on stdout, for a program: what changed goes to stderr.
            print(f"UPN {args.upn.strip().upper()}: {line}.", file=sys.stderr if args.json else sys.stdout)
        if not args.json:
            return ExitCode.ok
    record = record_in_home(settings, args.upn)
    if args.json:
        print(record_json_text(record))
    else:
        for line in record_lines(record):
            print(line)
    return ExitCode.ok


# --- the whole record as one zip, and the retention review -----------------------------------------


def _export_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write everything held about a pupil as one zip, for the next school or a subject access request",
    )
    p.add_argument("upn", metavar="UPN")
    p.add_argument("-o", "--output", required=True, metavar="FILE.zip", help="the zip file to write")


@command("export")
def _export(args: argparse.Namespace) -> int:
    from senforms.reports.export import export_in_home

    output = Path(args.output)
    if output.suffix.lower() != ".zip":
        output = output.with_name(output.name + ".zip")
    done = export_in_home(_settings(args, need_home=not args.archive), args.upn, output)
    print(
        f"Wrote {done.path}: {count(done.forms, 'form')} and {count(done.documents, 'document')} for UPN {done.upn}, "
        "with an index and a summary. It holds special category data about a child: keep it secure, and "
        "send it only to the people it is for."
    )
    return ExitCode.ok


def _retention_arguments(sub: Any) -> None:
    sub.add_parser(
        "retention",
        help="list the records due for review for destruction (as of --today); nothing is ever deleted",
    )


@command("retention")
def _retention(args: argparse.Namespace) -> int:
    from senforms.reports.retention import retention_in_home
    from senforms.values import format_uk_date

    settings = _settings(args, need_home=not args.archive)
    items = retention_in_home(settings)
    today = format_uk_date(settings.today())
    if not items:
        print(f"No records are due for review on {today}.")
        return ExitCode.ok
    held = sum(1 for i in items if i.retention.held)
    print(
        f"{count(len(items), 'record')} due for review for destruction on {today}, longest due first"
        + (f" ({held} on legal hold)" if held else "")
        + ". senforms deletes nothing: a person decides, following the school's records policy."
    )
    for item in items:
        mark = "HELD  " if item.retention.held else "review"
        print(f"{mark} {format_uk_date(item.retention.review_on)}  {item.upn}  {item.name}: {item.retention.reason}")
        if item.retention.held:
            print(f"       legal hold: {item.retention.hold_reason}; not to be destroyed while it applies")
    return ExitCode.ok


# --- the SENCO's year: reviews due and the daily round ---------------------------------------------


def _year_arguments(sub: Any) -> None:
    p = sub.add_parser("due", help="list reviews due in the next weeks and reviews that are overdue")
    p.add_argument("--weeks", type=int, default=4, metavar="N", help="how many weeks ahead to look (default 4)")
    sub.add_parser(
        "round",
        help="issue what is owed today (review records ahead of their reviews, the weekly digest); "
        "the watcher does this by itself each day",
    )


@command("due")
def _due(args: argparse.Namespace) -> int:
    from senforms.archive.store import Archive
    from senforms.year.reviews import due_list

    if args.weeks < 0:
        raise SenformsError("--weeks needs a number of weeks of 0 or more, for example --weeks 4.")
    settings = _settings(args, need_home=True)
    today = settings.today()
    archive = Archive(settings.database_url)
    try:
        with archive.reading() as session:
            upcoming, overdue = due_list(session, today, weeks=args.weeks)
    finally:
        archive.close()

    def line(r: Any, when: str) -> str:
        return f"  {r.upn}  {r.name}, Year {r.year_group}: review on {r.review_date:%d/%m/%Y}{when}"

    weeks = f"{args.weeks} week" + ("" if args.weeks == 1 else "s")
    print(f"As of {today:%d/%m/%Y}.")
    if upcoming:
        print(f"Reviews due in the next {weeks} ({len(upcoming)}):")
        for r in upcoming:
            days = -r.days_overdue
            print(line(r, " (today)" if days == 0 else f" (in {days} day{'' if days == 1 else 's'})"))
    else:
        print(f"No reviews are due in the next {weeks}.")
    if overdue:
        print(f"Overdue reviews: the review date has passed and no review record has been received ({len(overdue)}):")
        for r in overdue:
            print(line(r, f", {r.days_overdue} day{'' if r.days_overdue == 1 else 's'} overdue"))
    else:
        print("No reviews are overdue.")
    return ExitCode.ok


@command("round")
def _round(args: argparse.Namespace) -> int:
    from senforms.year.round import run_round

    settings = _settings(args, need_home=True)
    report = run_round(settings)
    for path in report.written:
        print(f"Written: {path.relative_to(settings.outbox).as_posix()}")
    if not report.issued and not report.written:
        print(f"Nothing is owed on {settings.today():%d/%m/%Y} that has not been issued already.")
    for failure in report.failed:
        print(f"Not issued because of a problem: {failure}", file=sys.stderr)
    if report.waiting:
        print(
            f"Some documents are filed but could not be written to the outbox ({report.waiting}).\n\n"
            "What to do: make room on the disk or give senforms permission to write to the outbox; "
            "the next round (or senforms round) writes them.",
            file=sys.stderr,
        )
        return int(ExitCode.archive_error)
    return int(ExitCode.internal if report.failed else ExitCode.ok)


def _register_arguments(sub: Any) -> None:
    p = sub.add_parser(
        "register",
        help="print the SEND register's summary and census check; -o writes it as .xlsx or .csv",
        description="The SEND register as the archive has it (pupils on SEN support or with an EHC plan), "
        "with every pupil who would fail the school census rules. The outbox's living copy "
        "(senco/SEND register.xlsx and .csv) is written by senforms itself.",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the register to FILE (.xlsx or .csv)")


@command("register")
def _register(args: argparse.Namespace) -> int:
    from senforms.archive.register import read_register, save_register

    settings = _settings(args, need_home=not getattr(args, "archive", None))
    register = read_register(settings.database_url, settings.today())
    for line in register.summary():
        print(line)
    if args.output:
        written = save_register(register, Path(args.output))
        print(f"Written to {written}.")
    return ExitCode.ok


# --- the school's roll ---------------------------------------------------------------------------


def _pupils_arguments(sub: Any) -> None:
    p = sub.add_parser("pupils", help="bring in the pupil roll exported from the school's information system")
    actions = p.add_subparsers(dest="pupils_command", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="update the archive's pupils from a roll exported as CSV (SIMS, Arbor, Bromcom)",
        description="Add the roll's new pupils and bring year groups, classes, preferred names and contacts "
        "up to date. A pupil's UPN, legal name and date of birth are never changed here: differences are "
        "listed with the 'senforms pupil fix' command that makes them. Nothing is deleted.",
    )
    imp.add_argument("file", metavar="FILE.csv", help="the roll, as CSV (UTF-8 or Windows-1252, comma or semicolon)")
    imp.add_argument("--check", action="store_true", help="only say what would change; change nothing")


@command("pupils")
def _pupils(args: argparse.Namespace) -> int:
    from senforms.archive.roll import import_roll

    report = import_roll(_settings(args, need_home=True), Path(args.file), check=args.check)
    for line in roll_report_lines(report, Path(args.file).name):
        print(line)
    for error in report.errors:
        print(error, file=sys.stderr)
    if report.errors:
        print(
            f"\nWhat to do: correct {'this row' if len(report.errors) == 1 else 'these rows'} in the school's "
            "information system (or in the file), export the roll again and run the command again. "
            "The other rows were " + ("checked." if report.checked_only else "imported."),
            file=sys.stderr,
        )
        return int(ExitCode.some_files_failed)
    if report.to_confirm:
        return int(ExitCode.identity_conflict)
    return ExitCode.ok


def roll_report_lines(report: RollReport, name: str) -> list[str]:
    """What an import did (or, with --check, would do), for the SENCO."""
    from senforms.values import format_uk_date

    would = report.checked_only
    separated = {",": "commas", ";": "semicolons", "\t": "tabs"}.get(report.delimiter, report.delimiter)
    left_only = [upn for upn, _, _ in report.left_but_on_roll if upn not in report.updated]
    rows = len(report.added) + len(report.updated) + report.unchanged + len(report.to_confirm) + len(left_only)
    lines = [f"Read {name} ({report.encoding}, separated by {separated}): {count(rows, 'pupil')}."]
    if report.errors:
        bad = len({e.line for e in report.errors})
        lines[0] = lines[0][:-1] + f"; {count(bad, 'row')} with problems, listed below and not imported."
    if would:
        lines.append("Checked only: nothing has been changed.")
    if report.added:
        lines.append(f"{'Would add' if would else 'Added'} {count(len(report.added), 'new pupil')}:")
        lines += [f"  UPN {upn} {who}" for upn, who in report.added]
    if report.updated:
        lines.append(f"{'Would update' if would else 'Updated'} {count(len(report.updated), 'pupil')}:")
        lines += [f"  UPN {upn}: {'; '.join(changes)}" for upn, changes in report.updated.items()]
    if report.unchanged:
        lines.append(f"{count(report.unchanged, 'pupil')} already up to date.")
    if report.to_confirm:
        lines.append(
            f"To confirm ({count(len(report.to_confirm), 'pupil')} not updated): the roll and the archive "
            "disagree about who the pupil is. Check the school's records; if the roll is right, run the command shown:"
        )
        lines += [f"  {c}" for c in report.to_confirm]
    if report.not_on_roll:
        lines.append(
            f"In the archive but not on this roll ({count(len(report.not_on_roll), 'pupil')}, perhaps left; "
            "nothing has been deleted):"
        )
        lines += [f"  UPN {upn} {who}" for upn, who in report.not_on_roll]
    if report.left_but_on_roll:
        lines.append(
            f"On this roll, but recorded in the archive as having left ({count(len(report.left_but_on_roll), 'pupil')}): "
            "check the school's records. The roll may be an older export, or the child may have come back; "
            "the archive still says they left:"
        )
        lines += [f"  UPN {upn} {who}, left {format_uk_date(left)}" for upn, who, left in sorted(report.left_but_on_roll)]
    if report.unused_columns:
        lines.append("Columns not used: " + ", ".join(f"'{c}'" for c in report.unused_columns) + ".")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "watch":
            with contextlib.suppress(Exception):
                from senforms.config import home_folder
                from senforms.deliver import private_file

                # The watcher's log handler appends, so the file keeps this mode.
                private_file(home_folder(args.home) / LOG_NAME)
        return int(_COMMANDS[args.command](args))
    except SenformsError as exc:
        print(exc.message, file=sys.stderr)
        if exc.advice:
            print(f"\nWhat to do: {exc.advice}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.interrupted)
    except Exception as exc:
        # Never a traceback on the screen: office staff cannot act on it; whoever supports
        # senforms finds it in the log.
        where = _record_internal_error(args)
        print(
            f"senforms stopped because of an internal error ({type(exc).__name__}), see the log: {where}.\n\n"
            "What to do: try again; if it happens again, send the log to whoever supports senforms.",
            file=sys.stderr,
        )
        return int(ExitCode.internal)


if __name__ == "__main__":
    sys.exit(main())
