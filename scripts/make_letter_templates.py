"""Write the letter templates in senforms/templates/letters/ that senforms ships.

Run from the repository root: ``python scripts/make_letter_templates.py``. The .docx files are
committed, so a school can open one in Word, reword or restyle it, and save it as
``<home>/templates/letters/<name>.docx``; this script is only how the shipped copies are made.
The names the tags use are listed in senforms/templates/letters/README.md.

docxtpl tags used here: ``{{ name }}`` prints a value; ``{%p if ... %}`` / ``{%p for ... %}`` in a
paragraph of its own keep or repeat the paragraphs up to ``{%p endif %}`` / ``{%p endfor %}``;
``{%tr for ... %}`` in a table row of its own repeats the rows up to ``{%tr endfor %}``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from docx import Document
from docx.document import Document as DocumentType
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor

OUT = Path(__file__).resolve().parent.parent / "senforms" / "templates" / "letters"
ACCENT = RGBColor(0x1F, 0x3A, 0x5F)


# --- building blocks --------------------------------------------------------------------------


FONT = "Arial"
# A4 (the forms are A4, and python-docx's own default is US Letter).
A4_WIDTH_CM, A4_HEIGHT_CM = 21.0, 29.7
_FONT_SLOTS = ("w:ascii", "w:hAnsi", "w:cs", "w:eastAsia")
_THEME_SLOTS = ("w:asciiTheme", "w:hAnsiTheme", "w:cstheme", "w:eastAsiaTheme")


def _one_font(r_pr) -> None:
    """Name FONT in every font slot and drop the theme references: a theme font (asciiTheme) wins
    over a named one, which is how headings came out in Calibri Light beside an Arial body."""
    r_fonts = r_pr.find(qn("w:rFonts"))
    if r_fonts is None:
        r_fonts = OxmlElement("w:rFonts")
        r_pr.insert(0, r_fonts)
    for slot in _THEME_SLOTS:
        r_fonts.attrib.pop(qn(slot), None)
    for slot in _FONT_SLOTS:
        r_fonts.set(qn(slot), FONT)


def _theme_fonts(doc: DocumentType) -> None:
    """The theme's heading and body fonts too, for anything a school adds in Word later."""
    for rel in doc.part.rels.values():
        if rel.reltype.endswith("/theme"):
            part = rel.target_part
            xml = part.blob.decode("utf-8")
            for old in ('typeface="Calibri Light"', 'typeface="Calibri"', 'typeface="Cambria"'):
                xml = xml.replace(old, f'typeface="{FONT}"')
            part._blob = xml.encode("utf-8")


def new_document(title: str, margins_cm: float = 2.0) -> DocumentType:
    doc = Document()
    for section in doc.sections:
        section.page_width, section.page_height = Cm(A4_WIDTH_CM), Cm(A4_HEIGHT_CM)
        section.top_margin = section.bottom_margin = Cm(margins_cm)
        section.left_margin = section.right_margin = Cm(margins_cm)
    styles = doc.styles
    # The document defaults and every style (table styles' first-row formats included) name
    # FONT, so nothing falls back to a theme font.
    for r_fonts in list(styles.element.iter(qn("w:rFonts"))):
        _one_font(r_fonts.getparent())
    _theme_fonts(doc)
    normal = styles["Normal"]
    normal.font.name = FONT
    _one_font(normal.element.get_or_add_rPr())
    normal.font.size = Pt(11)
    normal.paragraph_format.space_after = Pt(6)
    for name, size in (("Title", 18), ("Heading 1", 14), ("Heading 2", 12)):
        style = styles[name]
        _one_font(style.element.get_or_add_rPr())
        style.font.size = Pt(size)
        style.font.color.rgb = ACCENT
        style.font.bold = True
        style.font.italic = False
        style.paragraph_format.space_before = Pt(10 if name != "Title" else 0)
        style.paragraph_format.space_after = Pt(4)
        # A heading never ends a page: it goes over with the paragraph or table it introduces.
        style.paragraph_format.keep_with_next = True
    doc.core_properties.title = title
    doc.core_properties.author = "senforms"
    doc.core_properties.comments = "A senforms letter template; see templates/letters/README.md"
    return doc


def para(
    doc: DocumentType,
    text: str = "",
    *,
    bold: bool = False,
    size: float | None = None,
    align: str = "",
    keep: bool = False,
) -> None:
    """A paragraph; ``keep`` keeps it on the same page as the next one (the closing of a letter)."""
    p = doc.add_paragraph()
    if keep:
        p.paragraph_format.keep_with_next = True
    if text:
        run = p.add_run(text)
        run.bold = bold
        if size:
            run.font.size = Pt(size)
    if align == "right":
        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    elif align == "centre":
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER


def rich(doc: DocumentType, *parts: tuple[str, bool], style: str | None = None) -> None:
    """A paragraph of runs, some bold: ``rich(doc, ("Date: ", True), ("{{ today }}", False))``."""
    p = doc.add_paragraph(style=style)
    for text, bold in parts:
        p.add_run(text).bold = bold


def tag(doc: DocumentType, text: str) -> None:
    """A paragraph holding only a {%p ... %} tag; docxtpl removes the paragraph itself."""
    doc.add_paragraph(text)


def bullet(doc: DocumentType, text: str) -> None:
    doc.add_paragraph(text, style="List Bullet")


def heading(doc: DocumentType, text: str, level: int = 1) -> None:
    doc.add_heading(text, level=level)


def _shade(cell, fill: str) -> None:
    tc_pr = cell._tc.get_or_add_tcPr()
    shd = OxmlElement("w:shd")
    shd.set(qn("w:val"), "clear")
    shd.set(qn("w:color"), "auto")
    shd.set(qn("w:fill"), fill)
    tc_pr.append(shd)


def _cell_text(cell, text: str, *, bold: bool = False) -> None:
    cell.text = ""
    run = cell.paragraphs[0].add_run(text)
    run.bold = bold
    cell.paragraphs[0].paragraph_format.space_after = Pt(2)


