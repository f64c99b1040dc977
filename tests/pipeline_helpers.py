"""Building filled forms for pipeline tests: blank or pre-filled forms completed as in Word."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

from senforms.kinds import KINDS
from senforms.values import upn_check_letter
from senforms.wordform import make_form
from tests.conftest import case
from tests.wordfill import fill_like_word, typed


def pupil_upn(serial: int, la: str = "801", school: str = "2000", year: str = "05") -> str:
    """A valid UPN for pupil number ``serial``."""
    body = f"{la}{school}{year}{serial:03d}"
    return upn_check_letter("X" + body) + body


def values(kind: str, **changes: Any) -> dict[str, Any]:
    """A realistic case from tests/cases with the given top-level or pupil changes."""
    data = copy.deepcopy(case(f"{kind}.json"))
    pupil = changes.pop("pupil", {})
    data["pupil"].update(pupil)
    data.update(changes)
    return data


def filled(kind: str, data: dict[str, Any]) -> bytes:
    """A blank form filled in Word with ``data``."""
    blank = make_form(KINDS[kind], school="Oakfield Primary School")
    return fill_like_word(blank, typed(kind, json.loads(json.dumps(data, default=str))))


def complete(prefilled: bytes, kind: str, data: dict[str, Any]) -> bytes:
    """A pre-filled form completed in Word: the SENCO types the rest."""
    return fill_like_word(prefilled, typed(kind, json.loads(json.dumps(data, default=str))))


def drop(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def iso(d: date) -> str:
    return d.isoformat()
