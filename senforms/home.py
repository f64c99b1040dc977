"""Setting up a home folder: inbox, outbox, problems, senforms.toml, the archive and blank forms."""

from __future__ import annotations

from senforms import forms
from senforms.archive.store import Archive
from senforms.config import Settings, write_default_settings
from senforms.deliver import write_atomic
from senforms.kinds import KINDS


def init_home(settings: Settings) -> list[str]:
    """Create the home folder's layout; return what was done, in plain words."""
    done = []
    for folder in (settings.inbox, settings.outbox, settings.problems, settings.templates / "forms"):
        if not folder.exists():
            folder.mkdir(parents=True)
            done.append(f"Created {folder}")
    config = settings.home / "senforms.toml"
    if not config.exists():
        write_default_settings(settings.home)
        done.append(f"Wrote {config}: open it and fill in the school's details")
    Archive(settings.database_url).close()
    blanks = settings.outbox / "blank forms"
    for slug, kind in KINDS.items():
        target = blanks / f"{kind.title}.docx"
        if not target.exists():
            write_atomic(target, forms.blank_form(settings, slug), overwrite=True)
            done.append(f"Wrote a blank {kind.title} to {target}")
    return done
