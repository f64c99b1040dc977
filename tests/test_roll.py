"""The pupil roll (`senforms pupils import`): real CSV files as SIMS, Arbor and Bromcom export
them (Windows-1252 and UTF-8 with a BOM, commas and semicolons, addresses over several lines),
read with their errors by line and column; imported into the archive on SQLite and PostgreSQL
without losing history or silently changing who a pupil is; and the roll's details on the
letters and pre-filled forms the pipeline writes afterwards."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from senforms.archive import tables as t
from senforms.archive.roll import RollFileError, match_columns, read_roll
from senforms.cli import main
from senforms.config import Settings
from senforms.errors import ExitCode
from senforms.pipeline import Pipeline
from tests import test_pipeline
from tests.pipeline_helpers import drop, filled, pupil_upn, values
from tests.test_pipeline import docx_text, extract_partial

archive_url, cfg, pipeline = test_pipeline.archive_url, test_pipeline.cfg, test_pipeline.pipeline

AMELIA = "H801200001001"  # the pupil of tests/cases/*.json: Amelia Hart, 14/02/2016
ZOE, SAM, LEO = pupil_upn(50), pupil_upn(51), pupil_upn(52)
BAD_CHECK = "Z801200001001"  # Amelia's digits with the wrong check letter (should be H)

# SIMS: a report exported by Excel on a Windows computer ("CSV", so Windows-1252), with the
# address in one quoted cell over several lines, and contacts as "Contact N ..." columns.
SIMS_HEADER = (
    "UPN,Legal Surname,Legal Forename,Preferred Surname,Preferred Forename,Date of Birth,Year,Reg Group,"
    "Address,Contact 1 Name,Contact 1 Relationship,Contact 1 Email,Contact 1 Telephone,"
    "Contact 1 Parental Responsibility,Contact 2 Name,Contact 2 Relationship,Contact 2 Telephone,"
    "Contact 2 Parental Responsibility,Admission Number\r\n"
)


def sims_row(upn: str, surname: str, forename: str, born: str, year: str, reg: str, **more: str) -> str:
    cells = [
        upn,
        surname,
        forename,
        more.get("preferred_surname", ""),
        more.get("preferred", ""),
        born,
        year,
        reg,
        more.get("address", '"1 Mill Lane\nLittle Bramford\nNorfolk NR14 6QX"'),
        more.get("contact", "Mrs Rachel Hart"),
        "Mother",
        more.get("email", "rachel.hart@example.org.uk"),
        "07700 900999",
        "Yes",
        more.get("contact2", "Mrs Ann Hart"),
        "Grandmother",
        "01603 000000",
        "No",
        "1001",
    ]
    return ",".join(cells) + "\r\n"


def sims_roll(*rows: str) -> bytes:
    return (SIMS_HEADER + "".join(rows)).encode("cp1252")


AMELIA_ROW = sims_row(AMELIA, "Hart", "Amelia", "14/02/2016", "Year 5", "5 Oak", preferred="Mia")
ZOE_ROW = sims_row(ZOE, "Brontë", "Zoë", "06/06/2016", "Year 5", "5 Oak", contact="Mr Tomás Brontë")
SAM_ROW = sims_row(SAM, "Okafor", "Samuel", "01/09/2015", "Year 6", "6 Ash", preferred="Sam")


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def run(cfg: Settings, *args: str) -> int:
    archive = ["--archive", cfg.database_url] if cfg.archive_url else []
    return main(["--home", str(cfg.home), *archive, "pupils", "import", *args])


def pupils(cfg: Settings) -> dict[str, Any]:
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(t.Pupil)).all()
        parents = conn.execute(select(t.Parent).order_by(t.Parent.pupil_id, t.Parent.position)).all()
    engine.dispose()
    out = {}
    for r in rows:
        out[r.upn] = {
            "name": (r.legal_forename, r.legal_surname),
            "born": r.date_of_birth.isoformat(),
            "year": r.year_group,
            "class": r.class_name,
            "preferred": (r.preferred_name, r.preferred_surname),
            "roll": r.roll_updated_at is not None,
            "parents": [(p.name, p.relationship, p.address, p.email, p.phone) for p in parents if p.pupil_id == r.id],
        }
    return out


def table_counts(cfg: Settings) -> dict[str, int]:
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        counts = {
            table.__tablename__: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (t.Pupil, t.Parent, t.ReceivedForm, t.Cycle, t.SenStatus, t.Meeting, t.Event)
        }
    engine.dispose()
    return counts


# --- reading the files ----------------------------------------------------------------------------


def test_sims_windows_1252_with_addresses_over_several_lines() -> None:
    roll = read_roll(sims_roll(AMELIA_ROW, ZOE_ROW))
    assert roll.errors == []
    assert (roll.encoding, roll.delimiter) == ("Windows-1252", ",")
    amelia, zoe = roll.pupils
    assert (zoe.legal_forename, zoe.legal_surname) == ("Zoë", "Brontë")
    assert (amelia.year_group, amelia.class_name, amelia.preferred_forename) == ("5", "5 Oak", "Mia")
    # The first row's address runs over three lines: Zoë's row starts on line 5.
    assert (amelia.line, zoe.line) == (2, 5)
    mother, grandmother = amelia.contacts
    assert mother.name == "Mrs Rachel Hart" and mother.responsibility is True
    assert mother.address == "1 Mill Lane\nLittle Bramford\nNorfolk NR14 6QX"
    assert grandmother.responsibility is False and grandmother.address == mother.address
    assert zoe.contacts[0].name == "Mr Tomás Brontë"
    assert roll.unused == ["Admission Number"]


def test_arbor_utf8_with_bom_and_priority_contacts() -> None:
    text = (
        "Legal first name,Legal last name,Preferred first name,Date of birth,Year group,Registration form,UPN,"
        "Priority 1 contact,Priority 1 contact relationship,Priority 1 contact email,Priority 1 contact mobile,"
        "Priority 2 contact,Priority 2 contact relationship,Priority 2 contact mobile\n"
        f"Zoë,Brontë,,2016-06-06,Reception,RB,{ZOE},Chloé Brontë,Mother,chloe@example.org.uk,07700 900001,"
        "Dan Brontë,Father,07700 900002\n"
        f"Samuel,Okafor,Sam,01/09/2015,Y6,6A,{SAM},Ife Okafor,Grandmother,,07700 900003,Ada Okafor,Foster carer,\n"
    )
    roll = read_roll(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert roll.errors == [] and roll.encoding == "UTF-8"
    zoe, sam = roll.pupils
    assert (zoe.upn, zoe.legal_forename, zoe.year_group, zoe.class_name) == (ZOE, "Zoë", "R", "RB")
    assert [(c.name, c.relationship, c.email) for c in zoe.contacts] == [
        ("Chloé Brontë", "Mother", "chloe@example.org.uk"),
        ("Dan Brontë", "Father", None),
    ]
    assert (sam.year_group, sam.preferred_forename) == ("6", "Sam")
    # No parental responsibility column: letters go to the foster carer, not the grandmother.
    from senforms.archive.roll import recipients

    assert [c.name for c in recipients(sam.contacts)] == ["Ada Okafor"]


def test_bromcom_semicolons_and_address_in_parts() -> None:
    text = (
        "UPN;Legal Last Name;Legal First Name;Preferred First Name;Preferred Last Name;DOB;NC Year;Tutor Group;"
        "Address Line 1;Town;Postcode;Contact1_Title;Contact1_Forename;Contact1_Surname;Contact1_Relationship;"
        "Contact1_Email;Contact1_Mobile\n"
        f"{SAM};Okafor;Samuel;Sam;Okafor-Reid;01/09/2015;Year 6;6 Ash;3 Elm Road;Norwich;NR1 1AA;Mrs;Ife;Okafor;"
        "Mother;ife@example.org.uk;07700 900003\n"
    )
    roll = read_roll(text.encode("utf-8"))
    assert roll.errors == [] and roll.delimiter == ";"
    (sam,) = roll.pupils
    assert (sam.preferred_forename, sam.preferred_surname, sam.class_name) == ("Sam", "Okafor-Reid", "6 Ash")
    (mother,) = sam.contacts
    assert (mother.name, mother.address, mother.phone) == (
        "Mrs Ife Okafor",
        "3 Elm Road\nNorwich\nNR1 1AA",
        "07700 900003",
    )


def test_utf8_without_bom_and_excel_semicolons_with_its_sep_line() -> None:
    plain = read_roll(sims_roll(ZOE_ROW).decode("cp1252").encode("utf-8"))
    assert plain.encoding == "UTF-8" and plain.pupils[0].legal_forename == "Zoë"
    # Excel in a locale with a decimal comma: semicolons, a "sep=;" first line, Windows-1252.
    text = (
        "sep=;\r\nUPN;Legal Surname;Legal Forename;DOB;Year;Class\r\n"
        f"{ZOE};Brontë;Zoë;06/06/2016;5;5 Oak\r\n{SAM};Okafor;Samuel;31/02/2015;6;6 Ash\r\n"
    )
    roll = read_roll(text.encode("cp1252"))
    assert (roll.encoding, roll.delimiter) == ("Windows-1252", ";")
    assert [(p.legal_forename, p.year_group) for p in roll.pupils] == [("Zoë", "5")]
    assert [str(e) for e in roll.errors] == ["Line 4, column 'DOB': '31/02/2015' is not a real date"]


def test_column_names_match_whatever_the_case_spaces_or_punctuation() -> None:
    columns = match_columns(["U.P.N.", "legal_surname", "LEGAL FORENAME", "D.O.B", "nc-year", "Reg. Group", "Surname"])
    assert columns.pupil == {
        "upn": 0,
        "legal_surname": 1,
        "legal_forename": 2,
        "date_of_birth": 3,
        "year_group": 4,
        "class_name": 5,
    }
    # "Surname" beside "Legal Surname" is not taken for the legal name; it is reported unused.
    assert columns.unused == ["Surname"]
    contacts = match_columns(
        ["Primary Contact Name", "Secondary Contact Email", "Contact 3 Mobile", "Priority 1 contact"]
    )
    assert contacts.contacts == {1: {"name": [0, 3]}, 2: {"email": [1]}, 3: {"phone": [2]}}


def test_bad_rows_are_reported_by_line_and_column_and_the_others_are_read() -> None:
    roll = read_roll(
        sims_roll(
            AMELIA_ROW,
            sims_row(SAM, "Okafor", "Samuel", "31/02/2015", "Year 6", "6 Ash"),
            sims_row(BAD_CHECK, "Hart", "Ava", "14/02/2016", "Year 5", "5 Oak"),
            sims_row(LEO, "", "Leo", "01/01/2016", "Year 12b", "5 Oak", email="not an address"),
            ZOE_ROW,
            AMELIA_ROW,
        )
    )
    assert [p.upn for p in roll.pupils] == [AMELIA, ZOE]
    messages = [str(e) for e in roll.errors]
    assert messages[0] == "Line 5, column 'Date of Birth': '31/02/2015' is not a real date"
    assert messages[1].startswith(f"Line 8, column 'UPN': {BAD_CHECK} has the wrong check letter")
    assert "would be H" in messages[1]
    assert messages[2:5] == [
        "Line 11, column 'Legal Surname': is blank",
        "Line 11, column 'Year': 'Year 12b' is not a year group (Nursery, Reception or Year 1 to 13)",
        "Line 11, column 'Contact 1 Email': 'not an address' is not an e-mail address",
    ]
    assert messages[5] == f"Line 17, column 'UPN': UPN {AMELIA} is also on line 2; a pupil is on the roll once"


def test_a_file_that_is_no_roll_says_which_columns_are_missing() -> None:
    with pytest.raises(RollFileError) as caught:
        read_roll(b"Name,Class\r\nAmelia Hart,5 Oak\r\n")
    assert "no column for the pupils' UPN, legal surname, legal forename, date of birth, year group" in str(
        caught.value
    )
    assert "'Name', 'Class'" in str(caught.value)


@pytest.mark.parametrize("kind", ["xlsx", "docx", "xls"])
def test_an_excel_or_word_file_given_as_the_roll_says_save_it_as_csv(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """The office gives the register as it keeps it, an Excel workbook (or a Word document), and
    under any name: senforms says what the file is and how to save it as CSV, never the ZIP's
    insides as 'column names'."""
    import docx
    import openpyxl

    body = io.BytesIO()
    if kind == "xlsx":
        book = openpyxl.Workbook()
        book.active.append(["UPN", "Legal Surname", "Legal Forename", "Date of Birth", "Year"])
        book.active.append([AMELIA, "Hart", "Amelia", "14/02/2016", "Year 5"])
        book.save(body)
    elif kind == "docx":
        document = docx.Document()
        document.add_paragraph("UPN,Legal Surname,Legal Forename,Date of Birth,Year")
        document.save(body)
    else:  # an Excel 97-2003 workbook starts with the compound file signature
        body.write(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + "Workbook".encode("utf-16-le"))
    data = body.getvalue()
    with pytest.raises(RollFileError) as caught:
        read_roll(data)
    what = "a Word document" if kind == "docx" else "an Excel workbook"
    assert f"is {what}, not a CSV file" in caught.value.message
    # Whatever the file is called, even .csv.
    assert run(cfg, str(write(tmp_path, "SEND register.csv", data))) == ExitCode.unreadable_file
    err = capsys.readouterr().err
    assert f"is {what}, not a CSV file" in err
    assert 'File > Save As' in err and '"CSV UTF-8 (Comma delimited)"' in err
    assert "PK" not in err and "Content_Types" not in err and "columns are" not in err


# --- into the archive ---------------------------------------------------------------------------


def test_import_reimport_confirmations_and_leavers(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Amelia's record starts with her early discussion (year 4, class Willow, Joanna Hart).
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    before = table_counts(cfg)
    capsys.readouterr()

    first = write(tmp_path, "roll.csv", sims_roll(AMELIA_ROW, ZOE_ROW))
    assert run(cfg, str(first)) == ExitCode.ok
    out = capsys.readouterr().out
    assert "Read roll.csv (Windows-1252, separated by commas): 2 pupils." in out
    assert f"Added 1 new pupil:\n  UPN {ZOE} Zoë Brontë" in out
    assert (
        f"UPN {AMELIA}: year group Year 4 -> Year 5; class Willow -> 5 Oak; preferred forename Millie -> Mia; "
        "contacts now Mrs Rachel Hart (Mother)"
    ) in out
    now = pupils(cfg)
    assert now[ZOE]["name"] == ("Zoë", "Brontë") and now[ZOE]["roll"]
    assert (now[AMELIA]["year"], now[AMELIA]["class"], now[AMELIA]["preferred"]) == ("5", "5 Oak", ("Mia", None))
    assert [p[0] for p in now[AMELIA]["parents"]] == ["Mrs Rachel Hart"]  # the grandmother has no PR
    after = table_counts(cfg)
    # History untouched: the same forms, cycles, register entries and meetings.
    for table in ("received_forms", "cycles", "sen_status", "meetings"):
        assert after[table] == before[table]

    # The next export: Zoë's date of birth differs, Amelia moved class, Sam joined; Zoë is kept
    # as she was and the exact command to confirm is printed; nobody is deleted.
    second = write(
        tmp_path,
        "roll2.csv",
        sims_roll(
            sims_row(AMELIA, "Hart", "Amelia", "14/02/2016", "Year 5", "5 Elm", preferred="Mia"),
            sims_row(ZOE, "Brontë", "Zoë", "07/06/2016", "Year 5", "5 Oak", contact="Mr Tomás Brontë"),
            SAM_ROW,
        ),
    )
    assert run(cfg, str(second)) == ExitCode.identity_conflict
    out = capsys.readouterr().out
    assert f"UPN {AMELIA}: class 5 Oak -> 5 Elm" in out
    assert f"UPN {SAM}" in out
    assert (
        f"UPN {ZOE}: date of birth 07/06/2016 on the roll, 06/06/2016 in the archive. If the roll is right, run: "
        f'senforms pupil fix {ZOE} --date-of-birth "07/06/2016"'
    ) in out
    now = pupils(cfg)
    assert now[ZOE]["born"] == "2016-06-06"
    assert now[AMELIA]["class"] == "5 Elm" and now[SAM]["preferred"] == ("Sam", None)

    # A roll without Zoë: she is listed, never deleted.
    third = write(tmp_path, "roll3.csv", sims_roll(AMELIA_ROW, SAM_ROW))
    assert run(cfg, str(third)) == ExitCode.ok
    out = capsys.readouterr().out
    assert (
        f"In the archive but not on this roll (1 pupil, perhaps left; nothing has been deleted):\n  UPN {ZOE} Zoë Brontë"
        in out
    )
    assert ZOE in pupils(cfg)

    # The SENCO confirms with the command printed; the same roll then applies cleanly.
    assert main(["--home", str(cfg.home), *(["--archive", cfg.database_url] if cfg.archive_url else []),
                 "pupil", "fix", ZOE, "--date-of-birth", "07/06/2016"]) == ExitCode.ok  # fmt: skip
    capsys.readouterr()
    assert run(cfg, str(second)) == ExitCode.ok
    assert pupils(cfg)[ZOE]["born"] == "2016-06-07"


def test_a_pupil_recorded_as_left_but_on_the_roll_is_never_up_to_date(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A child the SENCO recorded as having left (``senforms pupil UPN --left``) who is on the
    roll is either on an older export or back at the school: the import says so, for a person to
    check, rather than counting them "already up to date"."""
    roll = write(tmp_path, "roll.csv", sims_roll(AMELIA_ROW, ZOE_ROW))
    assert run(cfg, str(roll)) == ExitCode.ok
    archive = ["--archive", cfg.database_url] if cfg.archive_url else []
    assert main(["--home", str(cfg.home), *archive, "pupil", ZOE, "--left", "20/07/2026", "--to", "Elm Academy"]) == 0
    capsys.readouterr()
    assert run(cfg, str(roll)) == ExitCode.ok
    out = capsys.readouterr().out
    assert "Read roll.csv (Windows-1252, separated by commas): 2 pupils." in out
    assert "1 pupil already up to date." in out  # Amelia; not Zoë
    assert (
        "On this roll, but recorded in the archive as having left (1 pupil): check the school's records. The roll "
        "may be an older export, or the child may have come back; the archive still says they left:\n"
        f"  UPN {ZOE} Zoë Brontë, left 20/07/2026"
    ) in out
    assert pupils(cfg)[ZOE]["name"] == ("Zoë", "Brontë")  # kept as she was


