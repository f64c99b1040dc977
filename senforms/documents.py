"""The render step: from what the rules decided to the bytes of each document.

Letters are filled in from their templates (``render``), pre-filled forms are made from the
kind's declaration (``forms``), and with ``format = "pdf"`` the letters go to PDF in one batch
through one running LibreOffice (``office``). Nothing here touches the archive, so the pipeline
renders before it opens its write transaction.

``sample_context`` and ``check_templates`` live here too: the sample data a school's edited
template is checked with comes from running the real letter context over sample forms kept as
data (``senforms/samples/forms.json``), so the two cannot drift apart.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from senforms import forms, rules
from senforms.config import Settings
from senforms.context import address_block, annual_report_context, letter_context
from senforms.errors import OfficeError, TemplateError
from senforms.history import History
from senforms.kinds import KINDS, FormModel
from senforms.letters import LETTERS, Audience, Letter
from senforms.office import MISSING_MESSAGE, ConversionFailed, Office, office_available
from senforms.render import LETTERS_FOLDER, letter_template, render_docx


@dataclass
class Rendered:
    """One document, rendered and ready to file: its bytes and where it is going."""

    audience: str
    title: str
    template: str  # a letter's name, "form:<kind>" for a pre-filled form, or "register"
    content: bytes
    suffix: str


@dataclass
class Due:
    """Documents owed on a date rather than for a form: a review record issued ahead of its
    review, the SENCO's weekly digest, an annual report, a term's provision map. ``key`` names
    the thing once and for all (``review-record:cycle:42``, ``digest:2026-W48``); the daily round
    (``senforms.year``) records each key in the archive's ``issued`` table when it delivers the
    documents, so nothing is issued twice however often the round runs."""

    key: str
    upn: str | None  # the pupil, or None for a school-wide document (a digest, a provision map)
    for_date: date
    documents: list[Rendered]


class PdfLetters:
    """Letters as PDFs through one LibreOffice, started on first use and kept running."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wanted = settings.document_format == "pdf"
        self.available = self.wanted and office_available()
        self._office: Office | None = None

    @property
    def notice(self) -> str | None:
        """A plain sentence for start-up when PDF letters were asked for and cannot be made."""
        return MISSING_MESSAGE if self.wanted and not self.available else None

    def convert(self, letters: list[Rendered], warnings: list[str]) -> None:
        """Convert these Word letters to PDF in place. If LibreOffice fails, the letters stay Word
        documents and a warning says so: a parent still gets their letter."""
        if not self.available or not letters:
            return
        with tempfile.TemporaryDirectory(prefix="senforms-pdf-") as tmp:
            sources = []
            for i, letter in enumerate(letters):
                sources.append(Path(tmp) / f"{i}.docx")
                sources[-1].write_bytes(letter.content)
            try:
                if self._office is None:
                    self._office = Office(timeout=self.settings.seconds_per_file)
                    self._office.start()
                pdfs = self._office.convert(sources, Path(tmp) / "pdf")
            except ConversionFailed as exc:
                pdfs = [Path(tmp) / "pdf" / f"{s.stem}.pdf" for s in sources]
                warnings.append(f"{len(exc.failed)} letters could not be made into PDFs and are Word documents instead")
            except OfficeError as exc:
                warnings.append(f"Letters are Word documents, not PDFs: {exc.message}")
                return
            for letter, pdf in zip(letters, pdfs, strict=True):
                if pdf.exists():
                    letter.content, letter.suffix = pdf.read_bytes(), ".pdf"

    def close(self) -> None:
        if self._office is not None:
            self._office.close()
            self._office = None


def render_documents(
    settings: Settings,
    form: FormModel,
    decided: rules.Next,
    past: History,
    *,
    corrected: bool,
    today: date,
    pdf: PdfLetters,
    correction: Sequence[str] = (),
) -> tuple[list[Rendered], list[str]]:
    """Every document the rules decided on, rendered; and any warnings on the way."""
    out: list[Rendered] = []
    warnings: list[str] = []
    pdf_forms = settings.document_format == "pdf"
    # The letter context depends on the form, not on the letter: built once for all of a form's
    # letters (it was built again for each). render_docx never changes it: each letter fills its
    # templates from its own cleaned copy (render._prepare), so no letter can change another's.
    context: dict[str, Any] | None = None
    for doc in decided.documents:
        if isinstance(doc, rules.Prefilled):
            content = forms.blank_form(settings, doc.kind, values=doc.values, pdf=pdf_forms)
            out.append(Rendered(doc.audience, doc.title, f"form:{doc.kind}", content, ".pdf" if pdf_forms else ".docx"))
            continue
        if context is None:
            context = letter_context(
                settings,
                form,
                history=past.with_form(form),
                flags=decided.flags,
                corrected=corrected,
                today=today,
                correction=correction,
            )
        template = letter_template(settings, doc.name)  # looked for once, not for each household's copy
        for copy, title in _household_copies(context, doc):
            title += " (corrected)" if corrected else ""
            content = render_docx(template, copy, title=title, written=today)
            out.append(Rendered(doc.audience, title, doc.name, content, ".docx"))
    pdf.convert([r for r in out if r.suffix == ".docx"], warnings)
    return out, warnings


def household_title(title: str, names: str) -> str:
    """A household's own copy: "Review of SEN support for Mr Daniel Hart". The outbox's list of
    letters to send finds the household again by this ending (``outbox.letters_to_send``)."""
    return f"{title} for {names}"


