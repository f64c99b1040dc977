"""How often and how long, as staff write it on a plan ("3 x 20 min weekly", "Daily, 20
minutes", "Mon/Wed 30 mins"), read as minutes a week; and group sizes ("1:4", "pair").

What cannot be read for certain is reported as unread, with the reason, never guessed: a
provision map that silently invents hours is worse than one that says which rows to check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: A school week: "daily" means each school day.
SCHOOL_DAYS = 5

_NUMBER_WORDS = {"once": 1, "twice": 2, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "a": 1, "an": 1}
_NUM = r"(\d+(?:\.\d+)?|one|two|three|four|five|six|an?|half an?)"
_DURATION = re.compile(
    rf"(?P<n>{_NUM})\s*(?:-|\s)?\s*(?P<unit>minutes?|mins?|m\b|hours?|hrs?|h\b)", re.IGNORECASE
)
_COUNT = re.compile(
    r"(?P<n>\d+|one|two|three|four|five|six)\s*(?:x|×|\*|times?|sessions?(?: of)?|lessons?(?: of)?)(?=\W|\d|$)"
    r"|\b(?P<w>once|twice)\b",
    re.IGNORECASE,
)
_RANGE = re.compile(r"\d\s*(?:or|-|–|to)\s*\d+(?:\.\d+)?\s*(?:minutes?|mins?|hours?|hrs?)\b", re.I)
_DAILY = re.compile(r"\b(daily|every day|each day|a day|per day|/\s*day|every morning|every afternoon)\b", re.I)
_WEEKLY = re.compile(r"(\bweekly\b|\ba week\b|\bper week\b|/\s*(?:wk|week)\b|\beach week\b|\bevery week\b|\bpw\b|\bp/w\b)", re.I)
_FORTNIGHTLY = re.compile(r"\b(fortnightly|every two weeks|every 2 weeks|a fortnight)\b", re.I)
_OTHER_PERIOD = re.compile(r"\b(monthly|a month|per month|termly|a term|per term|half[- ]termly|yearly|annually)\b", re.I)
_DAYS = re.compile(r"\b(mon|tue|tues|wed|thu|thur|thurs|fri)(?:day)?s?\b", re.I)


@dataclass(frozen=True)
class Frequency:
    minutes_a_week: float | None
    problem: str | None = None  # why it could not be read, in words a SENCO can act on

    @property
    def hours_a_week(self) -> float | None:
        return None if self.minutes_a_week is None else self.minutes_a_week / 60


def _number(text: str) -> float:
    text = text.lower()
    if text.startswith("half"):
        return 0.5
    return float(_NUMBER_WORDS.get(text, text))


@lru_cache(maxsize=4096)
def parse_frequency(text: str | None) -> Frequency:
    """Minutes a week from a "How often, how long" answer, or the reason it cannot be read."""
    if text is None or not text.strip():
        return Frequency(None, "how often is not given")
    words = " ".join(text.split())
    if _RANGE.search(words):
        return Frequency(None, "a range of lengths is given; give one length")
    durations = list(_DURATION.finditer(words))
    if not durations:
        return Frequency(None, "no length of session (like 20 minutes) is given")
    minutes = 0.0
    # "1 hour 30 minutes" is one length; "20 minutes or 30 minutes" is not.
    if len(durations) == 2 and durations[0].group("unit").lower().startswith("h") and durations[1].group(
        "unit"
    ).lower().startswith("m") and durations[1].start() - durations[0].end() <= 5:
        minutes = _number(durations[0].group("n")) * 60 + _number(durations[1].group("n"))
    elif len(durations) == 1:
        d = durations[0]
        minutes = _number(d.group("n")) * (60 if d.group("unit").lower().startswith("h") else 1)
    else:
        return Frequency(None, "more than one length of session is given")
    if minutes <= 0:
        return Frequency(None, "the length of session is zero")
    rest = _DURATION.sub(" ", words)
    counts = [m for m in _COUNT.finditer(rest)]
    if len(counts) > 1:
        return Frequency(None, "more than one number of sessions is given")
    count = _number(counts[0].group("n") or counts[0].group("w")) if counts else 1.0
    days = {m.group(1).lower()[:3] for m in _DAYS.finditer(rest)}
    if _OTHER_PERIOD.search(rest):
        return Frequency(None, "not given per day or per week")
    periods = [bool(_DAILY.search(rest)), bool(_WEEKLY.search(rest)), bool(_FORTNIGHTLY.search(rest))]
    if sum(periods) > 1:
        return Frequency(None, "more than one period (daily, weekly) is given")
    if periods[0]:
        per_week = count * SCHOOL_DAYS
    elif periods[1]:
        per_week = count
    elif periods[2]:
        per_week = count / 2
    elif days:
        per_week = count * len(days)
    else:
        return Frequency(None, "no period (daily, weekly, days of the week) is given")
    return Frequency(minutes * per_week)


_GROUP_WORDS = {"individual": 1, "individually": 1, "pair": 2, "pairs": 2, "paired": 2}


@lru_cache(maxsize=1024)
def parse_group_size(text: str | None) -> int | None:
    """Pupils per adult from a "Group size" answer ("1:4", "4", "group of 6", "pair"), or None."""
    if text is None or not text.strip():
        return None
    words = " ".join(text.lower().split())
    if words in _GROUP_WORDS:
        return _GROUP_WORDS[words]
    if match := re.fullmatch(r"1\s*(?::|-|to|/)\s*(\d+)", words):
        return int(match[1]) or None
    if match := re.fullmatch(r"(?:small )?(?:group of |groups of )?(\d+)(?: pupils| children)?", words):
        return int(match[1]) or None
    return None
