"""Value types that forms share: dates as people in England type them, UPNs, need codes, choices.

Each parser raises ``PydanticCustomError`` with a message an office worker can act on; the
validation step prefixes it with the label printed on the form.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError
from stdnum.gb import upn as stdnum_upn


def _problem(message: str) -> PydanticCustomError:
    return PydanticCustomError("senforms", message)


# --- dates -----------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_NUMERIC = re.compile(r"^(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{2}|\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:T[\d:.]+Z?)?$")
_WORDS = re.compile(r"^(?:[a-z]+day,?\s+)?(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+([a-z]+)\.?,?\s+(\d{2}|\d{4})$")


def _full_year(text: str) -> int:
    year = int(text)
    if len(text) == 4:
        return year
    # Two-digit years on school forms are recent or near future (review dates), or a
    # parent's date of birth from the last century.
    this_year = date.today().year % 100
    return 2000 + year if year <= this_year + 10 else 1900 + year


def parse_uk_date(value: Any) -> date | None:
    """Read a date the way people in England type it: day first."""
    if value is None or isinstance(value, date):
        return value
    text = " ".join(str(value).strip().lower().split())
    if not text:
        return None
    if m := _ISO.match(text):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _NUMERIC.match(text):
        day, month, year = int(m[1]), int(m[2]), _full_year(m[3])
    elif (m := _WORDS.match(text)) and m[2] in _MONTHS:
        day, month, year = int(m[1]), _MONTHS[m[2]], _full_year(m[3])
    else:
        raise _problem(f"{str(value).strip()!r} is not a date senforms can read; write it like 12/03/2026")
    try:
        return date(year, month, day)
    except ValueError:
        raise _problem(f"{str(value).strip()} is not a real date") from None


def format_uk_date(value: date) -> str:
    return value.strftime("%d/%m/%Y")


#: The month a school year starts: English schools' years run from 1 September to 31 August.
SCHOOL_YEAR_STARTS = 9


def school_year_start(day: date) -> date:
    """1 September of the school year ``day`` falls in (the register's meetings, the digest,
    the annual report and the provision map all count from it)."""
    return date(day.year if day.month >= SCHOOL_YEAR_STARTS else day.year - 1, SCHOOL_YEAR_STARTS, 1)


UKDate = Annotated[date, BeforeValidator(parse_uk_date)]


# --- UPN -------------------------------------------------------------------------------------

_UPN = re.compile(r"^[A-Z]\d{11}[0-9A-Z]$")
_CHECK_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"


def upn_check_letter(upn: str) -> str:
    """The check letter a UPN should start with (python-stdnum does the arithmetic)."""
    return stdnum_upn.calc_check_digit(upn[1:])


def is_temporary_upn(upn: str) -> bool:
    return upn[-1].isalpha()


def upn_difference(typed: str, other: str) -> str | None:
    """How two UPNs of 13 characters differ, when it looks like a slip of the keyboard: two
    characters swapped, or one character different. None when they differ more than that."""
    if len(typed) != len(other) or typed == other:
        return None
    places = [i for i, (a, b) in enumerate(zip(typed, other, strict=True)) if a != b]
    body = [i for i in places if i > 0]  # the check letter follows the digits, so it differs too
    if len(body) == 2 and typed[body[0]] == other[body[1]] and typed[body[1]] == other[body[0]]:
        return f"characters {body[0] + 1} and {body[1] + 1} are swapped"
    if len(body) == 1:
        return f"only character {body[0] + 1} differs"
    return None


def parse_upn(value: Any) -> str:
    text = re.sub(r"[\s-]", "", str(value or "")).upper()
    if not text:
        raise _problem("this must be filled in")
    if len(text) != 13 or not _UPN.match(text) or (text[-1].isalpha() and text[-1] not in _CHECK_LETTERS):
        raise _problem(
            f"{str(value).strip()} is not a UPN; a UPN is 13 characters: a letter, 11 digits, and a digit or letter"
        )
    expected = upn_check_letter(text)
    if text[0] != expected:
        raise _problem(
            f"{text} has the wrong check letter, so one character is probably mistyped "
            f"(with these digits the first letter would be {expected}); check it against the school's records"
        )
    return text


def upn_problem(value: Any, exc: PydanticCustomError) -> str:
    """``parse_upn``'s complaint as one sentence, naming what was typed once."""
    message = exc.message()
    typed = str(value).strip()
    if typed and typed.upper().replace(" ", "") in message.upper().replace(" ", ""):
        return message + "."  # it begins with what was typed, as typed
    return f"{typed!r} is not a UPN: {message}."


