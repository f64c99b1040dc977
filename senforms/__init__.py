"""senforms: the paperwork of SEN support in English schools, as a pipeline.

The public API is what this module exports; every other module is machinery a caller should not
need. A form moves through the layers in this order (``pyproject.toml`` declares them and
``lint-imports`` checks them): ``intake`` (the watched folder) hands each file to ``pipeline``,
which runs the steps top to bottom: ``forms`` reads it (``read``) and checks it (``validate``)
into the model of its ``kinds``; ``archive`` finds the pupil; ``rules`` decide what comes next;
``documents`` renders the letters (``render``, ``context``, ``letters``) and pre-filled forms;
``archive`` files the form and rebuilds the record; ``outbox`` delivers.

    >>> import senforms
    >>> settings = senforms.load_settings("/srv/senforms")
    >>> with senforms.Pipeline(settings) as pipeline:
    ...     done = pipeline.process_file(Path("early discussion.docx"))

Errors are ``senforms.SenformsError`` subclasses, each with its ``exit_code`` and a message
written for office staff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Imported on first use, so `senforms --help` and the blank-form commands start quickly.
_EXPORTS = {
    "load_settings": "senforms.config",
    "Settings": "senforms.config",
    "Pipeline": "senforms.pipeline",
    "Processed": "senforms.pipeline",
    "process_files": "senforms.pipeline",
    "blank_form": "senforms.forms",
    "extract": "senforms.forms",
    "Watcher": "senforms.intake",
    "init_home": "senforms.home",
    "KINDS": "senforms.kinds",
    "LETTERS": "senforms.letters",
    "SenformsError": "senforms.errors",
    "ExitCode": "senforms.errors",
    "UnreadableFileError": "senforms.errors",
    "NotAFormError": "senforms.errors",
    "FormInvalidError": "senforms.errors",
    "IdentityConflictError": "senforms.errors",
    "TemplateError": "senforms.errors",
    "ArchiveError": "senforms.errors",
    "ConfigError": "senforms.errors",
    "OfficeError": "senforms.errors",
}

__all__ = [
    "KINDS",
    "LETTERS",
    "ArchiveError",
    "ConfigError",
    "ExitCode",
    "FormInvalidError",
    "IdentityConflictError",
    "NotAFormError",
    "OfficeError",
    "Pipeline",
    "Processed",
    "SenformsError",
    "Settings",
    "TemplateError",
    "UnreadableFileError",
    "Watcher",
    "blank_form",
    "extract",
    "init_home",
    "load_settings",
    "process_files",
]

if TYPE_CHECKING:
    from senforms.config import Settings, load_settings
    from senforms.errors import (
        ArchiveError,
        ConfigError,
        ExitCode,
        FormInvalidError,
        IdentityConflictError,
        NotAFormError,
        OfficeError,
        SenformsError,
        TemplateError,
        UnreadableFileError,
    )
    from senforms.forms import blank_form, extract
    from senforms.home import init_home
    from senforms.intake import Watcher
    from senforms.kinds import KINDS
    from senforms.letters import LETTERS
    from senforms.pipeline import Pipeline, Processed, process_files


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'senforms' has no attribute {name!r}")