def _household_copies(context: dict[str, Any], letter: Letter) -> list[tuple[dict[str, Any], str]]:
    """One copy of a parent letter for each household on the form (parents at different
    addresses each get their own, greeted and addressed to the people there); one copy for
    everything else, and for a family at one address."""
    households = context["recipients"]
    if letter.audience != Audience.PARENTS or len(households) < 2:
        return [(context, letter.title)]
    return [
        (
            context | {"greeting": h["greeting"], "recipients": [h], "address_block": address_block([h])},
            household_title(letter.title, h["names"]),
        )
        for h in households
    ]


# --- sample data for check-templates and the tests ---------------------------------------------------


@cache
def _samples() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("senforms.samples").joinpath("forms.json").read_text(encoding="utf-8")
    )
    return data


@cache
def sample_forms() -> tuple[FormModel, ...]:
    """The sample pupil's forms, oldest first, validated by their kinds' models."""
    return tuple(KINDS[item["kind"]].model.model_validate(item["answers"]) for item in _samples()["forms"])


def _sample_for(letter: Letter, form: FormModel) -> FormModel:
    """The sample form itself, or, for a letter it does not issue (the ending letter, when the
    sample review decided on a specialist), the same form with the answers from the samples'
    ``variants`` (by letter name, else by decision): every letter is checked with a form that
    issues it."""
    variants = _samples().get("variants", {})
    variant = variants.get(letter.name)
    if variant is None and letter.decisions and not letter.issued_by(form, letter.kind):
        variant = variants.get(letter.decisions[0])
    if variant is None:
        return form
    return type(form).model_validate(form.model_dump(mode="json") | variant)


def sample_context(letter: Letter | str, *, today: date = date(2026, 11, 22)) -> dict[str, Any]:
    """The context a letter gets, built by the real letter context and rules from the sample
    forms: the latest sample of the letter's kind, with every sample before it as history."""
    letter = LETTERS[letter] if isinstance(letter, str) else letter
    samples = sample_forms()
    if not letter.kind:
        # Issued by date, not by a form (the annual report): the sample pupil's whole school year,
        # reported on 15 July at its end.
        return annual_report_context(
            _sample_settings(),
            samples[-1].pupil,  # type: ignore[attr-defined]
            History(samples),
            since=date(2026, 9, 1),
            until=date(2027, 7, 15),
            today=date(2027, 7, 15),
        )
    model = KINDS[letter.kind].model
    index = max(i for i, f in enumerate(samples) if type(f) is model)
    form, past = _sample_for(letter, samples[index]), History(samples[:index])
    decided = rules.what_next(form, past)
    return letter_context(
        _sample_settings(),
        form,
        history=past.with_form(form),
        flags=decided.flags,
        corrected=False,
        today=today,
    )


def _sample_settings() -> Settings:
    return Settings(
        home=Path("."),
        school={
            "name": "Oakfield Primary School",
            "address": "Church Road\nOakfield\nOK1 4CD",
            "phone": "01632 960000",
            "email": "office@oakfield.example.sch.uk",
        },
        signatory={"name": "Mr Samuel Okafor", "role": "SENCO"},
        sendiass={
            "name": "Oakshire SENDIASS",
            "phone": "01632 960111",
            "website": "www.oakshiresendiass.example.org",
            "local_offer": "www.oakshire.example.gov.uk/localoffer",
        },
    )


# A reading age of 11 (Flesch-Kincaid grade 6) or under for every parent letter (issue 10.4).
READING_AGE_LIMIT = 11
GRADE_TO_AGE = 5  # a US school grade plus five is the usual reading age


def letter_text(content: bytes) -> str:
    """What a parent reads in a rendered letter: every paragraph and table cell, in order
    (the footer's reference line is left out)."""
    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    doc = Document(io.BytesIO(content))
    lines: list[str] = []
    for block in doc.element.body.iterchildren():
        if block.tag.endswith("}p"):
            lines.append(Paragraph(block, doc).text)
        elif block.tag.endswith("}tbl"):
            for row in Table(block, doc).rows:
                lines.extend(cell.text for cell in row.cells)
    # A line without a full stop (a heading, a table cell) ends a sentence too.
    return "\n".join(
        line if line.rstrip().endswith((".", "?", "!", ":")) else f"{line}." for line in lines if line.strip()
    )


def reading_grade(text: str) -> float:
    import textstat

    return float(textstat.flesch_kincaid_grade(text))


def reading_ages(settings: Settings) -> list[tuple[str, float]]:
    """Each parent letter in use, filled in with the sample details, and its reading age
    (Flesch-Kincaid grade + 5). Letters that cannot be filled in are left to check_templates."""
    ages = []
    for letter in LETTERS.values():
        if letter.audience != Audience.PARENTS:
            continue
        try:
            content = render_docx(letter_template(settings, letter.name), sample_context(letter))
        except TemplateError:
            continue
        ages.append((letter.name, round(reading_grade(letter_text(content)) + GRADE_TO_AGE, 1)))
    return ages


def check_templates(settings: Settings) -> list[str]:
    """Every problem with the letter templates in use, in plain English; empty when all is well."""
    problems: list[str] = []
    for letter in LETTERS.values():
        try:
            render_docx(letter_template(settings, letter.name), sample_context(letter))
        except TemplateError as exc:
            problems.append(exc.message)
    own = settings.templates / LETTERS_FOLDER
    if own.is_dir():
        for path in sorted(own.glob("*.docx")):
            if path.stem == "evidence-summary":
                # The letter the evidence pack replaced: say so, rather than only that it is unused.
                problems.append(
                    f"{path} is no longer used: the evidence for an EHC needs assessment request is now "
                    "the evidence pack, which senforms writes itself. You can delete this file."
                )
            elif path.stem not in LETTERS and not path.name.startswith(("~$", ".~")):
                problems.append(
                    f"{path} is not one of the letters senforms writes, so it is never used. "
                    f"Letter templates are named {', '.join(letter.filename for letter in LETTERS.values())}."
                )
    return problems
