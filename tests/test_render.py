"""Letters from docxtpl templates, checked on the real .docx they produce."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph

from senforms.cli import main
from senforms.config import Settings
from senforms.context import review_context
from senforms.documents import check_templates, sample_context, sample_forms
from senforms.errors import ExitCode, TemplateError
from senforms.kinds import ReviewDecision
from senforms.letters import LETTERS, Audience
from senforms.render import TEMPLATES, letter_template, render_docx


def texts(data: bytes) -> list[str]:
    """Every paragraph's text, tables and footers included, line breaks as \\n."""
    doc = Document(io.BytesIO(data))
    found = [Paragraph(p, doc.part).text for p in doc.element.body.iter(qn("w:p"))]
    for section in doc.sections:
        found += [p.text for p in section.footer.paragraphs]
    return found


def text(data: bytes) -> str:
    return "\n".join(texts(data))


def render(name: str, context: dict[str, Any] | None = None) -> str:
    data = render_docx(TEMPLATES / "letters" / f"{name}.docx", context or sample_context(name))
    return text(data)


def own_template(settings: Settings, name: str, *paragraphs: str) -> Path:
    """A school's edited copy of a letter, in the home folder."""
    folder = settings.templates / "letters"
    folder.mkdir(parents=True, exist_ok=True)
    doc = Document()
    for line in paragraphs:
        doc.add_paragraph(line)
    path = folder / f"{name}.docx"
    doc.save(path)
    return path


# --- every shipped template -----------------------------------------------------------------------

KEY_SENTENCES = {
    "early-discussion-note": ["Thank you for meeting us on 3 November 2026", "We agreed that Ollie needs SEN support"],
    "sen-notification": [
        "the school has decided to make special educational provision for Ollie",
        "section 68 of the Children and Families Act 2014",
        "SEN register",
        "at least three times a year",
        "Reading and spelling are well behind his classmates.",
        "Oakshire SENDIASS gives free, confidential advice",
        "independent of the school",
    ],
    "sen-notification-with-plan": [
        "the school is making special educational provision for Ollie",
        "It is set out in Ollie's SEN support plan of 10 March 2027.",
        "section 68 of the Children and Families Act 2014",
        "Ollie has difficulty linking letters and sounds",
        "We will look at how the plan is going with you on 9 June 2027.",
        "Your copy of the plan comes with a letter of its own.",
        "Oakshire SENDIASS gives free, confidential advice",
    ],
    "plan-parent-copy": [
        "Here is your copy of Ollie's SEN support plan",
        "We will meet again on 9 June 2027",
        "Checked by his teacher reading with him each Friday.",
        "Daily phonics catch-up",
        "Read together for ten minutes most evenings",
    ],
    "staff-briefing": ["Staff briefing: Ollie Hart", "Give instructions one at a time", "Daily phonics catch-up"],
    "review-outcome": [
        "At the review on 9 June 2027 we looked at 2 targets. Ollie partly achieved 1 and did not yet achieve 1.",
        "Partly achieved",
        "Down from about twelve errors a page to seven.",
        "We would like to ask a specialist for advice",
        "Next review: 6 October 2027",
    ],
    "specialist-letter": ["We will only go ahead if you agree", "I agree to the school asking a specialist"],
    "sen-support-ended": [
        "no longer needs SEN support",
        "comes off the school's SEN register",
        "If you become worried",
    ],
    "ehc-request": ["The council has 6 weeks", "no more than 20 weeks", "Parents can ask the council"],
    "specialist-prompt": [
        "Not achieved (10 March 2027); Not achieved (9 June 2027)",
        "(6.58)",
        "the parents should always be involved in that decision (6.59)",
    ],
    "parent-meeting-note": [
        "Thank you for meeting us on 20 January 2027",
        "Send home the spelling words on Mondays",
        "25 January 2027",
        "Our next meeting: 10 March 2027",
    ],
    "annual-report": [
        "This report covers 1 September 2026 to 15 July 2027",
        "Of the 2 outcomes we reviewed, 1 was partly achieved and 1 was not yet achieved when last reviewed.",
        "9 June 2027: Not yet achieved. Eight words spelt correctly in independent writing.",
        "Daily phonics catch-up",
        "We met to talk about Ollie 5 times this year",
        "At the review on 9 June 2027 we agreed to ask a specialist for advice.",
    ],
}

