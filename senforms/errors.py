"""The one exception hierarchy of senforms.

The library raises these; only the command line turns them into exit codes and
printed messages. Every message is written for office staff: what is wrong and
what to do about it, never a traceback or a class name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    ok = 0
    internal = 1  # a fault in senforms itself: the message says so, the traceback is in senforms.log
    bad_args = 2
    unreadable_file = 3
    not_a_form = 4
    invalid_form = 5
    identity_conflict = 6
    template_error = 7
    archive_error = 8
    config_error = 9
    office_error = 10
    some_files_failed = 11
    archive_refused = 12  # the archive answered but refused the form: set aside, never retried
    interrupted = 130


class SenformsError(Exception):
    """Root of every error senforms raises on purpose."""

    exit_code: ExitCode = ExitCode.bad_args
    advice: str = ""

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if advice is not None:
            self.advice = advice

    def note(self) -> str:
        """The plain-English note written beside a file that was set aside."""
        parts = [self.message]
        if self.advice:
            parts += ["", "What to do: " + self.advice]
        return "\n".join(parts)


class UnreadableFileError(SenformsError):
    """The file is damaged, empty, encrypted, too large or of the wrong type."""

    exit_code = ExitCode.unreadable_file
    advice = "Open the file on your computer to check it, save it again as a Word (.docx) file, and drop it in again."


class UnsupportedFileError(UnreadableFileError):
    """A kind of file senforms does not read (.doc, .odt, images, macros)."""

    advice = "Open it in Word, choose File > Save As > Word Document (.docx), and drop the new file in again."


class NotAFormError(SenformsError):
    """A readable document that is not a senforms form."""

    exit_code = ExitCode.not_a_form
    advice = (
        "Only forms made by senforms can be read. Ask the SENCO for the right blank form, "
        "copy the details into it, and drop that in instead."
    )


class UnknownVersionError(NotAFormError):
    """A senforms form of a kind or version this installation does not know."""

    advice = "Fill in the current blank form (ask the SENCO for it) and drop that in instead."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a form, named by the label printed on the form."""

    label: str
    message: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.label}: {self.message}"


