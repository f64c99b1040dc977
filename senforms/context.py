"""What a letter template is given: the school, the pupil, the form, and the pupil's history.

The names here are the ones documented for schools in ``templates/letters/README.md``; every
value is display text (dates as "12 March 2026", choices as their printed words).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel

from senforms.config import PLACEHOLDER, Settings
from senforms.history import History
from senforms.kinds import BroadAreas, FormKind, FormModel, Pupil, ReviewRecord, SupportPlan
from senforms.rules import Flag, end_reason, review_findings
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


# A name on the form that starts with one of these is greeted by title and surname.
TITLES = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr")
NO_NAME = "Dear Parent or Carer"


def _titled(name: str) -> tuple[str, str] | None:
    """("Mrs", "Clarke") for "Mrs Joanne Clarke" or "mrs. clarke"; None when the name has no title."""
    words = name.split()
    title = words[0].rstrip(".").capitalize() if words else ""
    if title in TITLES and len(words) >= 2:
        return title, words[-1]
    return None


def salutation(names: list[str]) -> str:
    """How a letter to these people opens: "Dear Mrs Clarke and Mr Adeyemi", "Dear Joanne Clarke"
    (no title on the form: the full name, never a guessed title), or "Dear Parent or Carer" when
    no name is known."""
    names = [n.strip() for n in names if n and n.strip()]
    if not names:
        return NO_NAME
    titled = [_titled(n) for n in names]
    return "Dear " + " and ".join(f"{t[0]} {t[1]}" if t else n for n, t in zip(names, titled, strict=True))


def greeting(pupil: Pupil) -> str:
    return salutation([p.name for p in pupil.parents])


def _address_key(address: str) -> str:
    """Two addresses typed a little differently ("12 Beech Lane, Oakfield" and "12 beech lane\n
    Oakfield") are one household."""
    return " ".join(address.replace(",", " ").split()).casefold()


def recipients(pupil: Pupil) -> list[dict[str, Any]]:
    """The households a letter goes to, one entry for each address on the form: ``names`` (the
    people there, "Ms Rachel Hart and Mr Daniel Hart"), ``address`` (lines, may be empty),
    ``greeting``, ``email``, ``preferred_contact``. A parent with no address on the form is
    taken to live at the first address given (the form has one address box each, and a parent
    who shares the address often leaves theirs empty). Empty when the form names no one."""
    households: dict[str, list[Any]] = {}
    without: list[Any] = []
    for parent in pupil.parents:
        if parent.address and parent.address.strip():
            households.setdefault(_address_key(parent.address), []).append(parent)
        else:
            without.append(parent)
    groups = list(households.values())
    if groups:
        groups[0].extend(without)
    elif without:
        groups = [without]
    out = []
    for people in groups:
        address = next((p.address.strip() for p in people if p.address and p.address.strip()), "")
        contact = next((p for p in people if p.email or p.preferred_contact), people[0])
        out.append(
            {
                "names": " and ".join(p.name for p in people),
                "address": address,
                "greeting": salutation([p.name for p in people]),
                "email": contact.email or "",
                "preferred_contact": display(contact.preferred_contact),
            }
        )
    return out


def address_block(households: list[dict[str, Any]]) -> str:
    """The names and address printed above the letter, each household's lines together."""
    blocks = ["\n".join(part for part in (h["names"], h["address"]) if part) for h in households]
    return "\n\n".join(blocks)


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


def review_context(form: BaseModel) -> dict[str, Any]:
    """What a review found, in parents' words (``rules.review_findings``): the first page of the
    review letter shows it. Empty for any other kind of form."""
    if not isinstance(form, ReviewRecord):
        return {}
    found = review_findings(form)
    return {
        "summary": found.summary,
        "decision": found.decision,
        "achieved": found.achieved,
        "partly": found.partly,
        "not_achieved": found.not_achieved,
        # Why SEN support ends, as the form gives it ("" when it does not); the key picks the
        # paragraphs that fit (a pupil who is leaving is not told to tell us if worried again).
        "end_reason": end_reason(form).strip(),
        "end_reason_key": str(form.end_reason.value) if form.end_reason else "",
    }


def letter_context(
    settings: Settings,
    form: BaseModel,
    *,
    history: History,
    flags: list[Flag],
    corrected: bool,
    today: date,
    with_cycles: bool = False,
    correction: Sequence[str] = (),
) -> dict[str, Any]:
    pupil: Pupil = form.pupil  # type: ignore[attr-defined]
    households = recipients(pupil)
    return {
        "school": _settings_part("school", settings.school),
        "signatory": _settings_part("signatory", settings.signatory),
        "sendiass": _settings_part("sendiass", settings.sendiass),
        "today": long_date(today),
        "corrected": corrected,
        "correction": list(correction),
        "pupil": pupil_context(pupil),
        "greeting": greeting(pupil),
        "recipients": households,
        "address_block": address_block(households),
        "form": form_context(form),
        "review": review_context(form),
        "cycles": cycles_context(history) if with_cycles else [],
        "flags": [{"description": f.description, "ratings": list(f.ratings), "new": f.new} for f in flags],
    }


# --- what a correction changed -------------------------------------------------------------------

#: Said in full up to this length; a longer answer is only said to have changed.
_SHORT_ANSWER = 60
#: At most this many changes are named; the rest are counted.
_NAMED_CHANGES = 3


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"outcomes": [{"description": ..}]}`` as ``{"outcomes.0.description": ..}``: the paths
    ``layout.fields`` names the printed boxes by."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out |= _flatten(inner, f"{prefix}{key}.")
        return out
    if isinstance(value, list):
        out = {}
        for i, inner in enumerate(value):
            out |= _flatten(inner, f"{prefix}{i}.")
        return out
    return {prefix[:-1]: value}