PARENT_LETTERS = [n for n, letter in LETTERS.items() if letter.audience is Audience.PARENTS]


def test_every_template_has_a_form_kind_and_a_shipped_file() -> None:
    assert set(LETTERS) == set(KEY_SENTENCES)
    for name in LETTERS:
        assert (TEMPLATES / "letters" / f"{name}.docx").is_file()


@pytest.mark.parametrize("name", list(LETTERS))
def test_template_renders_with_the_sample_context(name: str) -> None:
    out = render(name)
    assert "Ollie" in out
    assert "Oakfield Primary School" in out
    for sentence in KEY_SENTENCES[name]:
        assert sentence in out, f"{name}: {sentence!r} missing"
    for marker in ("{{", "}}", "{%", "%}"):
        assert marker not in out


@pytest.mark.parametrize("name", PARENT_LETTERS)
def test_parent_letters_are_on_letterhead_and_signed(name: str) -> None:
    lines = [line for line in texts(render_docx(TEMPLATES / "letters" / f"{name}.docx", sample_context(name))) if line]
    assert lines[0] == "Oakfield Primary School"
    # The address keeps its lines as line breaks inside one paragraph.
    assert "Church Road\nOakfield\nOK1 4CD" in lines
    assert sample_context(name)["today"] in lines  # 22 November 2026; the annual report, 15 July 2027
    assert any(line.startswith("Dear ") for line in lines)
    # Signed in one paragraph: the closing, room to sign, the name, the role.
    assert "Yours sincerely\n\n\nMr Samuel Okafor\nSENCO, Oakfield Primary School" in lines
    assert "01632 960000" in "\n".join(lines)


def test_the_corrected_line_appears_only_on_a_corrected_copy() -> None:
    context = sample_context("plan-parent-copy")
    assert "Corrected copy" not in render("plan-parent-copy", context)
    context["corrected"] = True
    for name in LETTERS:
        context = sample_context(name)
        context["corrected"] = True
        assert "Corrected copy" in render(name, context), name


def test_empty_optional_values_and_empty_lists_still_render() -> None:
    plan = sample_context("plan-parent-copy")
    plan["form"]["home"] = ""
    plan["form"]["pupil_views"] = ""
    plan["sendiass"] = {"name": "", "phone": "", "website": "", "local_offer": ""}
    out = render("plan-parent-copy", plan)
    assert "What you will do at home" not in out
    review = sample_context("review-outcome")
    review["flags"] = []
    assert "No outcomes are flagged" in render("specialist-prompt", review)
    early = sample_context("early-discussion-note")
    early["form"]["areas"] = []
    early["form"]["next_meeting_date"] = ""
    early["greeting"] = "Dear parent or carer"
    out = render("sen-notification", early)
    assert "Dear parent or carer" in out
    assert "SENDIASS" in out


@pytest.mark.parametrize(
    ("decision", "words"),
    [
        ("continue", "keep the same plan for now"),  # the sample has an outcome not achieved
        ("revise", "change some of the targets"),
        ("ehc", "EHC needs assessment"),
        ("end", "SEN support for Ollie will end"),
    ],
)
def test_review_letter_explains_the_decision(decision: str, words: str) -> None:
    # The rules choose the sentence from the form (rules.review_findings); the template shows it.
    form = sample_forms()[-1]
    changed = form.model_copy(update={"decision": ReviewDecision(decision)})
    context = sample_context("review-outcome")
    context["review"] = review_context(changed)
    assert words in render("review-outcome", context)


# --- values are data -----------------------------------------------------------------------------

HOSTILE = "Zoë & <b>Ann</b> \"quoted\" 'single' {{ 7*7 }} {% if %} {_{ x %} \x00\a café"
SHOWN = "Zoë & <b>Ann</b> \"quoted\" 'single' {{ 7*7 }} {% if %} {_{ x %}  café"