class FormInvalidError(SenformsError):
    """The form was read, but some answers are missing or wrong."""

    exit_code = ExitCode.invalid_form
    advice = "Correct these answers on the form, save it, and drop it in again."

    def __init__(self, problems: list[Problem], *, kind_title: str = "form") -> None:
        self.problems = problems
        lines = [f"The {kind_title} has {_count(len(problems), 'problem')} to put right:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class IdentityConflictError(SenformsError):
    """The pupil on the form does not match the pupil in the archive."""

    exit_code = ExitCode.identity_conflict
    advice = (
        "Check the pupil's UPN, name and date of birth against the school's records. "
        "Correct the form and drop it in again; if the archive is wrong, ask the SENCO."
    )


class NoSuchPupilError(IdentityConflictError):
    """A form other than an early discussion for a UPN the archive does not know (yet): its
    early discussion may be on its way, or being filed by another run at this moment."""


class PupilNotFoundError(SenformsError):
    """A command names a UPN the archive has no record of (``senforms evidence UPN``)."""

    exit_code = ExitCode.bad_args
    advice = "Check the UPN against the school's records; a pupil's record starts with their early discussion note."


class CycleError(SenformsError):
    """A form that makes no sense where the pupil's cycle stands (a review with no plan)."""

    exit_code = ExitCode.invalid_form
    advice = "Drop the earlier form in first, then this one again."


class TemplateError(SenformsError):
    """A letter or form template cannot be used."""

    exit_code = ExitCode.template_error
    advice = "Run 'senforms check-templates' to see what is wrong with the template, or restore the original."


class ArchiveError(SenformsError):
    """Something went wrong with the archive. Raised as one of the two kinds below when senforms
    can tell them apart; exit code 8, which the watcher retries."""

    exit_code = ExitCode.archive_error
    advice = "Check that the archive database is reachable, then try again. Nothing has been lost."


class ArchiveUnavailableError(ArchiveError):
    """The archive cannot be reached, is busy or too slow to answer (a lost connection, a
    timeout, a locked SQLite file, a full disk): an outage, retried with back-off. Exit code 8."""

    advice = (
        "Check that the archive database is running and reachable (and that its disk is not full). "
        "senforms tries again by itself; nothing has been lost."
    )


class ArchiveConnectionLostError(ArchiveUnavailableError):
    """The archive's server dropped the connection (it restarted, or the network did): an outage
    like any other, but one a fresh connection may cure at once, so the step that met it may be
    tried once more before it is reported."""


class ArchiveRefusedError(ArchiveError):
    """The archive answered but refused what it was given (a value too long or of the wrong type
    for its column, a broken constraint, a schema that does not match): not an outage, so
    retrying would fail the same way for ever. The file is set aside with this note."""

    exit_code = ExitCode.archive_refused
    advice = (
        "The form was not filed. Check the answers on the form (a very long answer, or an unusual "
        "value) and drop it in again; if it is refused again, send this note to whoever looks after "
        "senforms, as the archive may need upgrading ('senforms' runs its upgrades when it starts)."
    )


class DeliveryPendingError(SenformsError):
    """The form was filed (committed to the archive) but its documents could not be written to the
    outbox. Never a reason to set the form aside: its delivery is finished by the next run, by
    ``Pipeline.finish_pending`` or by the watcher's retry. Exit code 8, like an archive outage."""

    exit_code = ExitCode.archive_error
    advice = (
        "Check that the outbox folder exists, can be written to, and that its disk is not full. "
        "Leave the form where it is: senforms writes the letters when it next runs (the watcher "
        "keeps trying by itself)."
    )

    def __init__(self, reason: str, *, upn: str = "", advice: str | None = None) -> None:
        who = f" for the pupil with UPN {upn}" if upn else ""
        super().__init__(
            f"The form{who} was filed, but its letters could not be written to the outbox ({reason}). "
            "senforms will write them when the outbox can be written to again; nothing has been lost.",
            advice=advice,
        )
        self.reason = reason


class ConfigError(SenformsError):
    exit_code = ExitCode.config_error
    advice = "Open senforms.toml in the home folder and correct it."


class NotAHomeError(ConfigError):
    """A command that needs a home folder was run somewhere that is not one."""

    advice = (
        "Run the command in the senforms home folder, or name it with --home FOLDER (or SENFORMS_HOME). "
        "To start a new home folder here, run 'senforms init' first."
    )


class OfficeError(SenformsError):
    """LibreOffice is missing or failed to convert a document."""

    exit_code = ExitCode.office_error
    advice = 'Install LibreOffice, or set documents = "docx" in senforms.toml.'


def count(n: float, word: str, plural: str | None = None) -> str:
    """``1 second``, ``2 seconds``, ``0 problems``: a number with its noun agreeing."""
    shown = f"{n:g}" if isinstance(n, float) else str(n)
    return f"{shown} {word}" if n == 1 else f"{shown} {plural or word + 's'}"


_count = count


# Acronyms schools say as words ("a SENCO", "a SEND register"), so they take the article of their first letter.
_SAID_AS_WORDS = {"SEN", "SENCO", "SEND", "SENDIASS", "NASEN"}


def article(phrase: str) -> str:
    """``a Support plan``, ``an Early discussion note``: the article chosen by the first sound.

    By the first letter, with the few English exceptions a school's forms and letters meet:
    "an hour", "an EHC plan", "a UPN", "a SEN support plan", "a one-page profile", "a useful ...".
    """
    word = phrase.split(maxsplit=1)[0] if phrase.strip() else ""
    lower = word.lower()
    if lower.startswith(("hour", "honest", "honour", "heir")):
        return f"an {phrase}"
    if word.isupper() and len(word) > 1 and word.rstrip("-") not in _SAID_AS_WORDS:
        # an acronym said letter by letter: an EHC plan, an FSM pupil, a UPN
        return f"{'an' if word[0] in 'AEFHILMNORSX' else 'a'} {phrase}"
    if lower.startswith(("uni", "use", "usu", "eu", "one", "once", "ewe", "ufo")):
        return f"a {phrase}"
    return f"{'an' if lower[:1] in 'aeiou' else 'a'} {phrase}"


class NotOnSenSupportError(SenformsError):
    """An annual report asked for a pupil the archive does not have on SEN support."""

    exit_code = ExitCode.bad_args
    advice = "Check the UPN against the SEND register (outbox/senco/SEND register.csv)."