def _at(model: Any, path: str) -> Any:
    """The validated value at a dotted path, or None where the row or answer is not there."""
    for part in path.split("."):
        if model is None:
            return None
        if part.isdigit():
            items = list(model)
            model = items[int(part)] if int(part) < len(items) else None
        else:
            model = getattr(model, part, None)
    return model


_QUESTION_WORDS = {"what", "who", "how", "when", "where", "why", "which"}


def _said(label: str) -> str:
    """A printed label as words in a sentence: "Review date" -> "the review date";
    "Outcomes, row 1, Outcome" -> "the outcome in outcomes, row 1"; acronyms keep their capitals."""

    def lower(words: str) -> str:
        first, _, rest = words.partition(" ")
        first = first if first.isupper() and len(first) > 1 else first[:1].lower() + first[1:]
        return f"{first} {rest}".strip()

    parts = [p.strip() for p in label.split(",")]
    if len(parts) == 1:
        first = label.split(" ", 1)[0].casefold()
        if first in _QUESTION_WORDS:
            return f"“{label}”"  # "What parents will do at home" reads as a quotation, not a noun
        return lower(label) if first == "the" else f"the {lower(label)}"
    return f"the {lower(parts[-1])} in {lower(', '.join(parts[:-1]))}"


def correction_lines(kind: FormKind, before: FormModel, after: FormModel) -> list[str]:
    """What a corrected form changed, one short sentence each, by the labels printed on the
    form: ["Corrected: the review date is now 16 March 2026"]. Empty when the answers are the same."""
    from senforms.layout import fields  # layout imports the kinds; kept local to keep this module light

    old, new = _flatten(before.model_dump(mode="json")), _flatten(after.model_dump(mode="json"))
    printed = fields(kind)
    changed = [path for path in printed if old.get(path) != new.get(path)]
    # Answers with no box of their own (none today) still count as changes.
    changed += sorted(p for p in old.keys() | new.keys() if p not in printed and old.get(p) != new.get(p))
    lines = []
    for path in changed[:_NAMED_CHANGES]:
        label = printed[path].label if path in printed else path.replace("_", " ").replace(".", ", ")
        shown = display(_at(after, path))
        if isinstance(shown, list):
            shown = ", ".join(str(s) for s in shown)
        shown = str(shown)
        if not shown:
            lines.append(f"Corrected: {_said(label)} is now blank")
        elif len(shown) > _SHORT_ANSWER or "\n" in shown:
            lines.append(f"Corrected: {_said(label)} has changed")
        else:
            lines.append(f"Corrected: {_said(label)} is now {shown}")
    if len(changed) > _NAMED_CHANGES:
        rest = len(changed) - _NAMED_CHANGES
        lines.append(f"Corrected: {rest} other answer{'s' if rest != 1 else ''} changed too")
    return lines