@pytest.mark.parametrize("name", list(LETTERS))
def test_values_come_out_literally(name: str) -> None:
    context = sample_context(name)
    context["pupil"]["known_as"] = HOSTILE
    context["pupil"]["full_name"] = HOSTILE
    context["school"]["name"] = "St Mary & St John's <Primary>"
    if "form" in context:  # the annual report is issued by date and has no form
        context["form"]["decision"] = HOSTILE
    for key in ("strengths", "needs", "attendees"):
        if key in context.get("form", {}):
            context["form"][key] = HOSTILE + "\nsecond line"
    data = render_docx(TEMPLATES / "letters" / f"{name}.docx", context)
    out = text(data)
    assert SHOWN in out
    assert "49" not in out.replace("2026", "").replace("2027", "")
    assert "St Mary & St John's <Primary>" in out
    assert "\x00" not in out and "\a" not in out
    Document(io.BytesIO(data))  # still a valid document


def test_a_line_break_in_a_value_is_a_line_break_not_a_new_paragraph() -> None:
    context = sample_context("plan-parent-copy")
    context["form"]["needs"] = "First line\nSecond line"
    lines = texts(render_docx(TEMPLATES / "letters" / "staff-briefing.docx", context))
    assert "First line\nSecond line" in lines


# --- a school's own templates ------------------------------------------------------------------------


def test_the_school_copy_overrides_the_shipped_one(settings: Settings) -> None:
    assert letter_template(settings, "sen-notification") == TEMPLATES / "letters" / "sen-notification.docx"
    path = own_template(settings, "sen-notification", "Our own words for {{ pupil.known_as }} at {{ school.name }}.")
    assert letter_template(settings, "sen-notification") == path
    out = text(render_docx(letter_template(settings, "sen-notification"), sample_context("early-discussion-note")))
    assert out.strip() == "Our own words for Ollie at Oakfield Primary School."
    assert check_templates(settings) == []


def test_an_edited_template_is_read_again(settings: Settings) -> None:
    path = own_template(settings, "staff-briefing", "Version one {{ pupil.known_as }}")
    assert "Version one" in text(render_docx(path, sample_context("plan-parent-copy")))
    own_template(settings, "staff-briefing", "Version two {{ pupil.known_as }}, now longer")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert "Version two" in text(render_docx(path, sample_context("plan-parent-copy")))


def test_unknown_name_is_a_plain_template_error(settings: Settings) -> None:
    path = own_template(settings, "sen-notification", "Dear {{ pupil.nickname }}")
    with pytest.raises(TemplateError) as caught:
        render_docx(path, sample_context("early-discussion-note"))
    message = caught.value.message
    assert "the template uses {{ pupil.nickname }}, which senforms does not provide" in message
    assert "templates/letters/README.md" in message
    assert "sen-notification.docx" in message
    assert caught.value.exit_code == ExitCode.template_error


def test_unknown_name_inside_a_loop_is_named_as_written(settings: Settings) -> None:
    path = own_template(
        settings, "plan-parent-copy", "{%p for o in form.outcomes %}", "{{ o.nickname }}", "{%p endfor %}"
    )
    with pytest.raises(TemplateError, match=r"\{\{ o\.nickname \}\}"):
        render_docx(path, sample_context("plan-parent-copy"))


def test_unknown_top_level_name(settings: Settings) -> None:
    path = own_template(settings, "plan-parent-copy", "Hello {{ headteacher }}")
    with pytest.raises(TemplateError, match=r"uses \{\{ headteacher \}\}"):
        render_docx(path, sample_context("plan-parent-copy"))


def test_syntax_error_names_the_paragraph(settings: Settings) -> None:
    path = own_template(
        settings,
        "review-outcome",
        "Dear {{ greeting }}",
        "Ollie did well {% if form.decision %} and more",
        "The end",
    )
    with pytest.raises(TemplateError) as caught:
        render_docx(path, sample_context("review-outcome"))
    message = caught.value.message
    assert "review-outcome.docx" in message
    assert "written wrongly" in message
    assert "Ollie did well" in message or "The end" in message


def test_unbalanced_braces_are_reported(settings: Settings) -> None:
    path = own_template(settings, "review-outcome", "Dear {{ greeting }", "More text")
    with pytest.raises(TemplateError, match="written wrongly"):
        render_docx(path, sample_context("review-outcome"))