def loop_table(
    doc: DocumentType, headers: Sequence[str], cells: Sequence[str], loop: str, widths_cm: Sequence[float]
) -> None:
    """A table with a header row and one row repeated for each item of ``loop`` ("o in form.outcomes")."""
    table = doc.add_table(rows=4, cols=len(headers))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.LEFT
    for i, text in enumerate(headers):
        _cell_text(table.cell(0, i), text, bold=True)
        _shade(table.cell(0, i), "DCE6F1")
    # The loop rows: docxtpl keeps only the tag, so one cell each is enough.
    _cell_text(table.cell(1, 0), f"{{%tr for {loop} %}}")
    for i, text in enumerate(cells):
        _cell_text(table.cell(2, i), text)
    _cell_text(table.cell(3, 0), "{%tr endfor %}")
    _repeat_header(table.rows[0])
    _no_split(table)
    _widths(table, widths_cm)
    doc.add_paragraph().paragraph_format.space_after = Pt(2)


def pairs_table(
    doc: DocumentType, rows: Sequence[tuple[str, str]], widths_cm: tuple[float, float] = (5.0, 12.0)
) -> None:
    """Label and value, one pair a row: the record part of a note."""
    table = doc.add_table(rows=len(rows), cols=2)
    table.style = doc.styles["Table Grid"]
    for r, (label, value) in enumerate(rows):
        _cell_text(table.cell(r, 0), label, bold=True)
        _shade(table.cell(r, 0), "F2F2F2")
        _cell_text(table.cell(r, 1), value)
    _no_split(table)
    _widths(table, widths_cm)
    doc.add_paragraph().paragraph_format.space_after = Pt(2)


def _widths(table, widths_cm: Sequence[float]) -> None:
    """Column widths in the grid as well as the cells: LibreOffice reads the grid, Word the cells."""
    table.autofit = False
    for col, width in zip(table._tbl.tblGrid.findall(qn("w:gridCol")), widths_cm, strict=False):
        col.set(qn("w:w"), str(int(Cm(width).twips)))
    for row in table.rows:
        for cell, width in zip(row.cells, widths_cm, strict=False):
            cell.width = Cm(width)


def _no_split(table) -> None:
    """No row is broken across two pages (a rating on one page and its evidence on the next)."""
    for row in table.rows:
        tr_pr = row._tr.get_or_add_trPr()
        cant_split = OxmlElement("w:cantSplit")
        cant_split.set(qn("w:val"), "true")
        tr_pr.insert(0, cant_split)


def _repeat_header(row) -> None:
    tr_pr = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    tr_pr.append(header)


def _field(p, instruction: str) -> None:
    """A Word field (PAGE, NUMPAGES) that Word and LibreOffice fill in when the page is laid out."""
    for kind, value in (
        ("fldChar", "begin"),
        ("instrText", f" {instruction} \\* MERGEFORMAT "),
        ("fldChar", "separate"),
        ("t", "1"),
        ("fldChar", "end"),
    ):
        run = p.add_run()
        if kind == "fldChar":
            fld = OxmlElement("w:fldChar")
            fld.set(qn("w:fldCharType"), value)
            run._r.append(fld)
        else:
            run._r.append(_text(f"w:{kind}", value))


def _text(tag_name: str, text: str):
    element = OxmlElement(tag_name)
    element.set(qn("xml:space"), "preserve")
    element.text = text
    return element


def footer(doc: DocumentType, text: str) -> None:
    """The document's own line, then "Page N of M" on every page."""
    section_footer = doc.sections[0].footer
    p = section_footer.paragraphs[0]
    p.text = text
    page = section_footer.add_paragraph()
    page.add_run("Page ")
    _field(page, "PAGE")
    page.add_run(" of ")
    _field(page, "NUMPAGES")
    for line in (p, page):
        line.alignment = WD_ALIGN_PARAGRAPH.CENTER
        line.paragraph_format.space_after = Pt(0)
        for run in line.runs:
            run.font.size = Pt(8)
            run.font.color.rgb = RGBColor(0x59, 0x59, 0x59)


# --- parts that letters share ------------------------------------------------------------------


def letterhead(doc: DocumentType) -> None:
    para(doc, "{{ school.name }}", bold=True, size=16, align="right")
    para(doc, "{{ school.address }}", align="right")
    # Each contact detail only once it is filled in, so a new installation's letters read cleanly.
    para(
        doc,
        "{% if school.phone %}Phone {{ school.phone }}   {% endif %}{% if school.email %}E-mail {{ school.email }}{% endif %}",
        align="right",
    )
    para(doc)
    # Who the letter is for, placed where a window envelope shows it; only when the form gave names.
    tag(doc, "{%p if address_block %}")
    para(doc, "{{ address_block }}")
    para(doc)
    tag(doc, "{%p endif %}")
    para(doc, "{{ today }}")
    para(doc, "Private and confidential", bold=True)
    corrected(doc)


def corrected(doc: DocumentType) -> None:
    tag(doc, "{%p if corrected %}")
    rich(
        doc,
        ("Corrected copy. ", True),
        ("This replaces the copy we sent you before, because the form it came from has been corrected. ", False),
        ("Please use this one and throw the earlier copy away.", False),
    )
    # What changed, one line each ("Corrected: the review date is now 16 March 2026").
    tag(doc, "{%p for line in correction %}")
    para(doc, "{{ line }}")
    tag(doc, "{%p endfor %}")
    tag(doc, "{%p endif %}")


def about_line(doc: DocumentType) -> None:
    rich(
        doc,
        ("About: ", True),
        (
            "{{ pupil.full_name }}, {{ pupil.year_group }}{% if pupil.class_name %}, {{ pupil.class_name }} class{% endif %}",
            False,
        ),
    )