def upn_warnings(upn: str) -> list[str]:
    """Local-authority numbers change over time, so an unknown one is a warning, not an error."""
    if int(upn[1:4]) not in stdnum_upn._la_numbers:
        return [f"UPN {upn}: local authority number {upn[1:4]} is not on senforms' list; check it"]
    return []


UPN = Annotated[str, BeforeValidator(parse_upn)]


# --- names: compared as people mean them -------------------------------------------------------

# Word turns ' into a curly apostrophe as people type; other programs use the modifier letter
# or the backtick. All are the same apostrophe in a name (O'Brien).
_APOSTROPHES = dict.fromkeys(map(ord, "\u2019\u2018\u02bc\u0060\u00b4\u2032\u201b"), "'")
# Hyphens and dashes: Word's non-breaking hyphen (U+2011), AutoCorrect's en and em dashes.
_HYPHENS = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"), "-")


def _invisible(char: str) -> bool:
    """Zero-width spaces and joiners, the byte-order mark, soft hyphens and the marks that change
    the direction of text: Unicode's "format" characters, which print as nothing."""
    return unicodedata.category(char) == "Cf"


def name_key(text: str | None) -> str:
    """A name as it is compared: NFC, invisible characters dropped, apostrophes and hyphens
    unified, spaces collapsed (also around hyphens), case folded. "O’Brien" and "o'brien", or
    "Zoë" typed as e + combining diaeresis and "Zoë" typed as one letter, have the same key."""
    text = unicodedata.normalize("NFC", text or "")
    text = "".join(c for c in text if not _invisible(c)).translate(_APOSTROPHES).translate(_HYPHENS)
    text = " ".join(text.split())
    text = re.sub(r"\s*([-'])\s*", r"\1", text)
    return unicodedata.normalize("NFC", text.casefold())


def without_accents(text: str) -> str:
    """A name key with accents taken off its letters: "zoë" -> "zoe"."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def same_name(a: str | None, b: str | None) -> bool:
    return name_key(a) == name_key(b)


def accent_only(a: str | None, b: str | None) -> bool:
    """The two names differ, but only in accents ("Zoe" and "Zoë"): probably one is a typo."""
    ka, kb = name_key(a), name_key(b)
    return ka != kb and without_accents(ka) == without_accents(kb)


def tidy_name(text: str) -> str:
    """The spelling kept in the archive: NFC (one code point per accented letter, as Windows
    keyboards type it), invisible characters dropped, spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    return " ".join("".join(c for c in text if not _invisible(c)).split())


def _letter(char: str) -> str:
    """A character named so that a person can tell it from one that looks the same."""
    name = unicodedata.name(char, "").lower()
    if char in " \u00a0":
        return "a space"
    if ord(char) < 128 and char.isalnum():
        return f"'{char}'"
    return f"'{char}' ({name or f'U+{ord(char):04X}'})" if name else f"U+{ord(char):04X}"


def name_difference(form: str, archive: str) -> str:
    """What differs between two spellings of a name, in words, for names that may look alike:
    "the only difference is the accent on ë (Zoë in the archive, Zoe on the form)". Empty when
    the difference is plain to see (different letters in the same script)."""
    a, b = tidy_name(form), tidy_name(archive)
    if accent_only(a, b):
        accented = sorted(
            {
                c
                for x, y in zip(unicodedata.normalize("NFC", a), unicodedata.normalize("NFC", b), strict=False)
                if x != y
                for c in (x, y)
                if unicodedata.normalize("NFD", c) != c
            }
        )
        if len(a) != len(b) or not accented:
            return "the names differ only in their accents"
        marks = " and ".join(f"the accent on {c}" for c in accented)
        return f"the only difference is {marks}, so one of the two is probably a typo"
    # Letters that look alike but are not the same (a Cyrillic а in a Latin name, say): name them.
    from difflib import SequenceMatcher

    parts = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        changed = a[i1:i2] + b[j1:j2]
        if all(c.isascii() and c.isalnum() for c in changed):
            continue
        form_part = ", ".join(_letter(c) for c in a[i1:i2]) or "nothing"
        archive_part = ", ".join(_letter(c) for c in b[j1:j2]) or "nothing"
        parts.append(f"the form has {form_part} where the archive has {archive_part}")
    return "; ".join(parts)