def test_a_tag_left_unfilled_is_reported(settings: Settings) -> None:
    path = own_template(settings, "review-outcome", "Dear { {greeting}}")
    with pytest.raises(TemplateError, match="left unfilled"):
        render_docx(path, sample_context("review-outcome"))


def test_a_document_that_comes_out_empty_is_reported(settings: Settings) -> None:
    path = own_template(settings, "review-outcome", "{%p if corrected %}", "Corrected", "{%p endif %}")
    with pytest.raises(TemplateError, match="empty"):
        render_docx(path, sample_context("review-outcome"))


def test_the_sandbox_refuses_python_internals(settings: Settings) -> None:
    path = own_template(settings, "review-outcome", "{{ pupil.__class__.__mro__ }}")
    with pytest.raises(TemplateError):
        render_docx(path, sample_context("review-outcome"))


def test_a_file_that_is_not_a_word_document(settings: Settings) -> None:
    folder = settings.templates / "letters"
    folder.mkdir(parents=True)
    (folder / "staff-briefing.docx").write_bytes(b"not a zip at all")
    with pytest.raises(TemplateError, match="cannot be opened as a Word document"):
        render_docx(letter_template(settings, "staff-briefing"), sample_context("plan-parent-copy"))


def test_check_templates_lists_every_problem(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_templates(settings) == []
    assert main(["--home", str(settings.home), "check-templates"]) == 0
    own_template(settings, "sen-notification", "Dear {{ pupil.nickname }}")
    own_template(settings, "review-outcome", "Oops {% if form.decision %}")
    own_template(settings, "sen-notifcation", "A misspelt name {{ pupil.known_as }}")
    problems = check_templates(settings)
    assert len(problems) == 3
    assert any("{{ pupil.nickname }}" in p for p in problems)
    assert any("review-outcome.docx" in p and "written wrongly" in p for p in problems)
    assert any("sen-notifcation.docx" in p and "never used" in p for p in problems)
    capsys.readouterr()
    assert main(["--home", str(settings.home), "check-templates"]) == ExitCode.template_error
    err = capsys.readouterr().err
    assert "pupil.nickname" in err
    assert "What to do" in err


# --- never another pupil's details -------------------------------------------------------------------


def _swap(value: Any) -> Any:
    """The same letter for another pupil: every mention of Ollie Hart becomes Amira Begum."""
    if isinstance(value, str):
        for old, new in (
            ("Oliver", "Amira"),
            ("Ollie", "Amira"),
            ("Hart", "Begum"),
            ("H801200001001", "B801200005001"),
        ):
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {key: _swap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_swap(item) for item in value]
    return value


@pytest.mark.parametrize("name", list(LETTERS))
def test_no_output_contains_another_pupils_name(name: str) -> None:
    ollie = sample_context(name)
    amira = _swap(ollie)
    amira["pupil"]["date_of_birth"] = "19 January 2017"
    # Interleaved, so that a template object reused between renders would show.
    first = render(name, ollie)
    second = render(name, amira)
    third = render(name, ollie)
    assert first == third
    assert "Amira" not in first and "Begum" not in first
    for detail in ("Ollie", "Oliver", "Hart", "H801200001001", "4 May 2018"):
        assert detail not in second
    assert "Amira" in second


@pytest.mark.parametrize("name", ["sen-notification", "specialist-letter", "review-outcome"])
def test_letters_read_cleanly_before_the_school_details_are_filled_in(name: str) -> None:
    context = sample_context(name)
    context["school"] = {"name": "Oakfield Primary School", "address": "", "phone": "", "email": ""}
    shown = render(name, context)
    # No contact label is left standing without its value.
    assert not re.search(r"Phone\s*(E-mail|$)", shown, re.MULTILINE)
    assert not re.search(r"E-mail\s*$", shown, re.MULTILINE)
    assert " on  or at " not in shown and " at ." not in shown and " on ." not in shown
    context["school"] |= {"phone": "01603 000000", "email": "office@oakfield.example"}
    assert "01603 000000" in render(name, context) and "office@oakfield.example" in render(name, context)


# --- letters from compiled templates ------------------------------------------------------------


def _raw_members(data: bytes) -> dict[str, tuple[int, int, int, bytes]]:
    """Each member's compression, CRC, size and compressed bytes, as stored in the zip."""
    import struct
    import zipfile

    found = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        for info in archive.infolist():
            name_len, extra_len = struct.unpack_from("<2H", data, info.header_offset + 26)
            start = info.header_offset + 30 + name_len + extra_len
            found[info.filename] = (
                info.compress_type,
                info.CRC,
                info.file_size,
                data[start : start + info.compress_size],
            )
    return found


@pytest.mark.parametrize("name", ["sen-notification", "specialist-prompt"])
def test_a_letter_copies_the_unchanged_parts_of_its_template_byte_for_byte(name: str) -> None:
    path = TEMPLATES / "letters" / f"{name}.docx"
    template = _raw_members(path.read_bytes())
    letter = _raw_members(render_docx(path, sample_context(name)))
    assert list(letter) == list(template)  # the same parts, in the same order
    assert letter["word/document.xml"][1] != template["word/document.xml"][1]
    import zipfile

    with zipfile.ZipFile(path) as archive:
        # A part with a tag (this footer has the school's details) is rendered; no other is.
        unchanged = [n for n in template if b"{" not in archive.read(n) and not n.endswith(".rels")]
    assert "word/styles.xml" in unchanged and "word/document.xml" not in unchanged
    for member in unchanged:
        assert letter[member] == template[member], member


def test_the_same_letter_is_the_same_bytes() -> None:
    path = TEMPLATES / "letters" / "plan-parent-copy.docx"
    assert render_docx(path, sample_context("plan-parent-copy")) == render_docx(
        path, sample_context("plan-parent-copy")
    )


@pytest.mark.parametrize("name", list(LETTERS))
def test_every_letter_passes_the_full_python_docx_check_and_texts_agree(name: str) -> None:
    """The check made on the rendered XML reads the same paragraph text python-docx reads, and
    the letter passes the slower check that opens the whole package again."""
    from lxml import etree

    from senforms.render import _check_output, _paragraph_text, _prepare

    context = sample_context(name)
    context["pupil"]["known_as"] = HOSTILE + "\ttabbed"
    data = render_docx(TEMPLATES / "letters" / f"{name}.docx", context)
    _check_output(data, name, _prepare(context, ""))  # the context as render_docx cleans it
    doc = Document(io.BytesIO(data))
    ours = [_paragraph_text(p) for p in etree.fromstring(doc.element.xml.encode()).iter(qn("w:p"))]
    assert ours == [Paragraph(p, doc.part).text for p in doc.element.body.iter(qn("w:p"))]


def test_tags_in_headers_footers_tables_and_properties_are_filled(settings: Settings) -> None:
    path = own_template(settings, "plan-parent-copy", "Plan for {{ pupil.known_as }}")
    doc = Document(str(path))
    doc.sections[0].header.paragraphs[0].text = "Header: {{ school.name }}"
    doc.sections[0].footer.paragraphs[0].text = "Footer: {{ pupil.upn }}"
    doc.core_properties.title = "Plan for {{ pupil.known_as }}"
    table = doc.add_table(rows=3, cols=2)
    table.cell(0, 0).text = "{%tr for o in form.outcomes %}"
    table.cell(1, 0).text = "{{ o.description }}"
    table.cell(1, 1).text = "{{ o.success_criteria }}"
    table.cell(2, 0).text = "{%tr endfor %}"
    doc.add_paragraph("{%p if corrected %}")
    doc.add_paragraph("Corrected copy")
    doc.add_paragraph("{%p endif %}")
    doc.save(path)
    context = sample_context("plan-parent-copy")
    out = Document(io.BytesIO(render_docx(path, context)))
    assert out.sections[0].header.paragraphs[0].text == "Header: Oakfield Primary School"
    assert out.sections[0].footer.paragraphs[0].text == "Footer: H801200001001"
    assert out.core_properties.title == "Plan for Ollie"
    rows = [[c.text for c in row.cells] for row in out.tables[0].rows]
    assert rows == [[o["description"], o["success_criteria"]] for o in context["form"]["outcomes"]]
    assert "Corrected copy" not in text(render_docx(path, context))
    context["corrected"] = True
    assert "Corrected copy" in text(render_docx(path, context))


def test_a_tag_left_unfilled_in_a_footer_is_reported(settings: Settings) -> None:
    path = own_template(settings, "review-outcome", "Dear {{ greeting }}")
    doc = Document(str(path))
    doc.sections[0].footer.paragraphs[0].text = "Page { {page}}"
    doc.save(path)
    with pytest.raises(TemplateError, match='left unfilled in the paragraph "Page'):
        render_docx(path, sample_context("review-outcome"))


def test_an_unknown_name_in_a_header_is_reported(settings: Settings) -> None:
    path = own_template(settings, "review-outcome", "Dear {{ greeting }}")
    doc = Document(str(path))
    doc.sections[0].header.paragraphs[0].text = "{{ school.motto }}"
    doc.save(path)
    with pytest.raises(TemplateError, match=r"uses \{\{ school\.motto \}\}"):
        render_docx(path, sample_context("review-outcome"))


def test_a_letter_that_is_not_well_formed_xml_is_an_error_not_repaired(settings: Settings) -> None:
    # docxtpl parsed its output with recover=True, which silently dropped what did not fit.
    path = own_template(settings, "review-outcome", "Dear {{ greeting }} {{ '</w:t>' | safe }}")
    with pytest.raises(TemplateError, match="produced a document that Word could not open"):
        render_docx(path, sample_context("review-outcome"))


def test_a_template_with_a_mistake_fails_every_time_until_corrected(settings: Settings) -> None:
    path = own_template(settings, "review-outcome", "Oops {% if form.decision %}")
    for _ in range(2):
        with pytest.raises(TemplateError, match="written wrongly"):
            render_docx(path, sample_context("review-outcome"))
    own_template(settings, "review-outcome", "Fixed {{ pupil.known_as }}")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert text(render_docx(path, sample_context("review-outcome"))).strip() == "Fixed Ollie"


# --- the cheaper paths give the same letters and the same messages -----------------------------------


def test_a_broken_school_template_is_named_though_the_name_is_now_worked_out_only_on_error(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = own_template(settings, "review-outcome", "Dear {{ greeting }", "More text")
    with pytest.raises(TemplateError) as raised:
        render_docx(path, sample_context("review-outcome"))
    assert str(raised.value).startswith(f"The template review-outcome.docx (the school's copy, {path}): ")
    # A relative path is named in full, as before (it is made absolute, no longer resolved).
    monkeypatch.chdir(path.parent)
    with pytest.raises(TemplateError, match=re.escape(f"(the school's copy, {path})")):
        render_docx(Path("review-outcome.docx"), sample_context("review-outcome"))


def test_a_problem_with_the_shipped_template_says_it_is_the_copy_that_comes_with_senforms() -> None:
    context = sample_context("review-outcome")
    del context["school"]
    with pytest.raises(TemplateError, match=r"review-outcome\.docx \(the copy that comes with senforms\): the tem"):
        render_docx(TEMPLATES / "letters" / "review-outcome.docx", context)


def test_a_tag_left_as_character_references_is_still_caught_beside_braces_a_parent_typed(settings: Settings) -> None:
    """The check on the text is skipped only when the rendered XML cannot hold a brace; a value's
    braces are written as &#123; so that case must read the text, and find the leftover tag."""
    path = own_template(settings, "review-outcome", "Dear {{ pupil.known_as }}", "{{ '{%' }} left over")
    context = sample_context("review-outcome")
    context["pupil"]["known_as"] = "{{ typed by a parent }}"
    with pytest.raises(TemplateError, match=re.escape('left unfilled in the paragraph "{% left over"')):
        render_docx(path, context)
    own_template(settings, "review-outcome", "Dear {{ pupil.known_as }}", "nothing left over")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert "Dear {{ typed by a parent }}" in text(render_docx(path, context))


@pytest.mark.parametrize(
    "value", ["plain", "  padded  ", "a\tb ", "two\r\nlines  \nhere", "nul\x00bell\a", "\u00a0nbsp\u2003", "x\x85", ""]
)
def test_values_are_cleaned_as_clean_text_cleans_them(value: str) -> None:
    from senforms.render import _prepare
    from senforms.values import clean_text

    typed: list[str] = []
    prepared = _prepare({"a": value, "b": [value, {"c": value + "{{"}]}, "", typed)
    assert prepared["a"] == prepared["b"][0] == clean_text(value)
    assert prepared["b"][1]["c"] == clean_text(value + "{{")
    assert prepared["b"][1].senforms_path == "b[1]"
    assert typed == [clean_text(value + "{{")]


def test_line_breaks_in_values_are_resolved_exactly_as_the_paragraph_pattern_did() -> None:
    """``_resolve_listing`` finds paragraphs with str.find; on any text (nested and unclosed
    paragraphs too) it gives what running docxtpl over each ``_PARAGRAPH`` match gave."""
    import random

    from senforms import render

    def by_pattern(xml: str) -> str:
        return render._PARAGRAPH.sub(
            lambda m: render._DOCXTPL.resolve_listing(m.group(0)) if render._LISTING.search(m.group(0)) else m.group(0),
            xml,
        )

    pieces = ["<w:p>", '<w:p w:x="1">', "</w:p>", "<w:r><w:t>", "</w:t></w:r>", "a", "b\nc", "\t", "<w:pPr/>", "<w:p", ">", "\f", "\a"]
    rng = random.Random(14)
    for _ in range(3000):
        xml = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        assert render._resolve_listing(xml) == by_pattern(xml), xml


def _grid_and_rows(data: bytes) -> list[tuple[int, list[int]]]:
    """Each body table: its grid's column count and each row's cell count (spans counted)."""
    doc = Document(io.BytesIO(data))
    found = []
    for table in doc.element.body.iter(qn("w:tbl")):
        columns = len(table.find(qn("w:tblGrid")).findall(qn("w:gridCol")))
        rows = []
        for row in table.iter(qn("w:tr")):
            spans = [c.find(f"{qn('w:tcPr')}/{qn('w:gridSpan')}") for c in row.findall(qn("w:tc"))]
            rows.append(sum(1 if s is None else int(s.get(qn("w:val"))) for s in spans))
        found.append((columns, rows))
    return found


@pytest.mark.parametrize("shape", ["plain", "merged", "cell loop"])
def test_tables_come_out_with_a_grid_that_fits_their_rows(settings: Settings, shape: str) -> None:
    """docxtpl's fix_tables runs when a table's rows no longer fit its grid (a {%tc %} loop);
    a table with merged cells (gridSpan) and no loop is left as it is."""
    path = own_template(settings, "plan-parent-copy", "Dear {{ pupil.known_as }}")
    doc = Document(str(path))
    table = doc.add_table(rows=1, cols=3)
    table.cell(0, 0).text = "Outcomes"
    if shape == "merged":
        table.cell(0, 1).merge(table.cell(0, 2))
    if shape == "cell loop":  # two outcomes in three columns: the grid must lose one
        table.cell(0, 0).text = "{%tc for o in form.outcomes %}"
        table.cell(0, 1).text = "{{ o.description }}"
        table.cell(0, 2).text = "{%tc endfor %}"
    doc.save(path)
    data = render_docx(path, sample_context("plan-parent-copy"))
    [(columns, rows)] = _grid_and_rows(data)
    assert columns == max(rows)
    assert columns == (2 if shape == "cell loop" else 3)


def test_a_footer_kept_from_the_last_letter_follows_a_change_in_what_it_shows() -> None:
    """A header or footer that renders to the same text as last time takes the last one's bytes;
    one that renders differently is parsed, checked and written again."""
    path = TEMPLATES / "letters" / "sen-notification.docx"

    def footer(name: str) -> str:
        context = sample_context("sen-notification")
        context["pupil"]["full_name"] = name
        doc = Document(io.BytesIO(render_docx(path, context)))
        return "\n".join(p.text for p in doc.sections[0].footer.paragraphs)

    first = footer("Ollie Hart")
    assert "Ollie" in first
    other = footer("Quillan Hart")
    assert "Quillan" in other and "Ollie" not in other
    assert footer("Ollie Hart") == first