def test_check_changes_nothing(cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(cfg, str(write(tmp_path, "roll.csv", sims_roll(AMELIA_ROW)))) == ExitCode.ok
    before = (pupils(cfg), table_counts(cfg))
    capsys.readouterr()
    changed = sims_roll(sims_row(AMELIA, "Hart", "Amelia", "14/02/2016", "Year 6", "6 Ash"), ZOE_ROW)
    assert run(cfg, str(write(tmp_path, "roll2.csv", changed)), "--check") == ExitCode.ok
    out = capsys.readouterr().out
    assert "Checked only: nothing has been changed." in out
    assert f"Would add 1 new pupil:\n  UPN {ZOE}" in out
    assert f"Would update 1 pupil:\n  UPN {AMELIA}: year group Year 5 -> Year 6; class 5 Oak -> 6 Ash" in out
    assert (pupils(cfg), table_counts(cfg)) == before


def test_bad_rows_give_a_failing_exit_code_and_the_good_rows_are_imported(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = sims_roll(AMELIA_ROW, sims_row(SAM, "Okafor", "Samuel", "31/02/2015", "Year 6", "6 Ash"), ZOE_ROW)
    assert run(cfg, str(write(tmp_path, "roll.csv", data))) == ExitCode.some_files_failed
    err = capsys.readouterr().err
    assert "Line 5, column 'Date of Birth': '31/02/2015' is not a real date" in err
    assert "The other rows were imported." in err
    assert sorted(pupils(cfg)) == sorted([AMELIA, ZOE])


def test_a_temporary_upn_replaced_on_the_roll_is_not_a_second_child(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.test_identity import temporary_upn

    temporary = temporary_upn(7)
    assert run(cfg, str(write(tmp_path, "a.csv", sims_roll(sims_row(temporary, "Hart", "Amelia", "14/02/2016", "5", "")))))  == 0  # fmt: skip
    capsys.readouterr()
    assert run(cfg, str(write(tmp_path, "b.csv", sims_roll(AMELIA_ROW)))) == ExitCode.identity_conflict
    assert f"run: senforms pupil fix {temporary} --upn {AMELIA}" in capsys.readouterr().out
    assert sorted(pupils(cfg)) == [temporary]


# --- the roll's details on what the pipeline writes --------------------------------------------------


def test_prefilled_form_and_letters_carry_the_roll_details(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    # The roll says Year 5, class 5 Oak, known as Mia, mother Rachel Hart at 1 Mill Lane; the
    # early discussion note, filled weeks ago, says Year 4, Willow, Millie, Joanna Hart at
    # 14 Orchard Close.
    assert run(cfg, str(write(tmp_path, "roll.csv", sims_roll(AMELIA_ROW)))) == ExitCode.ok
    early = values("early-discussion")
    done = pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early)))
    assert done.status == "processed"
    folder = f"Hart Amelia ({AMELIA})"
    plan = cfg.outbox / f"senco/{folder}/2026-11-22 SEN support plan (pre-filled).docx"
    known, _ = extract_partial(plan.read_bytes())
    assert (known["pupil.year_group"], known["pupil.class_name"], known["pupil.preferred_name"]) == (
        "Year 5",
        "5 Oak",
        "Mia",
    )
    assert known["pupil.parents.0.name"] == "Mrs Rachel Hart"
    assert "1 Mill Lane" in str(known["pupil.parents.0.address"])
    letter = docx_text(cfg.outbox / f"parents/{folder}/2026-11-22 Formal notification of SEN support.docx")
    assert "Mia" in letter and "Millie" not in letter
    assert "1 Mill Lane" in letter and "Orchard Close" not in letter
    assert "Dear Mrs Hart" in letter
    # The form is filed as it came; the archive's pupil keeps the roll's details.
    now = pupils(cfg)[AMELIA]
    assert (now["year"], now["class"], now["preferred"][0]) == ("5", "5 Oak", "Mia")
    assert [p[0] for p in now["parents"]] == ["Mrs Rachel Hart"]
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        data = conn.execute(select(t.ReceivedForm.data)).scalar_one()
    engine.dispose()
    assert '"class_name":"Willow"' in data and "Joanna Hart" in data


def test_the_form_fills_what_the_roll_left_empty_for_the_same_person(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    """A SIMS roll gives contacts without how each likes to be contacted; the form says e-mail for
    the mother and letter for the stepfather. The form's answers fill what the roll left empty,
    matched by name (the roll's "Mrs Joanna Hart" is the form's "Joanna Hart"), not by position
    (the form lists them the other way round), and never replace what the roll gave."""
    header = (
        "UPN,Legal Surname,Legal Forename,Date of Birth,Year,Reg Group,Address,"
        "Contact 1 Name,Contact 1 Relationship,Contact 1 Email,Contact 1 Parental Responsibility,"
        "Contact 2 Name,Contact 2 Relationship,Contact 2 Address,Contact 2 Telephone,"
        "Contact 2 Parental Responsibility\r\n"
    )
    row = (
        f'{AMELIA},Hart,Amelia,14/02/2016,Year 5,5 Oak,"1 Mill Lane, Little Bramford, Norfolk NR14 6QX",'
        'Mrs Joanna Hart,Mother,joanna.roll@example.org.uk,Yes,'
        'Mr Łukasz Nowak,Stepfather,"22 Station Road, Norwich NR1 1AA",01603 000000,Yes\r\n'
    )
    assert run(cfg, str(write(tmp_path, "roll.csv", (header + row).encode("utf-8-sig")))) == ExitCode.ok
    form_parents = [
        {"name": "Łukasz Nowak", "relationship": "Stepfather", "address": "9 Other Street\nNorwich NR2 2BB",
         "email": "lukasz@example.org.uk", "phone": "07700 900456", "preferred_contact": "letter"},
        {"name": "Joanna Hart", "relationship": "Mother", "address": "14 Orchard Close\nLittle Bramford\nNorfolk NR14 6QT",
         "email": "jo.hart@example.org.uk", "phone": "07700 900123", "preferred_contact": "email"},
    ]  # fmt: skip
    early = values("early-discussion", pupil={"parents": form_parents})
    assert pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early))).status == "processed"
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        kept = conn.execute(
            select(t.Parent.name, t.Parent.address, t.Parent.email, t.Parent.phone, t.Parent.preferred_contact)
            .join(t.Pupil, t.Pupil.id == t.Parent.pupil_id)
            .where(t.Pupil.upn == AMELIA)
            .order_by(t.Parent.position)
        ).all()
    engine.dispose()
    assert [tuple(r) for r in kept] == [
        # The roll's address and e-mail stay; the phone the roll lacked and the preference come from the form.
        ("Mrs Joanna Hart", "1 Mill Lane\nLittle Bramford\nNorfolk NR14 6QX", "joanna.roll@example.org.uk",
         "07700 900123", "email"),
        ("Mr Łukasz Nowak", "22 Station Road\nNorwich NR1 1AA", "lukasz@example.org.uk", "01603 000000", "letter"),
    ]  # fmt: skip
    (listing,) = (cfg.outbox / "parents").glob("Letters to send *.csv")
    with listing.open(encoding="utf-8-sig") as f:
        rows = [r for r in csv.DictReader(f) if r["Letter"].startswith("Formal notification")]
    assert {r["Recipient"]: (r["Preferred contact"], r["E-mail"]) for r in rows} == {
        "Mrs Joanna Hart": ("E-mail", "joanna.roll@example.org.uk"),
        "Mr Łukasz Nowak": ("Letter", "lukasz@example.org.uk"),
    }


