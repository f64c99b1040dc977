from datetime import date

import pytest
from pydantic import TypeAdapter, ValidationError

from senforms.values import UPN, UKDate, parse_need_code, parse_uk_date, upn_warnings

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
