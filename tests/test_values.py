from datetime import date

import pytest
from pydantic import TypeAdapter, ValidationError

from senforms.values import (
    UPN,
    UKDate,
    accent_only,
    name_difference,
    parse_need_code,
    parse_uk_date,
    same_name,
    tidy_name,
    upn_difference,
    upn_warnings,
)

upn = TypeAdapter(UPN)


@pytest.mark.parametrize("value", ["H801200001001", "G80120000101A", "B801200005001", "X00180001701A", "P207000016049"])
def test_valid_upns_from_domain_notes(value: str) -> None:
    assert upn.validate_python(value) == value


@pytest.mark.parametrize(
    ("value", "expected"), [("Z801200001001", "H"), ("A801200005001", "B"), ("Q207000016049", "P")]
)
def test_wrong_check_letter_names_the_likely_letter(value: str, expected: str) -> None:
    with pytest.raises(ValidationError) as err:
        upn.validate_python(value)
    message = err.value.errors()[0]["msg"]
    assert "wrong check letter" in message
    assert f"would be {expected}" in message


def test_upn_is_tidied_and_shape_checked() -> None:
    assert upn.validate_python(" h801 2000 01001 ") == "H801200001001"
    with pytest.raises(ValidationError, match="13 characters"):
        upn.validate_python("H8012000010")


def test_unknown_local_authority_is_a_warning_not_an_error() -> None:
    assert upn.validate_python("X00180001701A") == "X00180001701A"
    assert "001" in upn_warnings("X00180001701A")[0]
    assert upn_warnings("H801200001001") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12/03/2026", date(2026, 3, 12)),
        ("12.3.26", date(2026, 3, 12)),
        ("12 March 2026", date(2026, 3, 12)),
        ("12th Mar 2026", date(2026, 3, 12)),
        ("Thursday 12 March 2026", date(2026, 3, 12)),
        ("1-4-2026", date(2026, 4, 1)),
        ("2026-03-12", date(2026, 3, 12)),
    ],
)
def test_dates_are_read_day_first(text: str, expected: date) -> None:
    assert parse_uk_date(text) == expected


def test_a_date_that_does_not_exist_is_named() -> None:
    with pytest.raises(ValidationError, match="31/02/2026 is not a real date"):
        TypeAdapter(UKDate).validate_python("31/02/2026")
    with pytest.raises(ValidationError, match="write it like 12/03/2026"):
        TypeAdapter(UKDate).validate_python("next Tuesday")


def test_need_codes_accept_code_or_dropdown_text() -> None:
    assert parse_need_code("SEMH") == "SEMH"
    assert parse_need_code("spld") == "SPLD"
    assert parse_need_code("ASD - Autistic spectrum disorder") == "ASD"
    assert parse_need_code("") is None
    with pytest.raises(Exception, match="not a census need code"):
        parse_need_code("ADHD")


# --- names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Zoë", "Zoe\u0308"),  # one code point, or e + combining diaeresis
        ("O'Brien", "O’Brien"),
        ("O'Brien", "o‘brien"),
        ("O'Brien", "OʼBrien"),
        ("O'Brien", "O`Brien"),
        ("Smith-Jones", "Smith–Jones"),
        ("Smith-Jones", "Smith\u2011Jones"),  # Word's non-breaking hyphen
        ("Smith-Jones", "SMITH — JONES"),
        ("Mary Ann", " mary\u00a0 ann "),
        ("Amelia", "Ame\u200blia\u202e"),  # zero-width space, right-to-left override
        ("Straße", "STRASSE"),
    ],
)
def test_the_same_name_written_differently_is_the_same_name(a: str, b: str) -> None:
    assert same_name(a, b)
    assert not accent_only(a, b)


@pytest.mark.parametrize(("a", "b"), [("Zoe", "Zoë"), ("Jose", "José"), ("Bronte", "Brontë")])
def test_an_accent_only_difference_is_not_the_same_name_but_is_named(a: str, b: str) -> None:
    assert not same_name(a, b)
    assert accent_only(a, b)
    accented = next(c for c in b if not c.isascii())
    assert f"the accent on {accented}" in name_difference(a, b)


def test_letters_that_look_alike_are_named() -> None:
    # A Cyrillic а pasted into a Latin name looks the same on screen: the note must say what differs.
    explained = name_difference("H\u0430rt", "Hart")
    assert "cyrillic small letter a" in explained and "latin" not in explained.split("where")[0]
    # An ordinary typo is plain to see, and needs no explanation.
    assert name_difference("Browne", "Brown") == ""


def test_tidy_name_keeps_one_spelling_of_each_letter() -> None:
    assert tidy_name(" Zoe\u0308\u200b  Brown ") == "Zoë Brown"


def test_a_upn_slip_is_described() -> None:
    assert upn_difference("T801200005013", "Q801200005031") == "characters 12 and 13 are swapped"
    assert upn_difference("R801200005051", "F801200005052") == "only character 13 differs"
    assert upn_difference("R801200005051", "H801200001001") is None