def sendiass(doc: DocumentType) -> None:
    # Guarded so that a school that has not yet filled in [sendiass] gets no half-empty sentence.
    tag(doc, "{%p if sendiass.name %}")
    heading(doc, "Free, independent advice", 2)
    para(
        doc,
        "{{ sendiass.name }} gives free, confidential advice to parents and carers about special "
        "educational needs. It is independent of the school and the council, so you can talk to them "
        "about anything in this letter."
        "{% if sendiass.phone %} Phone {{ sendiass.phone }}.{% endif %}"
        "{% if sendiass.website %} Website: {{ sendiass.website }}.{% endif %}",
        keep=True,
    )
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if sendiass.local_offer %}")
    para(
        doc,
        "The council's Local Offer describes the help available locally for children with special "
        "educational needs: {{ sendiass.local_offer }}.",
        keep=True,
    )
    tag(doc, "{%p endif %}")


def sign_off(doc: DocumentType) -> None:
    # One paragraph, its lines kept on one page, after a paragraph kept with it (contact_us and
    # sendiass keep with next), so a page never holds only a signature. One paragraph, not a
    # paragraph a line: LibreOffice does not keep an empty paragraph with the next one, and the
    # name and role went over to a page of their own.
    p = doc.add_paragraph()
    p.paragraph_format.keep_together = True
    lines = [("Yours sincerely", False), ("", False), ("", False), ("{{ signatory.name }}", True)]
    lines.append(("{{ signatory.role }}{% if school.name %}, {{ school.name }}{% endif %}", False))
    for n, (text, bold) in enumerate(lines):
        run = p.add_run(text)
        run.bold = bold
        if n < len(lines) - 1:
            run.add_break()


# Said before the sign-off names the role, so a parent knows what a SENCO is (issue 10.4).
SENCO_EXPLAINED = (
    "{% if signatory.role | upper == 'SENCO' %}I am the school's SENCO: the teacher who leads on "
    "special educational needs (SEN). {% endif %}"
)


def contact_us(doc: DocumentType) -> None:
    para(
        doc,
        SENCO_EXPLAINED + "If you have any questions, or would like to talk about this, please contact me through the "
        "school office{% if school.phone %} on {{ school.phone }}{% endif %}"
        "{% if school.email %}{% if school.phone %} or{% endif %} at {{ school.email }}{% endif %}.",
        keep=True,
    )


# --- the documents -------------------------------------------------------------------------------


def early_discussion_note() -> DocumentType:
    doc = new_document("Note of our early discussion")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    para(
        doc,
        "Thank you for meeting us on {{ form.meeting_date }} to talk about {{ pupil.known_as }}. "
        "This is a short note of what we discussed and what we agreed. A copy is kept in "
        "{{ pupil.known_as }}'s school record.",
    )
    para(
        doc,
        "Please read it and let us know if anything is wrong or missing. Your knowledge of "
        "{{ pupil.known_as }} matters to us, and so do your concerns.",
    )
    heading(doc, "What we talked about")
    pairs_table(
        doc,
        [
            ("Date of meeting", "{{ form.meeting_date }}"),
            ("Who was there", "{{ form.attendees }}"),
            ("What {{ pupil.known_as }} is good at", "{{ form.strengths }}"),
            ("What {{ pupil.known_as }} finds hard", "{{ form.difficulties }}"),
            ("Your concerns", "{{ form.parent_concerns or 'None written down' }}"),
            ("What {{ pupil.known_as }} told us", "{{ form.pupil_views or 'Not asked this time' }}"),
            ("What we hope for", "{{ form.outcomes_sought }}"),
            ("Next steps we agreed", "{{ form.next_steps }}"),
        ],
    )
    heading(doc, "What we decided")
    tag(doc, '{%p if form.decision == "SEN support" %}')
    para(
        doc,
        "We agreed that {{ pupil.known_as }} needs SEN support. This means help that is extra to, or "
        "different from, what other children of the same age usually get. We will write to you "
        "separately to confirm this, and we will plan the support together with you.",
    )
    tag(doc, '{%p elif form.decision == "Monitor and meet again" %}')
    para(
        doc,
        "We agreed to keep a close eye on how {{ pupil.known_as }} is getting on in class and to meet "
        "again before deciding whether extra support is needed.",
    )
    tag(doc, '{%p elif form.decision == "No SEN" %}')
    para(
        doc,
        "We agreed that {{ pupil.known_as }} does not need special educational support at the moment. "
        "Good teaching in class, adapted to {{ pupil.known_as }}, will continue. If you or we become "
        "worried again, we will meet and look at this again.",
    )
    tag(doc, "{%p else %}")
    para(doc, "{{ form.decision }}")
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if form.next_meeting_date %}")
    rich(doc, ("Our next meeting: ", True), ("{{ form.next_meeting_date }}", False))
    tag(doc, "{%p endif %}")
    contact_us(doc)
    sendiass(doc)
    sign_off(doc)
    footer(doc, "Note of early discussion: {{ pupil.full_name }}, {{ form.meeting_date }}")
    return doc


# --- the formal notification's parts, the same whichever form sends it ------------------------------


def notification_opening() -> DocumentType:
    doc = new_document("Notification of SEN support")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    heading(doc, "{{ pupil.known_as }} will receive SEN support")
    return doc


def why_in_writing(doc: DocumentType) -> None:
    para(
        doc,
        "The law asks schools to tell parents in writing when they do this (section 68 of the Children "
        "and Families Act 2014, and paragraph 6.48 of the SEND Code of Practice). It does not mean that "
        "anything is wrong with the teaching {{ pupil.known_as }} has had, or that the support will "
        "always be needed.",
    )


def what_it_is_for(doc: DocumentType, finds_hard: str, needs: str) -> None:
    """The needs, then the start of "What this means": the pupil goes on the register."""
    heading(doc, "What the support is for", 2)
    # In the words written on the form, never the census code or the broad area's name (issue 10.4).
    para(doc, finds_hard)
    para(doc, needs)
    heading(doc, "What this means", 2)
    bullet(
        doc,
        "{{ pupil.known_as }}'s name is added to the school's SEN register. This is the school's list of "
        "pupils who receive SEN support. It is kept confidential.",
    )


