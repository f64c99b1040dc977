"""A school's year through the command line, as README.md tells a new school to run it: the roll
imported from a SIMS export, forms filled in Word dropped in the inbox, ``senforms watch --once``,
and time moved with ``--today`` from September to the annual report in July. Each assertion is
something a school tripped over when this was first tried by hand."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import docx
import pytest

from senforms.cli import main
from tests.pipeline_helpers import complete, filled, values

UPN = "H801200001001"  # Amelia Hart, 14/02/2016: the pupil of tests/cases/*.json
FOLDER = f"Hart Amelia ({UPN})"

# SIMS as a school exports it: "Reg" for the registration group, the pupil's address, and the
# second parent's own address in "Contact 2 Address" (parents at two addresses).
ROLL = (
    "UPN,Legal Surname,Legal Forename,Preferred Forename,DOB,Gender,Year,Reg,Address,"
    "Contact 1 Name,Contact 1 Relationship,Contact 1 Email,Contact 1 Telephone,Contact 1 Parental Responsibility,"
    "Contact 2 Name,Contact 2 Relationship,Contact 2 Email,Contact 2 Telephone,Contact 2 Parental Responsibility,"
    "Contact 2 Address\r\n"
    f'{UPN},Hart,Amelia,Millie,14/02/2016,F,Year 4,4W,"14 Orchard Close\nLittle Bramford\nNorfolk NR14 6QT",'
    "Mrs Joanna Hart,Mother,jo.hart@example.org.uk,07700 900123,Yes,"
    'Mr Daniel Hart,Father,dan.hart@example.org.uk,07700 900124,Yes,"Flat 3, 22 King Street\nNorwich\nNR1 1PD"\r\n'
)


def text(path: Path) -> str:
    document = docx.Document(str(path))
    cells = [cell.text for table in document.tables for row in table.rows for cell in row.cells]
    return "\n".join([p.text for p in document.paragraphs] + cells)


def letters_list(outbox: Path, day: str) -> list[dict[str, str]]:
    raw = (outbox / "parents" / f"Letters to send {day}.csv").read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(raw)))


def test_a_school_year_from_the_roll_to_the_annual_report(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = home / "senforms.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('annual_report = ""', 'annual_report = "15 July"'), "utf-8"
    )
    outbox, inbox = home / "outbox", home / "inbox"
    inbox.mkdir(exist_ok=True)

    def cli(day: str, *args: str) -> int:
        return main(["--home", str(home), "--today", day, *args])

    (home / "roll.csv").write_bytes(ROLL.encode("cp1252"))
    assert cli("2026-09-01", "pupils", "import", str(home / "roll.csv")) == 0
    assert "'Reg'" not in capsys.readouterr().out  # the class column was understood

    # September: the early discussion, typed in Word without the parents (the roll has them).
    early = values("early-discussion", meeting_date="2026-09-15", next_meeting_date="2026-09-29")
    early["pupil"]["parents"] = []
    (inbox / "Millie early discussion.docx").write_bytes(filled("early-discussion", early))
    assert cli("2026-09-17", "watch", "--once") == 0
    notice = outbox / "parents" / FOLDER / "2026-09-17 Formal notification of SEN support for Mr Daniel Hart.docx"
    assert "Year 4, 4W class" in text(notice)
    # The office's list says who each copy is for and where it goes: the roll's contacts.
    rows = letters_list(outbox, "2026-09-17")
    assert {r["Recipient"] for r in rows} == {"Mrs Joanna Hart", "Mr Daniel Hart"}
    assert {r["Address"] for r in rows} == {
        "14 Orchard Close, Little Bramford, Norfolk NR14 6QT",
        "Flat 3, 22 King Street, Norwich, NR1 1PD",
    }
    # The week's digest, written by the same run, counts the meeting just filed.
    digest = text(outbox / "senco" / "2026-09-17 Weekly digest 2026-W38.docx")
    assert "Every pupil on SEN support has met" not in digest
    assert "15 September 2026" in digest

    # The pupil's record says where each parent's letters go.
    capsys.readouterr()
    assert cli("2026-09-17", "pupil", UPN) == 0
    assert "Mr Daniel Hart (Father), Flat 3, 22 King Street, Norwich, NR1 1PD; dan.hart@" in capsys.readouterr().out

    # The plan, completed on the pre-filled form; review on 8 December.
    prefilled = next((outbox / "senco" / FOLDER).glob("* SEN support plan (pre-filled).docx")).read_bytes()
    plan = values("support-plan", plan_date="2026-09-29", review_date="2026-12-08", cycle=1)
    del plan["pupil"]
    (inbox / "Millie plan.docx").write_bytes(complete(prefilled, "support-plan", plan))
    assert cli("2026-10-01", "watch", "--once") == 0

    # The review record reaches the SENCO 14 days ahead, not before, named as people write dates.
    assert cli("2026-11-23", "round") == 0
    assert not list((outbox / "senco" / FOLDER).glob("* Review record for *"))
    assert cli("2026-11-24", "round") == 0
    record = outbox / "senco" / FOLDER / "2026-11-24 Review record for 8 December 2026 (pre-filled).docx"
    assert record.exists()
    capsys.readouterr()
    assert cli("2026-12-10", "due") == 0
    assert "2 days overdue" in capsys.readouterr().out

    # The annual report on its day, one copy per household, and the office's list for posting them.
    assert cli("2027-07-15", "round") == 0
    rows = letters_list(outbox, "2027-07-15")
    assert sorted((r["Recipient"], r["Letter"]) for r in rows) == [
        ("Mr Daniel Hart", "Annual report on SEN support for Mr Daniel Hart"),
        ("Mrs Joanna Hart", "Annual report on SEN support for Mrs Joanna Hart"),
    ]

    # The evidence pack goes where the SENCO's documents go, not into whatever folder is current.
    assert cli("2027-07-15", "evidence", UPN) == 0
    assert (outbox / "senco" / f"Evidence pack {UPN} 2027-07-15.docx").exists()
    assert cli("2027-07-15", "provision-map") == 0
    assert (outbox / "senco" / "Provision map 2026-09-01 to 2027-07-15.xlsx").exists()


def test_letters_greet_parents_by_the_titles_a_roll_gives() -> None:
    from senforms.context import salutation

    assert salutation(["Mme Hélène Brontë"]) == "Dear Mme Brontë"
    assert salutation(["Revd Paul Adeyemi", "Prof. Ann Lee"]) == "Dear Revd Adeyemi and Prof Lee"
    assert salutation(["Sir John Smith"]) == "Dear Sir John Smith"  # not "Sir Smith"
    assert salutation(["Mrs Anne de Vries", "Mr Ali Khan Jr"]) == "Dear Mrs de Vries and Mr Khan"
    assert salutation(["Mr Paul De Souza", "Mrs de Vries", "Mr Al Smith"]) == (
        "Dear Mr De Souza and Mrs de Vries and Mr Smith"
    )
