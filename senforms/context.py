"""What a letter template is given: the school, the pupil, the form, and the pupil's history.

The names here are the ones documented for schools in ``templates/letters/README.md``; every
value is display text (dates as "12 March 2026", choices as their printed words).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

from senforms.config import PLACEHOLDER, Settings
from senforms.history import History
from senforms.kinds import BroadAreas, Pupil, ReviewRecord, SupportPlan
from senforms.rules import Flag
from senforms.values import Choice, fold_outcome, need_codes


def long_date(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def display(value: Any) -> Any:
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, date):
        return long_date(value)
    if isinstance(value, Choice):
        return value.label
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, BroadAreas):
        return value.names()
    if isinstance(value, BaseModel):
        return {name: display(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, list | tuple):
        return [display(v) for v in value]
    return "" if value is None else value


# Every name a template may use is always present, even before senforms.toml is filled in.
_SETTINGS_KEYS = {
    "school": ("name", "address", "phone", "email"),
    "signatory": ("name", "role"),
    "sendiass": ("name", "phone", "website", "local_offer"),
}


def _settings_part(section: str, values: dict[str, str]) -> dict[str, str]:
    shown = dict.fromkeys(_SETTINGS_KEYS[section], "") | values
    return {k: ("" if v == PLACEHOLDER else v) for k, v in shown.items()}


def pupil_context(pupil: Pupil) -> dict[str, Any]:
    return {
        "upn": pupil.upn,
        "forename": pupil.legal_forename,
        "surname": pupil.legal_surname,
        "known_as": pupil.known_as,
        "full_name": f"{pupil.known_as} {pupil.legal_surname}",
        "date_of_birth": long_date(pupil.date_of_birth),
        "year_group": pupil.year_group.label,
        "class_name": pupil.class_name or "",
        "parents": [display(p) for p in pupil.parents],
    }


def greeting(pupil: Pupil) -> str:
    names = [p.name for p in pupil.parents]
    return f"Dear {' and '.join(names)}" if names else "Dear parent or carer"


def form_context(form: BaseModel) -> dict[str, Any]:
    shown = display(form)
    codes = need_codes()
    for key in ("primary_need", "secondary_need"):
        if key in shown:
            shown[f"{key}_text"] = codes.get(shown[key], "") if shown[key] else ""
    return shown


def cycles_context(history: History) -> list[dict[str, Any]]:
    """Every cycle of SEN support, for the evidence summary (6.63)."""
    cycles = []
    for number, record in sorted(history.cycles.items()):
        plan: SupportPlan | None = record.plan
        review: ReviewRecord | None = record.review
        ratings: dict[str, list[str]] = {}
        for earlier in history.reviews_before(number + 1):
            for outcome in earlier.outcomes:
                ratings.setdefault(fold_outcome(outcome.description), []).append(outcome.rating.label)
        outcomes = plan.outcomes if plan else (review.outcomes if review else [])
        cycles.append(
            {
                "cycle": number,
                "plan_date": long_date(plan.plan_date) if plan else "",
                "review_date": long_date(review.review_date) if review else "",
                "outcomes": [
                    {
                        "description": o.description,
                        "success_criteria": getattr(o, "success_criteria", None) or "",
                        "ratings": ratings.get(fold_outcome(o.description), []),
                    }
                    for o in outcomes
                ],
                "provision": [
                    {
                        "what": p.what,
                        "who": p.who or "",
                        "frequency": p.frequency or "",
                        "weekly_cost": display(p.weekly_cost),
                    }
                    for p in (plan.provision if plan else [])
                ],
                "decision": review.decision.label if review else "",
            }
        )
    return cycles


def letter_context(
    settings: Settings,
    form: BaseModel,
    *,
    history: History,
    flags: list[Flag],
    corrected: bool,
    today: date,
    with_cycles: bool = False,
) -> dict[str, Any]:
    pupil: Pupil = form.pupil  # type: ignore[attr-defined]
    return {
        "school": _settings_part("school", settings.school),
        "signatory": _settings_part("signatory", settings.signatory),
        "sendiass": _settings_part("sendiass", settings.sendiass),
        "today": long_date(today),
        "corrected": corrected,
        "pupil": pupil_context(pupil),
        "greeting": greeting(pupil),
        "form": form_context(form),
        "cycles": cycles_context(history) if with_cycles else [],
        "flags": [{"description": f.description, "ratings": list(f.ratings)} for f in flags],
    }
