"""The ``senforms`` command line: parses arguments, calls the library, maps its exceptions to
exit codes and plain messages. No work is done here that a library function could do."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from senforms.errors import ExitCode, SenformsError

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return register


def _settings(args: argparse.Namespace) -> Any:
    from senforms.config import load_settings

    return load_settings(getattr(args, "home", None), archive_url=getattr(args, "archive", None))


@command("blank")
def _blank(args: argparse.Namespace) -> int:
    from senforms.forms import blank_form

    values = None
    if args.data:
        try:
            values = json.loads(Path(args.data).read_text(encoding="utf-8-sig"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SenformsError(f"The values file {args.data} cannot be read: {exc}") from exc
    settings = _settings(args)
    data = blank_form(settings, args.kind, values=values, pdf=args.pdf or str(args.output).lower().endswith(".pdf"))
    from senforms.deliver import write_atomic

    write_atomic(Path(args.output), data, overwrite=True)
    print(f"Wrote {args.output}")
    return ExitCode.ok


@command("extract")
def _extract(args: argparse.Namespace) -> int:
    from senforms.forms import extract

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SenformsError(f"{path} cannot be opened: {exc.strerror or exc}") from exc
    model, warnings = extract(data, name=path.name, settings=_settings(args))
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
        elif isinstance(value, list):
            print(f"{indent}{key}:")
            for i, item in enumerate(value, 1):
                print(f"{indent}  {i}.")
                _print_model(item, indent + "    ")
        else:
            print(f"{indent}{key}: {value}")


@command("process")
def _process(args: argparse.Namespace) -> int:
    from senforms.pipeline import process_files

    settings = _settings(args)
    report = process_files([Path(f) for f in args.files], settings, notify=lambda line: print(line, file=sys.stderr))
    for path, done in report.processed:
        print(f"{path.name}: {done.status} ({done.kind}, UPN {done.upn}, {len(done.documents)} documents)")
        for warning in done.warnings:
            print(f"  Warning: {warning}")
    for path, target, error in report.set_aside:
        print(f"{path.name}: set aside in {target.parent} with a note.\n  {error.message}", file=sys.stderr)
    return int(report.exit_code)


@command("init")
def _init(args: argparse.Namespace) -> int:
    from senforms.pipeline import init_home

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
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("blank", help="write a blank or pre-filled form")
    p.add_argument("kind", choices=sorted(KINDS), metavar="KIND", help=", ".join(KINDS))
    p.add_argument("-o", "--output", required=True, help="the .docx (or .pdf) file to write")
    p.add_argument("--data", help="a JSON file of known values, in the shape 'extract --json' prints")
    p.add_argument("--pdf", action="store_true", help="write a fillable PDF form instead of Word")

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
        from senforms.pipeline import init_home

        for line in init_home(settings):
            print(line)
        settings = load_settings(settings.home, archive_url=getattr(args, "archive", None))
    if args.poll is not None and args.poll <= 0:
        raise SenformsError("--poll needs a number of seconds greater than 0, for example --poll 10.")
    watcher = Watcher(settings, poll=args.poll, give_up_seconds=args.give_up)
    for line in watcher.describe():
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

    for line in status_lines(_settings(args)):
        print(line)
    return ExitCode.ok


# --- letter templates ----------------------------------------------------------------------------


@command("check-templates")
def _check_templates(args: argparse.Namespace) -> int:
    from senforms.render import check_templates

    problems = check_templates(_settings(args))
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
    return ExitCode.ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args))
    except SenformsError as exc:
        print(exc.message, file=sys.stderr)
        if exc.advice:
            print(f"\nWhat to do: {exc.advice}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.interrupted)


if __name__ == "__main__":
    sys.exit(main())