def notification_ending(doc: DocumentType) -> None:
    """The last bullet of "What this means", the parents' part, and the close."""
    bullet(
        doc,
        "The class teacher stays responsible for {{ pupil.known_as }}'s learning every day, with help "
        "from me as {{ signatory.role }}{% if signatory.role | upper == 'SENCO' %}. The SENCO is the "
        "teacher who leads on special educational needs (SEN){% endif %}.",
    )
    heading(doc, "Your part", 2)
    para(
        doc,
        "You know {{ pupil.known_as }} best, and you have the right to be involved in every decision "
        "about this support. Please tell us what you think, at meetings or at any time in between. If "
        "you disagree with anything, talk to me or to the headteacher.",
    )
    contact_us(doc)
    sendiass(doc)
    sign_off(doc)
    footer(doc, "Notification of SEN support: {{ pupil.full_name }}")


def sen_notification() -> DocumentType:
    doc = notification_opening()
    para(
        doc,
        "Thank you for talking with us about {{ pupil.known_as }}"
        "{% if form.meeting_date %} on {{ form.meeting_date }}{% endif %}. I am writing to tell you formally "
        "that the school has decided to make special educational provision for {{ pupil.known_as }}. "
        "This is called SEN support: help that is extra to, or different from, what other children of "
        "the same age usually get.",
    )
    why_in_writing(doc)
    what_it_is_for(doc, "At our meeting we talked about what {{ pupil.known_as }} finds hard:", "{{ form.difficulties }}")
    bullet(
        doc,
        "We will agree a support plan with you and with {{ pupil.known_as }}"
        "{% if form.next_meeting_date %}, at our next meeting on {{ form.next_meeting_date }}{% endif %}. "
        "It will say what we are aiming for, what help {{ pupil.known_as }} will get, who will give it, "
        "and when we will check how it is going.",
    )
    bullet(
        doc,
        "We will meet you at least three times a year to review how {{ pupil.known_as }} is getting on "
        "and to plan the next steps together.",
    )
    notification_ending(doc)
    return doc


def sen_notification_with_plan() -> DocumentType:
    """The formal notice when a support plan, not an early discussion, starts SEN support: every
    sentence true of a plan (it may be agreed without the parents there, or without their
    agreement), none about a plan still to come."""
    doc = notification_opening()
    para(
        doc,
        "I am writing to tell you formally that the school is making special educational provision for "
        "{{ pupil.known_as }}. This is called SEN support: help that is extra to, or different from, what "
        "other children of the same age usually get. It is set out in {{ pupil.known_as }}'s SEN support "
        "plan of {{ form.plan_date }}.",
    )
    why_in_writing(doc)
    what_it_is_for(doc, "The plan sets out what {{ pupil.known_as }} finds hard:", "{{ form.needs }}")
    bullet(
        doc,
        "The plan says what we are aiming for, what help {{ pupil.known_as }} will get and who will give "
        "it. Your copy of the plan comes with a letter of its own.",
    )
    bullet(
        doc,
        # A plan typed up after its review date: no meeting "on" a day that has gone.
        "{% if form.review_ahead %}We will look at how the plan is going with you on {{ form.review_date }}. "
        "{% endif %}We will meet you at least three times a year to review how {{ pupil.known_as }} is "
        "getting on and to plan the next steps together.",
    )
    notification_ending(doc)
    return doc


def plan_parent_copy() -> DocumentType:
    doc = new_document("SEN support plan: parent's copy")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    para(
        doc,
        "Here is your copy of {{ pupil.known_as }}'s SEN support plan, agreed on {{ form.plan_date }}. "
        "SEN support is the extra help the school gives to children with special educational needs. "
        "It sets out what we are working towards, the help {{ pupil.known_as }} will have at school, "
        "and how you can help at home.",
    )
    tag(doc, "{%p if form.review_ahead %}")
    para(
        doc,
        "We will meet again on {{ form.review_date }} to look at how well the plan is working. If "
        "anything in it is not right, or things change at home, please tell us before then.",
    )
    tag(doc, "{%p else %}")
    para(doc, "If anything in it is not right, or things change at home, please tell us.")
    tag(doc, "{%p endif %}")
    contact_us(doc)
    sign_off(doc)
    doc.add_page_break()
    doc.add_heading("SEN support plan for {{ pupil.known_as }}", level=0)
    pairs_table(
        doc,
        [
            ("Pupil", "{{ pupil.full_name }}, {{ pupil.year_group }}"),
            ("Date of plan", "{{ form.plan_date }}"),
            ("Review date", "{{ form.review_date }}"),
            ("Class teacher", "{{ form.class_teacher }}"),
            ("SENCO", "{{ form.senco }}"),
        ],
    )
    heading(doc, "What {{ pupil.known_as }} needs help with")
    para(doc, "{{ form.needs }}")
    heading(doc, "What we are working towards")
    para(
        doc,
        "These are the outcomes we agreed: the goals we want {{ pupil.known_as }} to reach by the review. "
        "At the review we will look at each one together.",
    )
    loop_table(
        doc,
        ["", "Outcome", "How we will know"],
        ["{{ loop.index }}", "{{ o.description }}", "{{ o.success_criteria }}"],
        "o in form.outcomes",
        (1.0, 8.0, 8.0),
    )
    heading(doc, "Help at school")
    loop_table(
        doc,
        ["What", "Who gives it", "Group size", "How often", "From"],
        ["{{ p.what }}", "{{ p.who }}", "{{ p.group_size }}", "{{ p.frequency }}", "{{ p.start_date }}"],
        "p in form.provision",
        (5.0, 3.5, 2.0, 3.5, 3.0),
    )
    heading(doc, "How all staff will help in class")
    para(doc, "{{ form.strategies }}")
    tag(doc, "{%p if form.home %}")
    heading(doc, "What you will do at home")
    para(doc, "{{ form.home }}")
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if form.pupil_views %}")
    heading(doc, "What {{ pupil.known_as }} said")
    para(doc, "{{ form.pupil_views }}")
    tag(doc, "{%p endif %}")
    heading(doc, "What we expect the help to change")
    para(doc, "{{ form.expected_impact }}")
    heading(doc, "Agreement")
    tag(doc, '{%p if form.parents_agree == "Yes" %}')
    para(doc, "Parents or carers agreed this plan{% if form.agreed_by %} ({{ form.agreed_by }}){% endif %}.")
    tag(doc, "{%p else %}")
    para(doc, "Your agreement to this plan is not recorded yet. Please let us know whether you agree.")
    tag(doc, "{%p endif %}")
    footer(doc, "SEN support plan: {{ pupil.full_name }}, {{ form.plan_date }}")
    return doc


