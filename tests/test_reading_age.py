"""Letters to parents read at a reading age of 11 or under as sent (Flesch-Kincaid grade 6.0, as
textstat computes it), closing paragraphs included."""

from __future__ import annotations

import pytest

from senforms.config import Settings
from senforms.documents import letter_text, reading_grade, sample_context
from senforms.letters import LETTERS, Audience
from senforms.render import letter_template, render_docx

PARENT_LETTERS = [name for name, letter in LETTERS.items() if letter.audience is Audience.PARENTS]


@pytest.mark.parametrize("name", PARENT_LETTERS)
def test_every_parent_letter_reads_at_eleven_or_under(settings: Settings, name: str) -> None:
    text = letter_text(render_docx(letter_template(settings, name), sample_context(name)))
    assert len(text.split()) > 80, "the whole letter is scored, not a fragment"
    assert reading_grade(text) <= 6.0


def test_the_measure_tells_hard_text_from_plain_text() -> None:
    plain = "We met to talk about Ollie. He is doing well in reading. We will meet again in March."
    hard = (
        "Notwithstanding the aforementioned considerations, the institution's statutory obligations "
        "necessitate comprehensive documentation of individualised educational interventions."
    )
    assert reading_grade(plain) <= 6.0 < reading_grade(hard)
