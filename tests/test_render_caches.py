"""What render and the pre-filled forms keep between documents (a header or footer as last
written, the core properties for a title and date, the blank form's trees) never changes a
document: each comes out byte for byte as it does from cold caches, in any order, from any thread."""

from __future__ import annotations

import io
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

from senforms import render, wordform
from senforms.documents import sample_context
from senforms.kinds import KINDS
from senforms.letters import LETTERS
from senforms.render import TEMPLATES, render_docx
from senforms.wordform import make_form
from tests.pipeline_helpers import pupil_upn, values

_PUPILS = [
    {"known_as": "Ada", "surname": "Quillfeather", "upn": pupil_upn(1)},
    {"known_as": "Tom & Jerry <b>", "surname": "{{ pupil.upn }}", "upn": pupil_upn(2)},
    {"known_as": "Zoë", "surname": "O'Brien\tŁukasz", "upn": pupil_upn(3)},
]


def _context(name: str, pupil: dict[str, str]) -> dict[str, Any]:
    context = sample_context(name)
    context["pupil"] = context["pupil"] | pupil | {"full_name": f"{pupil['known_as']} {pupil['surname']}"}
    return context


def _calls() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    calls = []
    for name in LETTERS:
        for i, pupil in enumerate(_PUPILS):
            written = {"title": f"Letter {i % 2} for {pupil['known_as']}", "written": date(2026, 11, 20 + i % 2)}
            calls.append((name, _context(name, pupil), written if i else {}))
    return calls


def _cold() -> None:
    """Every cache of compiled letters and taken-apart blanks emptied. The blank's bytes
    (``_template_bytes``) are kept: python-docx stamps its zip entries with the time it saves."""
    render._CACHE.clear()
    wordform._blank.cache_clear()


def _parts(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def test_a_letter_is_the_same_bytes_from_cold_caches_and_after_other_pupils_letters() -> None:
    calls = _calls()
    cold = []
    for name, context, kw in calls:
        _cold()
        cold.append(render_docx(TEMPLATES / "letters" / f"{name}.docx", context, **kw))
    # Warm, each letter after the others, twice over in different orders.
    for order in (range(len(calls)), reversed(range(len(calls)))):
        for i in order:
            name, context, kw = calls[i]
            warm = render_docx(TEMPLATES / "letters" / f"{name}.docx", context, **kw)
            assert warm == cold[i], (name, [n for (n, a), (_, b) in zip(_parts(warm), _parts(cold[i]), strict=False) if a != b])
    # The pupils' names are in the letters that name them and no other.
    for (_, context, _), data in zip(calls, cold, strict=True):
        text = b"".join(part for _, part in _parts(data))
        others = [p["upn"] for p in _PUPILS if p["upn"] != context["pupil"]["upn"]]
        assert not any(upn.encode() in text for upn in others)


def _forms() -> list[tuple[str, dict[str, Any]]]:
    return [
        (slug, values(slug, pupil={"upn": pupil_upn(n), "legal_surname": surname}))
        for slug in ("early-discussion", "support-plan", "review")
        for n, surname in ((1, "Quillfeather"), (2, "Zebedee & <Sons>"), (3, "Ó Briain"))
    ]


def test_a_prefilled_form_is_the_same_bytes_from_cold_caches_in_any_order_and_any_thread() -> None:
    forms = _forms()
    cold = []
    for slug, answers in forms:
        _cold()
        cold.append(make_form(KINDS[slug], school="Oakfield Primary School", values=answers))

    def fill(i: int) -> bytes:
        slug, answers = forms[i]
        return make_form(KINDS[slug], school="Oakfield Primary School", values=answers)

    # The blank's trees are filled in place for a moment: four threads at once must not see
    # each other's answers, and the blank must be blank afterwards.
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            assert list(pool.map(fill, range(len(forms)))) == cold
    _cold()
    blank = make_form(KINDS["support-plan"], school="Oakfield Primary School")
    fill(0)
    assert make_form(KINDS["support-plan"], school="Oakfield Primary School") == blank
    document = dict(_parts(blank))["word/document.xml"]
    assert b"Quillfeather" not in document and b"Zebedee" not in document