def staff_briefing() -> DocumentType:
    # One page, always (6.49: staff need it to hand): 1.5 cm margins, 9 pt, the details in one
    # table row, who and how often in one column, and strengths first so staff meet the child
    # before the difficulty. Measured: at 10 pt with three columns, a full plan ran to 1.4 pages. The test
    # tests/test_letters_print.py::test_the_staff_briefing_is_one_page_at_the_most_rows proves
    # it with every table at its most rows and every box full.
    doc = new_document("Staff briefing", margins_cm=1.5)
    doc.styles["Normal"].font.size = Pt(9)
    doc.styles["Normal"].paragraph_format.space_after = Pt(2)
    for name in ("Heading 2", "List Number", "List Bullet"):
        doc.styles[name].paragraph_format.space_before = Pt(4 if name == "Heading 2" else 0)
        doc.styles[name].paragraph_format.space_after = Pt(1)
    doc.styles["Heading 2"].font.size = Pt(10)
    doc.styles["Title"].font.size = Pt(14)
    doc.add_heading("Staff briefing: {{ pupil.known_as }} {{ pupil.surname }}", level=0)
    # The short form of the corrected notice: staff need only know which copy to keep.
    tag(doc, "{%p if corrected %}")
    rich(doc, ("Corrected copy: ", True), ("use this one and throw the earlier copy away.", False))
    tag(doc, "{%p for line in correction %}")
    para(doc, "{{ line }}")
    tag(doc, "{%p endfor %}")
    tag(doc, "{%p endif %}")
    pairs_table(
        doc,
        [
            (
                "{{ pupil.forename }} {{ pupil.surname }}{% if pupil.known_as != pupil.forename %} "
                "(known as {{ pupil.known_as }}){% endif %}",
                "{{ pupil.year_group }}{% if pupil.class_name %}, {{ pupil.class_name }}{% endif %}. "
                "Plan of {{ form.plan_date }}; next review {{ form.review_date }}. "
                "Ask {{ form.senco }} (SENCO) or {{ form.class_teacher }} (class teacher).",
            ),
        ],
        widths_cm=(5.0, 13.0),
    )
    # Strengths beside needs, strengths on the left: read first, and half the height of two
    # full-width paragraphs under their own headings.
    table = doc.add_table(rows=2, cols=2)
    table.style = doc.styles["Table Grid"]
    for col, (title, text) in enumerate(
        (("Strengths", "{{ strengths or 'Not on record yet: ask the SENCO.' }}"), ("Needs", "{{ form.needs }}"))
    ):
        _cell_text(table.cell(0, col), title, bold=True)
        _shade(table.cell(0, col), "DCE6F1")
        _cell_text(table.cell(1, col), text)
    _no_split(table)
    _widths(table, (9.0, 9.0))
    heading(doc, "Outcomes we are working towards", 2)
    tag(doc, "{%p for o in form.outcomes %}")
    doc.add_paragraph("{{ o.description }}", style="List Number")
    tag(doc, "{%p endfor %}")
    heading(doc, "What helps in every lesson", 2)
    para(doc, "{{ form.strategies }}")
    heading(doc, "Support in place", 2)
    loop_table(
        doc,
        ["What", "Who and how often"],
        ["{{ p.what }}", "{{ p.who }}{% if p.who and p.frequency %}; {% endif %}{{ p.frequency }}"],
        "p in form.provision",
        (12.0, 6.0),
    )
    tag(doc, "{%p if form.pupil_views %}")
    heading(doc, "In {{ pupil.known_as }}'s words", 2)
    para(doc, "{{ form.pupil_views }}")
    tag(doc, "{%p endif %}")
    # How to keep it, in the footer: a line of the page that costs the briefing nothing.
    footer(
        doc,
        "{{ school.name }}: staff briefing, {{ pupil.full_name }}, {{ today }}. Confidential: keep it with "
        "your planning, not on display, and do not share it outside school.",
    )
    return doc