# --- need codes: data a school can update ------------------------------------------------------


@cache
def need_codes() -> dict[str, str]:
    """Census type-of-need codes and their descriptions, from data rather than code, since
    the DfE adds categories (Down syndrome from January 2025)."""
    text = resources.files("senforms.data").joinpath("need_codes.csv").read_text(encoding="utf-8")
    return {row["code"]: row["description"] for row in csv.DictReader(text.splitlines())}


def parse_need_code(value: Any) -> str | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    codes = need_codes()
    code = text.split()[0].strip(" -:").upper()
    if code in codes:
        return code
    for known, description in codes.items():
        if text.casefold() == description.casefold():
            return known
    raise _problem(f"{text!r} is not a census need code; choose one of {', '.join(codes)}")


NeedCode = Annotated[str, BeforeValidator(parse_need_code)]


# --- choices: a dropdown's stored value and the words printed for it ---------------------------


class Choice(StrEnum):
    """A dropdown answer: the value is stored, the label is what the form shows."""

    label: str

    def __new__(cls, value: str, label: str) -> Choice:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    @classmethod
    def _missing_(cls, value: object) -> Choice | None:
        wanted = _fold(str(value))
        for member in cls:
            if wanted in (_fold(member.value), _fold(member.label)):
                return member
        return None


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.casefold()).strip()


# --- ticks written as words ----------------------------------------------------------------------

# What people write in a tick box's place (the box deleted, or a Google Docs copy with no box):
# words that plainly say yes or no. Anything else ("Not yet - next meeting", "maybe") is neither,
# and is a problem to put right, never a guess.
TICK_WORDS = frozenset({"yes", "y", "agreed", "agree", "ticked", "tick", "x", "checked", "true"})
UNTICK_WORDS = frozenset({"no", "n", "not yet", "not agreed", "unticked", "false"})


def parse_tick_word(text: str) -> bool | None:
    """True or False for a word that says yes or no, else None. Case and punctuation are
    ignored ("Yes.", "AGREED!"), not wording ("Not yet - next meeting" is None)."""
    folded = _fold(text)
    if folded in TICK_WORDS:
        return True
    if folded in UNTICK_WORDS:
        return False
    return None


# --- small scalars ----------------------------------------------------------------------------


def parse_money(value: Any) -> Decimal | None:
    if value is None or not str(value).strip():
        return None
    text = str(value).strip().replace("£", "").replace(",", "").removesuffix("per week").strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise _problem(f"{str(value).strip()!r} is not an amount of money; write it like 12.50") from None
    if amount < 0:
        raise _problem("a cost cannot be negative")
    return amount.quantize(Decimal("0.01"))


Money = Annotated[Decimal, BeforeValidator(parse_money), PlainSerializer(lambda d: str(d), return_type=str)]


def parse_whole_number(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"\d+", text):
        raise _problem(f"{text!r} is not a whole number")
    return int(text)


WholeNumber = Annotated[int, BeforeValidator(parse_whole_number)]


def _clean_text(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Strip control characters other than tab and newline, and trailing spaces on each line."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def _not_blank(value: str) -> str:
    if not value:
        raise _problem("this must be filled in")
    return value


Text = Annotated[str, BeforeValidator(_clean_text), AfterValidator(_not_blank)]


def fold_outcome(text: str) -> str:
    """An outcome's words as compared across plans and reviews: the same outcome copied from one
    form to the next keeps its words but not always its case, spacing, accents' encoding or
    punctuation. The one matching used by the rules, the record and the letters."""
    import unicodedata

    text = unicodedata.normalize("NFKC", text).casefold().replace("&", "and")
    return re.sub(r"[^\w£]+", " ", text).strip()