def test_a_pupil_the_roll_never_named_keeps_the_form_details(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    assert run(cfg, str(write(tmp_path, "roll.csv", sims_roll(ZOE_ROW)))) == ExitCode.ok
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    folder = f"Hart Amelia ({AMELIA})"
    letter = docx_text(cfg.outbox / f"parents/{folder}/2026-11-22 Formal notification of SEN support.docx")
    assert "Millie" in letter and "Orchard Close" in letter


def test_a_pupil_known_only_from_the_roll_still_starts_with_the_early_discussion(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    from senforms.errors import NoSuchPupilError

    assert run(cfg, str(write(tmp_path, "roll.csv", sims_roll(AMELIA_ROW)))) == ExitCode.ok
    plan = filled("support-plan", values("support-plan", pupil=values("early-discussion")["pupil"]))
    with pytest.raises(NoSuchPupilError, match="on the school roll, but the archive has no forms for them yet"):
        pipeline.process_file(drop(tmp_path, "plan.docx", plan))
    pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", values("early-discussion"))))
    assert pipeline.process_file(drop(tmp_path, "plan.docx", plan)).status == "processed"


def test_a_blank_form_filled_in_from_the_roll_reaches_the_right_child(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`senforms blank KIND --upn UPN`: the office starts a pupil's first form with the child's
    UPN, legal name, date of birth, class and parents as the roll gives them, instead of typing
    them again; the SENCO completes the rest in Word and the form is filed against that child."""
    from tests.pipeline_helpers import complete

    assert run(cfg, str(write(tmp_path, "roll.csv", sims_roll(AMELIA_ROW, ZOE_ROW)))) == ExitCode.ok
    archive = ["--archive", cfg.database_url] if cfg.archive_url else []
    out = tmp_path / "Zoe early discussion.docx"
    code = main(["--home", str(cfg.home), *archive, "blank", "early-discussion", "--upn", ZOE.lower(), "-o", str(out)])
    assert code == ExitCode.ok
    answers, kind = extract_partial(out.read_bytes())
    assert kind == "early-discussion"
    shown = {k: v for k, v in answers.items() if k.startswith("pupil")}
    assert shown["pupil.upn"] == ZOE and shown["pupil.legal_surname"] == "Brontë"
    assert shown["pupil.legal_forename"] == "Zoë" and shown["pupil.date_of_birth"] == "06/06/2016"
    assert shown["pupil.class_name"] == "5 Oak" and shown["pupil.parents.0.name"] == "Mr Tomás Brontë"
    # The SENCO types the meeting's answers; the pupil's details are left as they came.
    rest = values("early-discussion")
    del rest["pupil"]
    done = pipeline.process_file(drop(tmp_path, "zoe.docx", complete(out.read_bytes(), "early-discussion", rest)))
    assert (done.status, done.upn) == ("processed", ZOE)
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        filed = conn.execute(
            select(t.Pupil.upn, func.count()).join(t.ReceivedForm, t.ReceivedForm.pupil_id == t.Pupil.id).group_by(t.Pupil.upn)
        ).all()
    engine.dispose()
    assert filed == [(ZOE, 1)]

    # Found by a new user: a values file about another child (Amelia's answers, her UPN taken
    # out) with --upn for Zoë went out as Zoë's form, Amelia's words in Zoë's parents' letter.
    import json

    amelia = values("early-discussion")
    del amelia["pupil"]["upn"]
    other = tmp_path / "amelia.json"
    other.write_text(json.dumps(amelia), encoding="utf-8")
    capsys.readouterr()
    mixed = tmp_path / "mixed.docx"
    code = main(
        ["--home", str(cfg.home), *archive, "blank", "early-discussion", "--upn", ZOE, "--data", str(other), "-o", str(mixed)]
    )
    err = capsys.readouterr().err
    assert code != ExitCode.ok and not mixed.exists()
    assert "about another pupil" in err and "its surname is Hart, not Brontë" in err
    # A filled form is never written over by a new blank one.
    before = out.read_bytes()
    code = main(["--home", str(cfg.home), *archive, "blank", "early-discussion", "--upn", ZOE, "-o", str(out)])
    assert code != ExitCode.ok and out.read_bytes() == before
    assert "already exists" in capsys.readouterr().err
    # A UPN typed with dashes is the same UPN, not a "former" one.
    dashed = f"{ZOE[:5]}-{ZOE[5:9]}-{ZOE[9:]}"
    assert main(["--home", str(cfg.home), *archive, "blank", "review", "--upn", dashed, "-o", str(tmp_path / "r.docx")]) == 0
    assert "former UPN" not in capsys.readouterr().out

    # A UPN the archive does not know: a plain message, no file.
    capsys.readouterr()
    missing = tmp_path / "nobody.docx"
    code = main(["--home", str(cfg.home), *archive, "blank", "review", "--upn", SAM, "-o", str(missing)])
    assert code != ExitCode.ok and not missing.exists()
    assert f"No pupil with UPN {SAM} is in the archive." in capsys.readouterr().err