def review_outcome() -> DocumentType:
    doc = new_document("SEN support review: outcome")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    para(
        doc,
        "Thank you for coming to {{ pupil.known_as }}'s review. At a review we look at how "
        "{{ pupil.known_as }} is getting on with SEN support. SEN support is the extra help the school "
        "gives to children with special educational needs. This letter says what we found and what "
        "we agreed. The full record of our talk follows the letter.",
    )
    heading(doc, "What we found", 2)
    para(doc, "{{ review.summary }}")
    tag(doc, "{%p for o in form.outcomes %}")
    rich(
        doc,
        ("{{ 'Not yet achieved' if o.rating == 'Not achieved' else o.rating }}: ", True),
        ("{{ o.description }}{% if o.evidence %} ({{ o.evidence }}){% endif %}", False),
        style="List Bullet",
    )
    tag(doc, "{%p endfor %}")
    heading(doc, "What we agreed", 2)
    para(
        doc,
        "{{ review.decision }}{% if form.next_review_date %} Our next review is on {{ form.next_review_date }}.{% endif %}",
    )
    tag(doc, "{%p if form.next_steps %}")
    rich(doc, ("Next steps: ", True), ("{{ form.next_steps }}", False))
    tag(doc, "{%p endif %}")
    contact_us(doc)
    sendiass(doc)
    sign_off(doc)
    # No page break: the record follows the signature, so a letter that just spills over does not
    # leave a page nearly empty; its heading and rows are kept whole.
    para(doc)
    doc.add_heading("Record of the review for {{ pupil.known_as }}", level=0)
    pairs_table(
        doc,
        [
            ("Pupil", "{{ pupil.full_name }}, {{ pupil.year_group }}"),
            ("Date of review", "{{ form.review_date }}"),
            ("Plan reviewed", "The plan of {{ form.plan_date }}"),
            ("Who was there", "{{ form.attendees }}"),
        ],
    )
    heading(doc, "Progress on each outcome")
    para(doc, "Outcomes are the goals we agreed for {{ pupil.known_as }} in the plan.")
    loop_table(
        doc,
        ["Outcome", "Progress", "What shows it"],
        ["{{ o.description }}", "{{ o.rating }}", "{{ o.evidence }}"],
        "o in form.outcomes",
        (7.5, 3.0, 6.5),
    )
    tag(doc, "{%p if form.provision %}")
    heading(doc, "How well the support worked")
    loop_table(
        doc,
        ["Support", "What difference it made"],
        ["{{ p.what }}", "{{ p.impact }}"],
        "p in form.provision",
        (7.0, 10.0),
    )
    tag(doc, "{%p endif %}")
    heading(doc, "Views")
    pairs_table(
        doc,
        [
            ("{{ pupil.known_as }}", "{{ form.pupil_views or 'Not recorded' }}"),
            ("Parents or carers", "{{ form.parent_views or 'Not recorded' }}"),
            ("School staff", "{{ form.staff_views or 'Not recorded' }}"),
        ],
    )
    heading(doc, "What we agreed")
    para(doc, "{{ review.decision }}")
    tag(doc, "{%p if form.next_review_date %}")
    para(doc, "Next review: {{ form.next_review_date }}.")
    tag(doc, "{%p endif %}")
    footer(doc, "Review of SEN support: {{ pupil.full_name }}, {{ form.review_date }}")
    return doc


def specialist_letter() -> DocumentType:
    doc = new_document("Asking a specialist for advice")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    para(
        doc,
        "At {{ pupil.known_as }}'s review on {{ form.review_date }} we talked about the progress "
        "{{ pupil.known_as }} has made. Some of it has been slower than we all hoped, even with the "
        "extra help in place.",
    )
    tag(doc, "{%p if form.specialist %}")
    para(
        doc,
        "We would like to ask a specialist for advice: {{ form.specialist }}. We will only go ahead if you agree.",
    )
    tag(doc, "{%p if form.specialist_reason %}")
    rich(doc, ("Why we are asking: ", True), ("{{ form.specialist_reason }}", False))
    tag(doc, "{%p endif %}")
    tag(doc, "{%p else %}")
    para(
        doc,
        "We would like to ask a specialist for advice. This could be, for example, an educational "
        "psychologist, a specialist teacher, or a speech and language therapist, depending on what "
        "{{ pupil.known_as }} needs. We will only go ahead if you agree, and we will talk with you "
        "about which specialist would help most.",
    )
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if form.next_steps %}")
    rich(doc, ("What we agreed to do next: ", True), ("{{ form.next_steps }}", False))
    tag(doc, "{%p endif %}")
    heading(doc, "What would happen", 2)
    bullet(doc, "The specialist may watch {{ pupil.known_as }} in class, talk with them, or do some assessments.")
    bullet(doc, "They will usually want to hear from you too, about how things are at home.")
    bullet(
        doc,
        "Their advice will be shared with you. We will meet to talk it through and to change the "
        "support plan if needed.",
    )
    bullet(doc, "We keep a record of what the specialist advised and what we agreed, and share it with you.")
    heading(doc, "What we need from you", 2)
    para(
        doc,
        SENCO_EXPLAINED + "Please fill in the slip below and return it to the school office"
        "{% if school.email %}, or reply by e-mail to {{ school.email }}{% endif %}, by {{ reply_by }}. "
        "If you would like to talk "
        "about it first, please {% if school.phone %}ring me on {{ school.phone }}{% else %}contact me through "
        "the school office{% endif %}.",
        keep=True,
    )
    sendiass(doc)
    sign_off(doc)
    para(doc, "✂ - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -", align="centre")
    heading(doc, "Reply: asking a specialist for advice about {{ pupil.full_name }}", 2)
    para(
        doc,
        "☐  I agree to the school asking a specialist{% if form.specialist %} ({{ form.specialist }}){% endif %} "
        "for advice about "
        "{{ pupil.known_as }}, and to the school sharing what it knows about {{ pupil.known_as }} with them.",
    )
    para(doc, "☐  I do not agree at the moment. I would like to talk about it first.")
    rich(doc, ("Please return this slip by {{ reply_by }}.", True))
    # A line for each parent or carer this copy is addressed to, their name printed: both
    # parents are asked, and each signs for themselves. A blank line when the form names no one.
    tag(doc, "{%p for h in recipients %}")
    tag(doc, "{%p for name in h.people %}")
    para(doc, "{{ name }}   Signed: ______________________________   Date: ____________", keep=True)
    tag(doc, "{%p endfor %}")
    tag(doc, "{%p endfor %}")
    tag(doc, "{%p if not recipients %}")
    para(doc, "Name: ____________________________   Signed: ____________________   Date: ____________")
    tag(doc, "{%p endif %}")
    footer(doc, "Asking a specialist for advice: {{ pupil.full_name }}")
    return doc


