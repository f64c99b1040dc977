"""What a letter template is given: the school, the pupil, the form, and the pupil's history.

The names here are the ones documented for schools in ``templates/letters/README.md``; every
value is display text (dates as "12 March 2026", choices as their printed words).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
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
#: Titles a letter may greet by ("Dear Mme Brontë"); contacts from a roll often carry French or
#: professional ones. Not Sir or Dame, which go with the forename.
TITLES = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Rev", "Revd", "Mme", "Mlle")
#: Words after a name that are not the surname, and lower-case particles that are part of it.
SUFFIXES = ("jr", "jnr", "sr", "snr", "ii", "iii")
PARTICLES = (
    "de",
    "da",
    "di",
    "du",
    "del",
    "della",
    "der",
    "den",
    "van",
    "von",
    "ter",
    "ten",
    "le",
    "la",
    "bin",
    "al",
    "el",
)
NO_NAME = "Dear Parent or Carer"


def _titled(name: str) -> tuple[str, str] | None:
    """("Mrs", "Clarke") for "Mrs Joanne Clarke" or "mrs. clarke"; None when the name has no title."""
    words = name.split()
    title = words[0].rstrip(".").capitalize() if words else ""
    if title in TITLES and len(words) >= 2:
        rest = words[1:]
        while len(rest) > 1 and rest[-1].rstrip(".").casefold() in SUFFIXES:
            rest = rest[:-1]
        # "Mrs Anne de Vries" is Mrs de Vries: the particles before the last word belong to it.
        start = len(rest) - 1
        # A first word is a particle only when typed as one ("Mrs de Vries"; "Mr Al Smith" is Al).
        while start > 0 and rest[start - 1].casefold() in PARTICLES and (start > 1 or rest[0].islower()):
            start -= 1
        return title, " ".join(rest[start:])
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
                # Each person on their own, for a reply slip with a line for each to sign.
                "people": [p.name for p in people],
                "address": address,
                "greeting": salutation([p.name for p in people]),
                "email": contact.email or "",
                "preferred_contact": display(contact.preferred_contact),
            }
        )
    return out


# A reply asked of parents (the specialist letter's consent slip) is due two calendar weeks after
# the letter's date: ten school days in term time, the usual time a school allows for a reply
# slip. Counted in calendar days, not school days, because senforms does not know the school's
# term dates; two weeks from a weekday is the same weekday, so the date is never a weekend.
REPLY_DAYS = 14


def reply_by(today: date) -> date:
    """The date a reply to a letter written on ``today`` is asked for."""
    return today + timedelta(days=REPLY_DAYS)


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


#: Dates a letter gives as still to come ("We will agree a support plan with you at our next
#: meeting on ...", "Our next review is on ...").
_TO_COME = ("next_meeting_date", "next_review_date")


def still_to_come(shown: dict[str, Any], form: BaseModel, today: date) -> dict[str, Any]:
    """The form's answers for a letter written ``today``, less any date "to come" that has already
    passed: a form typed up weeks after its meeting must not tell parents that a meeting already
    gone by is still ahead. The letter then leaves that sentence out (its templates say these dates
    only ``{% if %}`` they are given); the archive keeps the form as it was written."""
    for key in _TO_COME:
        when = getattr(form, key, None)
        if isinstance(when, date) and when < today and key in shown:
            shown[key] = ""
    if isinstance(form, SupportPlan):
        # The plan's review date is the plan's, and stays in it; "we will meet again on" that
        # date is said only while it is still ahead (a plan typed up after its review).
        shown["review_ahead"] = form.review_date >= today
    return shown


def strengths(history: History) -> str:
    """The pupil's strengths as the latest early discussion wrote them: the staff briefing starts
    with them, so staff meet the child before the difficulty. Empty when there is none on record."""
    early = history.early
    return early[-1].strengths if early else ""


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
    correction: Sequence[str] = (),
) -> dict[str, Any]:
    pupil: Pupil = form.pupil  # type: ignore[attr-defined]
    households = recipients(pupil)
    return {
        "school": _settings_part("school", settings.school),
        "signatory": _settings_part("signatory", settings.signatory),
        "sendiass": _settings_part("sendiass", settings.sendiass),
        "today": long_date(today),
        "reply_by": long_date(reply_by(today)),
        "corrected": corrected,
        "correction": list(correction),
        "pupil": pupil_context(pupil),
        "greeting": greeting(pupil),
        "recipients": households,
        "address_block": address_block(households),
        "form": still_to_come(form_context(form), form, today),
        "strengths": strengths(history),
        "review": review_context(form),
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


# --- the annual report to parents (6.64) -----------------------------------------------------------

#: A rating as parents read it: "not yet" says the door is still open, as the review letters do.
_RATING_WORDS = {"achieved": "Achieved", "partly": "Partly achieved", "not-achieved": "Not yet achieved"}

#: What a review decided, finishing "At the review on 10 March 2026 we agreed to ...".
_DECISION_WORDS = {
    "continue": "carry on with the same plan",
    "revise": "change some of the outcomes or some of the help",
    "specialist": "ask a specialist for advice",
    "ehc": "ask the council for an Education, Health and Care (EHC) needs assessment",
    "end": "end SEN support",
}

#: Each kind of form as a meeting with parents, in parents' words.
_MEETING_WORDS = {
    "early-discussion": "our first talk about what help is needed",
    "support-plan": "a meeting to agree the support plan",
    "review": "a review of the support plan",
    "parent-meeting": "a meeting with you",
}


def _kind_of(form: FormModel) -> FormKind | None:
    from senforms.kinds import KINDS

    return next((k for k in KINDS.values() if type(form) is k.model), None)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _in_words(items: list[str]) -> str:
    """["a", "b", "c"] as "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def annual_report_context(
    settings: Settings,
    pupil: Pupil,
    history: History,
    *,
    since: date,
    until: date,
    today: date,
    household: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the annual report to parents (Code of Practice 6.64) is given: the school year from
    ``since`` to ``until`` as the pupil's current forms record it. Everything said about the child
    is counted or copied from those forms, never assumed: the summary counts the latest rating of
    each outcome, and an empty part of the year is said to be empty.

    ``household`` is one entry of ``recipients``: the copy for the people at that address (parents
    who live apart each get their own). Without it, the letter is addressed to every household, as
    the other letters are.

    Keys beyond the shared ones (school, pupil, greeting, ...): ``report`` with ``since``,
    ``until``, ``summary`` (sentences), ``cycles``, ``outcomes`` (each with ``ratings``: ``date``,
    ``rating``, ``evidence``), ``provision`` (``what``, ``who``, ``frequency``), ``meetings``
    (``date``, ``what``), ``meetings_sentence`` and ``next`` (sentences)."""
    known_as = pupil.known_as
    households = recipients(pupil)
    chosen = [household] if household is not None else households

    def within(day: date) -> bool:
        return since <= day <= until

    cycles = [
        c
        for _, c in sorted(history.cycles.items())
        if (c.plan is not None and c.plan.plan_date <= until and (c.review is None or c.review.review_date >= since))
        or (c.plan is None and c.review is not None and within(c.review.review_date))
    ]
    reviews = [c.review for c in cycles if c.review is not None and within(c.review.review_date)]

    # Each outcome once, matched across plans and reviews by fold_outcome, in the order first met.
    outcomes: dict[str, dict[str, Any]] = {}
    for c in cycles:
        for o in c.plan.outcomes if c.plan else []:
            outcomes.setdefault(fold_outcome(o.description), {"description": o.description, "ratings": []})
        if c.review is not None and within(c.review.review_date):
            for r in c.review.outcomes:
                entry = outcomes.setdefault(fold_outcome(r.description), {"description": r.description, "ratings": []})
                entry["ratings"].append(
                    {
                        "date": long_date(c.review.review_date),
                        "rating": _RATING_WORDS[r.rating.value],
                        "value": r.rating.value,
                        "evidence": r.evidence or "",
                    }
                )
    for entry in outcomes.values():
        entry["progress"] = (
            "\n".join(
                f"{r['date']}: {r['rating']}." + (f" {r['evidence'].rstrip('.')}." if r["evidence"] else "")
                for r in entry["ratings"]
            )
            or "Not reviewed yet."
        )

    summary: list[str] = []
    if reviews:
        summary.append(f"We reviewed {known_as}'s plan {_times(len(reviews))} this year.")
        # With more than one review, each outcome is counted by its latest rating, and said so.
        when = " when last reviewed" if len(reviews) > 1 else ""
        latest = [e["ratings"][-1]["value"] for e in outcomes.values() if e["ratings"]]
        counts = [
            (latest.count("achieved"), "achieved"),
            (latest.count("partly"), "partly achieved"),
            (latest.count("not-achieved"), "not yet achieved"),
        ]
        if len(latest) == 1:
            summary.append(f"The one outcome we reviewed was {_RATING_WORDS[latest[0]].lower()}{when}.")
        elif latest:
            parts = [f"{n} {'was' if n == 1 else 'were'} {words}" for n, words in counts if n]
            summary.append(f"Of the {len(latest)} outcomes we reviewed, {_in_words(parts)}{when}.")
        if latest and all(v == "achieved" for v in latest):
            summary.append(f"{known_as} achieved every outcome we reviewed{when}.")
    elif cycles:
        summary.append(f"We have not reviewed {known_as}'s plan yet this year, so there are no results to report.")
    else:
        summary.append(f"We have not yet made a support plan for {known_as} this year.")

    provision: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for c in cycles:
        for p in c.plan.provision if c.plan else []:
            key = (fold_outcome(p.what), fold_outcome(p.who or ""), fold_outcome(p.frequency or ""))
            if key not in seen:
                seen.add(key)
                provision.append({"what": p.what, "who": p.who or "", "frequency": p.frequency or ""})

    # One entry a day: a review and the next plan agreed at one sitting are one meeting (6.65).
    held_on: dict[date, list[str]] = {}
    for form in history.forms:
        kind = _kind_of(form)
        if kind is None:
            continue
        held = getattr(form, kind.meeting_date)
        if within(held):
            what = _MEETING_WORDS.get(kind.slug, "a meeting")
            if what not in held_on.setdefault(held, []):
                held_on[held].append(what)
    meetings = [{"date": long_date(day), "what": _in_words(whats)} for day, whats in sorted(held_on.items())]
    meetings_sentence = (
        f"We met to talk about {known_as} {_times(len(meetings))} this year:"
        if meetings
        else f"We have no meetings about {known_as} on record this year."
    )

    next_steps: list[str] = []
    every = [c for _, c in sorted(history.cycles.items())]
    last = every[-1] if every else None
    if last is None:
        next_steps.append(f"We will make a support plan with you for {known_as}.")
    elif last.review is None and last.plan is not None:
        due = last.plan.review_date
        if due >= today:
            next_steps.append(f"We will review {known_as}'s plan with you on {long_date(due)}.")
        else:
            next_steps.append(
                f"The review of {known_as}'s plan was due on {long_date(due)} and has not happened yet. "
                "We will contact you to arrange it."
            )
    elif last.review is not None:
        review = last.review
        next_steps.append(
            f"At the review on {long_date(review.review_date)} we agreed to "
            f"{_DECISION_WORDS.get(review.decision.value, review.decision.label.lower())}."
        )
        if review.next_review_date is not None and review.next_review_date >= today:
            next_steps.append(f"The next review is planned for {long_date(review.next_review_date)}.")
        elif review.next_review_date is not None:
            next_steps.append(
                f"The next review was planned for {long_date(review.next_review_date)} and has not happened "
                "yet. We will contact you to arrange it."
            )

    return {
        "school": _settings_part("school", settings.school),
        "signatory": _settings_part("signatory", settings.signatory),
        "sendiass": _settings_part("sendiass", settings.sendiass),
        "today": long_date(today),
        "corrected": False,
        "correction": [],
        "pupil": pupil_context(pupil),
        "greeting": chosen[0]["greeting"] if household is not None else greeting(pupil),
        "recipients": chosen,
        "address_block": address_block(chosen),
        "report": {
            "since": long_date(since),
            "until": long_date(until),
            "summary": summary,
            "cycles": [
                {
                    "plan_date": long_date(c.plan.plan_date) if c.plan else "",
                    "review_date": long_date(c.review.review_date) if c.review else "",
                }
                for c in cycles
            ],
            "outcomes": list(outcomes.values()),
            "provision": provision,
            "meetings": meetings,
            "meetings_sentence": meetings_sentence,
            "next": next_steps,
        },
    }