def sen_support_ended() -> DocumentType:
    doc = new_document("SEN support is ending")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    # The reason is the one the review form gives (rules.end_reason), and no other.
    para(
        doc,
        "At {{ pupil.known_as }}'s review on {{ form.review_date }} we agreed that SEN support for "
        "{{ pupil.known_as }} will end. SEN support is the extra help the school gives to children "
        "with special educational needs.",
    )
    tag(doc, "{%p if review.end_reason %}")
    para(doc, "{{ review.end_reason }}")
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if form.next_steps %}")
    heading(doc, "What happens next", 2)
    para(doc, "{{ form.next_steps }}")
    tag(doc, "{%p endif %}")
    heading(doc, "What this means", 2)
    tag(doc, '{%p if review.end_reason_key == "ehc-plan" %}')
    bullet(doc, "The help {{ pupil.known_as }} gets from now on will be set out in the EHC plan.")
    bullet(doc, "The EHC plan will be looked at again with you at least once a year.")
    tag(doc, '{%p elif review.end_reason_key == "leaving" %}')
    bullet(doc, "We will send {{ pupil.known_as }}'s records to the new school, so that they know what helps.")
    bullet(doc, "The new school will decide with you what help {{ pupil.known_as }} needs there.")
    tag(doc, "{%p else %}")
    bullet(
        doc,
        "{{ pupil.known_as }}'s name comes off the school's SEN register, the list of pupils who get SEN support.",
    )
    bullet(
        doc,
        "{{ pupil.known_as }}'s teachers will keep adapting their teaching, as they do for every child, "
        "and will keep an eye on how things go.",
    )
    tag(doc, "{%p endif %}")
    bullet(doc, "The records of the support are kept safely in {{ pupil.known_as }}'s school file.")
    heading(doc, "Progress at the last review", 2)
    loop_table(
        doc,
        ["Target", "Progress"],
        ["{{ o.description }}", "{{ 'Not yet achieved' if o.rating == 'Not achieved' else o.rating }}"],
        "o in form.outcomes",
        (12.0, 5.0),
    )
    heading(doc, "If you do not agree", 2)
    para(
        doc,
        "If you do not agree that SEN support should end, please tell me. We will meet to talk it "
        "through, and we can look at the decision again.",
    )
    tag(doc, '{%p if review.end_reason_key not in ("ehc-plan", "leaving") %}')
    heading(doc, "If you become worried again", 2)
    para(
        doc,
        "Please get in touch straight away if you have any worries. We will meet you, look at what is "
        "happening, and start SEN support again if {{ pupil.known_as }} needs it. We will do the same if "
        "we notice anything at school.",
    )
    tag(doc, "{%p endif %}")
    contact_us(doc)
    sendiass(doc)
    sign_off(doc)
    footer(doc, "SEN support is ending: {{ pupil.full_name }}")
    return doc


def ehc_request() -> DocumentType:
    # Facts from the SEND Code of Practice: 6.63 (school or parents may request), 9.14 (6 weeks to
    # decide whether to assess), 9.40 (20 weeks from request to final plan).
    doc = new_document("Asking for an EHC needs assessment")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    para(
        doc,
        "At {{ pupil.known_as }}'s review on {{ form.review_date }} we agreed to ask the council for an "
        "EHC needs assessment for {{ pupil.known_as }}. EHC stands for Education, Health and Care. "
        "This letter says what the assessment is and what happens next.",
    )
    heading(doc, "What is an EHC needs assessment?", 2)
    para(
        doc,
        "In an EHC needs assessment, the council looks "
        "closely at all of {{ pupil.known_as }}'s needs. It asks you, {{ pupil.known_as }}, the school "
        "and others who know {{ pupil.known_as }} what they think. Then the council decides if "
        "{{ pupil.known_as }} needs an EHC plan. An EHC plan is a legal paper. It sets out "
        "{{ pupil.known_as }}'s needs and the help that must be given.",
    )
    heading(doc, "What happens next", 2)
    bullet(
        doc,
        "We send the request to the council, with a record of the help we have given "
        "{{ pupil.known_as }} so far and how it went.",
    )
    bullet(
        doc,
        "The council has 6 weeks from the day it gets the request to decide if it will do the "
        "assessment. It will write to tell you.",
    )
    bullet(
        doc,
        "If it goes ahead, the whole process should take no more than 20 weeks from the request to the final EHC plan.",
    )
    bullet(
        doc,
        "{{ pupil.known_as }}'s SEN support at school goes on as normal while you wait. SEN support is "
        "the extra help the school gives to children with special educational needs.",
    )
    tag(doc, "{%p if form.next_steps %}")
    rich(doc, ("What we agreed to do next: ", True), ("{{ form.next_steps }}", False))
    tag(doc, "{%p endif %}")
    heading(doc, "You can ask too", 2)
    para(
        doc,
        "Parents can ask the council for an EHC needs assessment themselves. You do not need the "
        "school to agree. {{ sendiass.name or 'Your local SENDIASS' }}, a free advice service for "
        "parents, can help you with this, and "
        "can tell you what you can do if the council says no.",
        keep=True,
    )
    contact_us(doc)
    sendiass(doc)
    sign_off(doc)
    footer(doc, "Asking for an EHC needs assessment: {{ pupil.full_name }}")
    return doc


def specialist_prompt() -> DocumentType:
    doc = new_document("Consider specialist involvement")
    doc.add_heading("Consider asking a specialist: {{ pupil.full_name }}", level=0)
    corrected(doc)
    para(
        doc,
        "For the SENCO. At the review on {{ form.review_date }}, these outcomes for {{ pupil.full_name }} "
        "({{ pupil.year_group }}) were rated \u201cNot achieved\u201d at this review and the one before, and "
        "no review in that run has yet decided to involve a specialist or to request an EHC needs assessment:",
    )
    tag(doc, '{%p if flags | selectattr("new") | list %}')
    loop_table(
        doc,
        ["Outcome", "Every rating in the run, earliest first"],
        ["{{ f.description }}", "{{ f.ratings | join('; ') }}"],
        "f in flags if f.new",
        (11.0, 6.0),
    )
    tag(doc, "{%p else %}")
    para(doc, "(No outcomes are flagged.)")
    tag(doc, "{%p endif %}")
    para(
        doc,
        "The SEND Code of Practice says that where a pupil continues to make less than expected progress "
        "despite support matched to their need, the school should consider involving specialists (6.58); "
        "where progress stays little or none, a school should always involve one; and the parents should "
        "always be involved in that decision (6.59).",
    )
    heading(doc, "To consider", 2)
    bullet(doc, "Is the support matched to the need, delivered as planned and by trained staff?")
    bullet(doc, "Which specialist would help: educational psychologist, specialist teacher, therapist, CAMHS?")
    bullet(doc, "Talk with the parents and the pupil; record what is agreed and share it with them.")
    bullet(doc, "If the specialist is agreed, senforms can write the letter asking the parents' agreement.")
    rich(doc, ("Decision recorded at this review: ", True), ("{{ form.decision }}", False))
    footer(doc, "{{ school.name }}: prompt for the SENCO, {{ pupil.full_name }}, {{ today }}. Confidential.")
    return doc


def parent_meeting_note() -> DocumentType:
    doc = new_document("Note of our meeting")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    para(
        doc,
        "Thank you for meeting us on {{ form.meeting_date }} to talk about {{ pupil.known_as }}. "
        "This note says what we talked about and what each of us agreed to do. A copy is kept in "
        "{{ pupil.known_as }}'s school record.",
    )
    para(doc, "Please tell us if anything is wrong or missing.")
    heading(doc, "What we talked about")
    pairs_table(
        doc,
        [
            ("Date of meeting", "{{ form.meeting_date }}"),
            ("Who was there", "{{ form.attendees }}"),
            ("What we talked about", "{{ form.discussed }}"),
            ("What you told us", "{{ form.parent_views or 'Nothing written down' }}"),
            ("What {{ pupil.known_as }} told us", "{{ form.pupil_views or 'Not asked this time' }}"),
        ],
    )
    tag(doc, "{%p if form.actions %}")
    heading(doc, "What we agreed to do")
    loop_table(
        doc,
        ["What", "Who", "By when"],
        ["{{ a.action }}", "{{ a.who }}", "{{ a.by_when }}"],
        "a in form.actions",
        [9.5, 4.0, 3.5],
    )
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if form.next_meeting_date %}")
    rich(doc, ("Our next meeting: ", True), ("{{ form.next_meeting_date }}", False))
    tag(doc, "{%p endif %}")
    contact_us(doc)
    sendiass(doc)
    sign_off(doc)
    footer(doc, "Note of our meeting: {{ pupil.full_name }}, {{ form.meeting_date }}")
    return doc


def annual_report() -> DocumentType:
    doc = new_document("Annual report on SEN support")
    letterhead(doc)
    about_line(doc)
    para(doc, "{{ greeting }}")
    para(
        doc,
        "Once a year we write to tell you how {{ pupil.known_as }} is getting on with SEN support. "
        "SEN stands for special educational needs. SEN support is the extra help we give to a child "
        "with SEN. This report covers {{ report.since }} to {{ report.until }}.",
    )
    heading(doc, "What we found this year", 2)
    tag(doc, "{%p for line in report.summary %}")
    para(doc, "{{ line }}")
    tag(doc, "{%p endfor %}")
    tag(doc, "{%p if report.cycles %}")
    para(doc, "These are the support plans we used this year:")
    tag(doc, "{%p for c in report.cycles %}")
    bullet(
        doc,
        "The plan made on {{ c.plan_date or 'an earlier date' }}"
        "{% if c.review_date %}, reviewed on {{ c.review_date }}{% else %}, not reviewed yet{% endif %}.",
    )
    tag(doc, "{%p endfor %}")
    tag(doc, "{%p endif %}")
    tag(doc, "{%p if report.outcomes %}")
    heading(doc, "Progress on each outcome", 2)
    para(
        doc,
        "Outcomes are the goals we agreed with you for {{ pupil.known_as }}. At each review we say if a goal "
        "was achieved, partly achieved or not yet achieved, and what shows it.",
    )
    loop_table(
        doc,
        ["Outcome", "What we found at each review"],
        ["{{ o.description }}", "{{ o.progress }}"],
        "o in report.outcomes",
        (7.5, 9.5),
    )
    tag(doc, "{%p endif %}")
    heading(doc, "The help {{ pupil.known_as }} had", 2)
    tag(doc, "{%p if report.provision %}")
    para(doc, "We call this help provision. This year it was:")
    loop_table(
        doc,
        ["Help", "Who gave it", "How often"],
        ["{{ p.what }}", "{{ p.who }}", "{{ p.frequency }}"],
        "p in report.provision",
        (8.0, 4.5, 4.5),
    )
    tag(doc, "{%p else %}")
    para(doc, "No extra help was written in a plan this year.")
    tag(doc, "{%p endif %}")
    heading(doc, "Our meetings with you", 2)
    para(doc, "{{ report.meetings_sentence }}")
    tag(doc, "{%p for m in report.meetings %}")
    bullet(doc, "{{ m.date }}: {{ m.what }}.")
    tag(doc, "{%p endfor %}")
    heading(doc, "What happens next", 2)
    tag(doc, "{%p for line in report.next %}")
    para(doc, "{{ line }}")
    tag(doc, "{%p endfor %}")
    para(doc, "Your views matter to us. We would like to hear what you think of this report.")
    contact_us(doc)
    sendiass(doc)
    sign_off(doc)
    footer(doc, "Annual report on SEN support: {{ pupil.full_name }}, {{ today }}")
    return doc


DOCUMENTS = {
    "early-discussion-note": early_discussion_note,
    "sen-notification": sen_notification,
    "sen-notification-with-plan": sen_notification_with_plan,
    "plan-parent-copy": plan_parent_copy,
    "staff-briefing": staff_briefing,
    "review-outcome": review_outcome,
    "specialist-letter": specialist_letter,
    "sen-support-ended": sen_support_ended,
    "ehc-request": ehc_request,
    "specialist-prompt": specialist_prompt,
    "parent-meeting-note": parent_meeting_note,
    "annual-report": annual_report,
}


def write_readme_table() -> None:
    """The table of letters in README.md, written from senforms/letters.py."""
    from senforms.letters import README_TABLE_END, README_TABLE_START, readme_table

    readme = OUT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(README_TABLE_START), text.index(README_TABLE_END) + len(README_TABLE_END)
    readme.write_text(text[:start] + readme_table() + text[end:], encoding="utf-8")
    print(f"Wrote the table of letters in {readme}")


def main(argv: Sequence[str] = ()) -> int:
    write_readme_table()
    if "--readme" in argv:
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in DOCUMENTS.items():
        path = OUT / f"{name}.docx"
        build().save(path)
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
