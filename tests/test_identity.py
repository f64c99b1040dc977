"""Who a form is about, through the real pipeline on real Word forms: a corpus of confusable
pupils (twins, namesakes, a UPN copied from the wrong row, temporary then permanent UPNs, the
same name typed in different ways) on SQLite and PostgreSQL. No form may be filed against the
wrong child, and no form about the same child merely written differently may be set aside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select, text

from senforms.archive import store
from senforms.archive import tables as t
from senforms.cli import main
from senforms.config import Settings
from senforms.deliver import pupil_folder, safe_file_name, safe_name
from senforms.errors import IdentityConflictError
from senforms.pipeline import Pipeline, process_files
from senforms.values import upn_check_letter
from tests import test_pipeline
from tests.pipeline_helpers import drop, filled, pupil_upn, values

# The archive on SQLite and on PostgreSQL, a home folder's settings, and a pipeline.
archive_url, cfg, pipeline = test_pipeline.archive_url, test_pipeline.cfg, test_pipeline.pipeline


def temporary_upn(serial: int) -> str:
    """A valid temporary UPN (it ends in a letter), as a school gives a child whose real UPN has
    not arrived."""
    body = f"8012000{serial:04d}A"
    return upn_check_letter("X" + body) + body


@dataclass
class Entry:
    child: str  # who the form is really about
    expect: str  # "file": filed to that child's one record; "conflict": set aside for a person
    pupil: dict[str, Any]


def person(forename: str, surname: str, born: str, upn: str) -> dict[str, Any]:
    return {"legal_forename": forename, "legal_surname": surname, "date_of_birth": born, "upn": upn}


LONG_SURNAME = "Featherstonehaugh-Wolfeschlegelsteinhausenbergerdorff"
TOM, BEN = pupil_upn(13), pupil_upn(31)  # the same digits, two swapped: each valid, for two children
DECOMPOSED = "Zoe\u0308 Bronte\u0308"  # e + combining diaeresis, as macOS and some web forms send it

CORPUS = [
    Entry("amelia", "file", person("Amelia", "Hart", "2016-02-14", pupil_upn(1))),
    # Twins: same surname, same birthday, two children.
    Entry("ava", "file", person("Ava", "Hart", "2016-02-14", pupil_upn(2))),
    Entry("amelia", "file", person("AMELIA ", " hart", "2016-02-14", pupil_upn(1))),
    Entry("amelia", "file", person("Ame\u200blia", "Hart\u202e", "2016-02-14", pupil_upn(1))),
    # Namesakes with different birthdays: two children.
    Entry("oliver", "file", person("Oliver", "Smith", "2015-05-01", pupil_upn(3))),
    Entry("oliver-2", "file", person("Oliver", "Smith", "2016-09-09", pupil_upn(4))),
    Entry("oliver-2", "file", person("Oliver", "Smith", "2016-09-09", pupil_upn(4))),
    # A UPN with two digits swapped is another pupil's valid UPN.
    Entry("tom", "file", person("Tom", "Reed", "2016-01-01", TOM)),
    Entry("ben", "file", person("Ben", "Cole", "2016-03-03", BEN)),
    Entry("tom", "conflict", person("Tom", "Reed", "2016-01-01", BEN)),
    # A temporary UPN, then the permanent one: a person says they are one child.
    Entry("zara", "file", person("Zara", "Khan", "2016-04-04", temporary_upn(1))),
    Entry("zara", "conflict", person("Zara", "Khan", "2016-04-04", pupil_upn(40))),
    Entry("zara", "file", person("Zara", "Khan", "2016-04-04", temporary_upn(1))),
    # Another child with the same name and birthday as a pupil with a temporary UPN.
    Entry("noah", "file", person("Noah", "Patel", "2015-12-12", temporary_upn(2))),
    Entry("noah-2", "conflict", person("Noah", "Patel", "2015-12-12", pupil_upn(41))),
    # Accents: decomposed is the same name; missing is a likely typo for a person to settle.
    Entry("zoe", "file", person("Zoë", "Brontë", "2016-06-06", pupil_upn(50))),
    Entry("zoe", "file", person(*DECOMPOSED.split(), "2016-06-06", pupil_upn(50))),
    Entry("zoe", "conflict", person("Zoe", "Bronte", "2016-06-06", pupil_upn(50))),
    Entry("zoe-brown", "file", person("Zoë", "Brown", "2016-07-07", pupil_upn(51))),
    Entry("zoe-brown", "conflict", person("Zoe", "Brown", "2016-07-07", pupil_upn(52))),
    # Apostrophes as Word, phones and other programs type them.
    Entry("liam", "file", person("Liam", "O'Brien", "2016-08-08", pupil_upn(60))),
    *(Entry("liam", "file", person("Liam", f"O{a}Brien", "2016-08-08", pupil_upn(60))) for a in "’‘ʼ`"),
    # Hyphens and dashes: Word's AutoCorrect dashes, its non-breaking hyphen, spaces around.
    Entry("maya", "file", person("Maya", "Smith-Jones", "2016-10-10", pupil_upn(61))),
    *(
        Entry("maya", "file", person("Maya", f"Smith{h}Jones", "2016-10-10", pupil_upn(61)))
        for h in ("\u2013", "\u2011", "\u2014", "\u2010", " - ")
    ),
    # Long names: two children with the same long surname.
    Entry("max", "file", person("Maximilian Alexander Christopher", LONG_SURNAME, "2015-11-01", pupil_upn(70))),
    Entry("max-2", "file", person("Maximilian Alexander Christian", LONG_SURNAME, "2016-01-20", pupil_upn(71))),
]


def early(entry: Entry, n: int) -> bytes:
    meeting = date(2025, 9, 1) + timedelta(days=n)
    data = values(
        "early-discussion",
        pupil=entry.pupil,
        meeting_date=meeting.isoformat(),
        next_meeting_date=(meeting + timedelta(days=60)).isoformat(),
        decision="monitor",
    )
    return filled("early-discussion", data)


@dataclass
class Tally:
    wrong_child: list[int]
    second_records: list[str]
    needless: list[int]
    guessed: list[int]
    notes: dict[int, str]
    folders: dict[str, set[str]]


def run_corpus(pipeline: Pipeline, cfg: Settings, tmp_path: Path) -> Tally:
    notes: dict[int, str] = {}
    for n, entry in enumerate(CORPUS):
        try:
            pipeline.process_file(drop(tmp_path, f"form {n}.docx", early(entry, n)))
        except IdentityConflictError as exc:
            notes[n] = exc.note()
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        filed = conn.execute(select(t.ReceivedForm.original_name, t.ReceivedForm.pupil_id).order_by(t.ReceivedForm.id))
        pupil_of = {int(name.split()[1].split(".")[0]): pupil for name, pupil in filed}
        paths = conn.execute(select(t.Document.pupil_id, t.Document.path).where(t.Document.pupil_id.isnot(None)))
        folder_of: dict[int, set[str]] = {}
        for pupil, path in paths:
            folder_of.setdefault(pupil, set()).add(path.split("/")[1])
    engine.dispose()
    owner: dict[int, str] = {}  # each record belongs to the child whose form started it
    for n, pupil in sorted(pupil_of.items()):
        owner.setdefault(pupil, CORPUS[n].child)
    records: dict[str, set[int]] = {}
    for n, pupil in pupil_of.items():
        records.setdefault(CORPUS[n].child, set()).add(pupil)
    return Tally(
        wrong_child=[n for n, pupil in pupil_of.items() if owner[pupil] != CORPUS[n].child],
        second_records=[child for child, ids in records.items() if len(ids) > 1],
        needless=[n for n in notes if CORPUS[n].expect == "file"],
        guessed=[n for n, e in enumerate(CORPUS) if e.expect == "conflict" and n in pupil_of],
        notes=notes,
        folders={owner[p]: f for p, f in folder_of.items()},
    )


def test_confusable_pupils_are_never_filed_against_the_wrong_child(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    tally = run_corpus(pipeline, cfg, tmp_path)
    assert tally.wrong_child == []
    assert tally.second_records == []
    assert tally.needless == [], [tally.notes[n] for n in tally.needless]
    assert tally.guessed == []
    assert len(tally.notes) == sum(e.expect == "conflict" for e in CORPUS)

    def note(child: str, upn: str) -> str:
        [n] = [n for n, e in enumerate(CORPUS) if e.child == child and e.pupil["upn"] == upn and n in tally.notes]
        return tally.notes[n]

    # A UPN from the wrong row: the note says whose name and birthday these are.
    assert f"are those of the pupil with UPN {TOM}" in note("tom", BEN)
    assert "characters 12 and 13 are swapped" in note("tom", BEN)
    # A permanent UPN for a pupil recorded under a temporary one: how to tell the archive.
    assert f"senforms pupil fix {temporary_upn(1)} --upn {pupil_upn(40)}" in note("zara", pupil_upn(40))
    assert f"under UPN {temporary_upn(2)}" in note("noah-2", pupil_upn(41))
    # An accent-only difference is named, not shown as two strings that look alike.
    accent = note("zoe", pupil_upn(50))
    assert "the accent on ë" in accent and "probably a typo" in accent
    assert "“Zoe” on the form, “Zoë” in the archive" in accent
    # Two children with the same long surname: the names are shortened, never the UPN.
    assert tally.folders["max"] != tally.folders["max-2"]
    assert all(f.endswith(f"({pupil_upn(70 + i)})") for i, c in enumerate(("max", "max-2")) for f in tally.folders[c])
    brown = note("zoe-brown", pupil_upn(52))
    assert f"under UPN {pupil_upn(51)}" in brown and "the accent on ë" in brown


# --- folder and file names ------------------------------------------------------------------------


def test_two_children_with_the_same_long_surname_get_their_own_folders(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    surname = "Montgomery-Featherstonehaugh-Wolfeschlegelsteinhausenbergerdorff"
    twins = [("Alexandra Catherine Elizabeth", pupil_upn(81)), ("Alexandra Catherine Eleanor", pupil_upn(82))]
    for n, (forename, upn) in enumerate(twins):
        entry = Entry(forename, "file", person(forename, surname, "2016-05-05", upn))
        pipeline.process_file(drop(tmp_path, f"form {n}.docx", early(entry, n)))
    folders = sorted(p.name for p in (cfg.outbox / "parents").iterdir() if p.is_dir())
    assert [f[-15:] for f in folders] == [f"({upn})" for _, upn in twins]
    assert all(len(f) <= 80 and " Alexandra Cath" in f for f in folders)


def test_a_direction_override_in_a_name_cannot_disguise_a_file_name(
    cfg: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    # U+202E shows what follows backwards: "Hart‮xcod.exe" would show as "Hartexe.docx".
    entry = Entry("amelia", "file", person("Amelia\u200d", "Hart\u202excod.exe\u2066", "2016-02-14", pupil_upn(1)))
    pipeline.process_file(drop(tmp_path, "form.docx", early(entry, 0)))
    names = [p.relative_to(cfg.outbox).as_posix() for p in cfg.outbox.rglob("*")]
    assert names and not [n for n in names if any(c in n for c in "\u202e\u2066\u200d")]
    assert (cfg.outbox / "parents" / f"Hartxcod.exe Amelia ({pupil_upn(1)})").is_dir()
    # The file a person dropped in keeps no such character in problems/ either.
    bad = drop(cfg.inbox, "note\u202excod.docx", b"not a form")
    report = process_files([bad], cfg)
    [(_, target, _)] = report.set_aside
    assert target.name == "notexcod.docx" and target.with_name("notexcod.docx.txt").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hart\u202excod.exe", "Hartxcod.exe"),
        ("\ufeffAme\u200blia\u00ad \u2067Hart\u2069", "Amelia Hart"),
        ("Zoe\u0308", "Zoë"),
        ("CON", "_CON"),
        ("con.docx", "_con.docx"),
        ("COM\u00b9", "_COM\u00b9"),
        ("trailing dots...  ", "trailing dots"),
        ('a<b>c:"d"/e\\f|g?h*', "a b c d e f g h"),
        ("\u200b\u202e", "unnamed"),
    ],
)
def test_safe_names_are_visible_and_valid_on_windows(text: str, expected: str) -> None:
    assert safe_name(text) == expected


def test_long_names_are_shortened_never_the_upn_or_the_extension() -> None:
    folder = pupil_folder("X" * 300, "Y" * 300, "H801200001001")
    assert folder.endswith(" (H801200001001)") and len(folder) == 80
    assert safe_file_name("a" * 300 + ".docx") == "a" * 145 + ".docx"


# --- values longer than the archive's columns once were ---------------------------------------------


def test_long_answers_are_filed_on_every_archive(cfg: Settings, pipeline: Pipeline, tmp_path: Path) -> None:
    # Before, PostgreSQL refused these (VARCHAR(50) phone, VARCHAR(200) names...) and the watcher
    # retried them for ever as "the archive cannot be reached"; SQLite took them.
    long = {
        "upn": pupil_upn(90),
        "legal_forename": "Anne-Marie " * 22,
        "legal_surname": "Featherstonehaugh-" * 14 + "Smith",
        "preferred_name": "Annie " * 40,
        "class_name": "Willow class with Mrs Example-Longname and Mr Another-Longname on Tuesdays " * 2,
        "parents": [
            {
                "name": "Dr Margaret Featherstonehaugh-Wolfeschlegelsteinhausenbergerdorff " * 4,
                "relationship": "Grandmother, who holds parental responsibility under a court order " * 2,
                "phone": "07700 900123 (mobile, best after 3pm), or 01632 960000 at wk.",  # 61 characters
                "email": "margaret." + "featherstonehaugh." * 18 + "grandmother@example.org.uk",
                "preferred_contact": "phone",
            }
        ],
    }
    assert len(long["parents"][0]["phone"]) == 61
    early_form = values("early-discussion", pupil=long)
    done = pipeline.process_file(drop(tmp_path, "early.docx", filled("early-discussion", early_form)))
    assert done.status == "processed"
    plan = values("support-plan", pupil=long)
    plan["provision"][0].update(
        who="Mrs Example, higher-level teaching assistant, with the SENCO's support each half-term " * 3,
        group_size="One to one, or a small group of up to three pupils from the same class " * 3,
        frequency="Three times a week for twenty minutes, before registration in the library " * 3,
    )
    done = pipeline.process_file(drop(tmp_path, "plan.docx", filled("support-plan", plan)))
    assert done.status == "processed"
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        surname, phone = conn.execute(select(t.Pupil.legal_surname, t.Parent.phone).join(t.Parent)).one()
        who = conn.execute(select(t.Provision.who).order_by(t.Provision.id)).scalars().first()
    engine.dispose()
    assert surname == long["legal_surname"].strip() and len(phone) == 61
    assert who is not None and len(who) > 200


def test_an_archive_made_before_the_change_is_upgraded_with_its_data(archive_url: str | None, tmp_path: Path) -> None:
    url = archive_url or f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(Path(store.__file__).parent / "migrations"))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "INSERT INTO pupils (upn, legal_forename, legal_surname, date_of_birth, year_group, created_at, "
                "updated_at) VALUES ('H801200001001', 'Amelia', 'Hart', '2016-02-14', '4', :now, :now)"
            ),
            {"now": store.now()},
        )
    engine.dispose()
    store.Archive(url).close()  # opening the archive upgrades it
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(select(t.Pupil.legal_surname)).scalar_one() == "Hart"
        if connection.dialect.name == "postgresql":
            # The tables are what the models say, column types included.
            assert compare_metadata(MigrationContext.configure(connection), t.Base.metadata) == []
    engine.dispose()


# --- senforms pupil fix --------------------------------------------------------------------------------


def fix(cfg: Settings, *args: str) -> int:
    archive = ["--archive", cfg.database_url] if cfg.archive_url else []
    return main(["--home", str(cfg.home), *archive, "pupil", "fix", *args])


def events(cfg: Settings) -> list[tuple[str | None, str, str]]:
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(t.Event.upn, t.Event.action, t.Event.detail).order_by(t.Event.id)).all()
    engine.dispose()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_permanent_upn_set_aside_goes_through_after_pupil_fix(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    temp, real = temporary_upn(1), pupil_upn(40)
    zara = person("Zara", "Khan", "2016-04-04", temp)
    first = drop(cfg.inbox, "first.docx", early(Entry("zara", "file", zara), 0))
    later = drop(cfg.inbox, "later.docx", early(Entry("zara", "file", {**zara, "upn": real}), 1))
    report = process_files([first, later], cfg)
    [(_, set_aside, error)] = report.set_aside
    assert isinstance(error, IdentityConflictError)
    assert f"senforms pupil fix {temp} --upn {real}" in set_aside.with_name("later.docx.txt").read_text("utf-8")

    assert fix(cfg, temp.lower(), "--upn", f" {real[:5]} {real[5:]} ") == 0
    assert f"UPN {real}: UPN changed from {temp} to {real}." in capsys.readouterr().out
    # Dropped in again, the form is filed in Zara's one record; so is a form still giving the old UPN.
    again = drop(cfg.inbox, "later.docx", set_aside.read_bytes())
    old = drop(cfg.inbox, "old upn.docx", early(Entry("zara", "file", zara), 2))
    report = process_files([again, old], cfg)
    assert report.set_aside == [] and [d.status for _, d in report.processed] == ["processed", "processed"]
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(t.Pupil.upn, t.Pupil.former_upn)).all() == [(real, temp)]
        assert conn.execute(select(t.ReceivedForm.pupil_id).distinct()).scalars().all() == [1]
    engine.dispose()
    assert (real, "pupil fixed", f"UPN changed from {temp} to {real} ({temp} kept as the former UPN)") in events(cfg)
    assert (cfg.outbox / "parents" / f"Khan Zara ({real})").is_dir()


def test_names_and_birthday_fixed_in_the_archive(
    cfg: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = pupil_upn(1)
    typo = person("Amelia", "Hrat", "2016-12-02", upn)  # surname and birthday mistyped on the first form
    process_files([drop(cfg.inbox, "first.docx", early(Entry("amelia", "file", typo), 0))], cfg)
    right = person("Amélia", "Hart", "2016-02-12", upn)
    report = process_files([drop(cfg.inbox, "right.docx", early(Entry("amelia", "file", right), 1))], cfg)
    [(_, set_aside, _)] = report.set_aside
    note = set_aside.with_name("right.docx.txt").read_text("utf-8")
    assert "the accent on é" in note
    assert (
        f'senforms pupil fix {upn} --legal-surname "Hart" --legal-forename "Amélia" --date-of-birth "12/02/2016"'
        in note
    )

    args = ("--legal-surname", "Hart", "--legal-forename", "Ame\u0301lia", "--date-of-birth", "12/02/2016")
    assert fix(cfg, upn, *args) == 0
    out = capsys.readouterr().out
    assert (
        "legal surname changed from Hrat to Hart" in out
        and "date of birth changed from 02/12/2016 to 12/02/2016" in out
    )
    report = process_files([drop(cfg.inbox, "right.docx", set_aside.read_bytes())], cfg)
    assert report.set_aside == [] and report.processed[0][1].upn == upn
    fixed = [e for e in events(cfg) if e[1] == "pupil fixed"]
    assert fixed == [
        (upn, "pupil fixed", "legal first name changed from Amelia to Amélia"),
        (upn, "pupil fixed", "legal surname changed from Hrat to Hart"),
        (upn, "pupil fixed", "date of birth changed from 02/12/2016 to 12/02/2016"),
    ]
    # The same fix again changes nothing, and says so.
    assert fix(cfg, upn, *args) == 2
    assert "Nothing to change" in capsys.readouterr().err


def test_pupil_fix_refuses_what_it_cannot_do(cfg: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for n, upn in enumerate((pupil_upn(1), pupil_upn(2))):
        entry = Entry(str(n), "file", person(f"Child{'AB'[n]}", "Hart", "2016-02-14", upn))
        process_files([drop(cfg.inbox, f"{n}.docx", early(entry, n))], cfg)
    cases = [
        ((pupil_upn(3), "--legal-surname", "Hart"), 6, f"There is no pupil with UPN {pupil_upn(3)}"),
        ((pupil_upn(1), "--upn", pupil_upn(2)), 6, f"UPN {pupil_upn(2)} is already the UPN of another pupil"),
        ((pupil_upn(1), "--upn", "Z801200001001"), 2, "--upn: Z801200001001 has the wrong check letter"),
        ((pupil_upn(1), "--date-of-birth", "31/02/2016"), 2, "--date-of-birth: 31/02/2016 is not a real date"),
        ((pupil_upn(1), "--legal-forename", " \u200b "), 2, "--legal-forename cannot be blank"),
        ((pupil_upn(1),), 2, "Nothing to change"),
    ]
    for args, code, message in cases:
        assert fix(cfg, *args) == code, args
        err = capsys.readouterr().err
        assert message in err and "What to do:" in err and "Traceback" not in err
    assert [e for e in events(cfg) if e[1] == "pupil fixed"] == []


def test_the_send_register_shows_the_fixed_details(cfg: Settings, tmp_path: Path) -> None:
    upn = pupil_upn(1)
    data = values("early-discussion", pupil=person("Amelia", "Hrat", "2016-02-14", upn))  # SEN support
    process_files([drop(cfg.inbox, "early.docx", filled("early-discussion", data))], cfg)
    register = cfg.outbox / "senco" / "SEND register.csv"
    assert "Hrat" in register.read_text("utf-8-sig")
    assert fix(cfg, upn, "--legal-surname", "Hart", "--upn", pupil_upn(2)) == 0
    text = register.read_text("utf-8-sig")
    assert "Hrat" not in text and f"{pupil_upn(2)},Hart,Amelia" in text


def test_filing_holds_the_pupil_until_its_transaction_ends(pipeline: Pipeline, cfg: Settings) -> None:
    """Step 5 finds the pupil again with them held (``find_pupil_locked``: on PostgreSQL by the
    look-up itself), so two watchers filing forms for one pupil take turns: while one holds the
    pupil, nobody else can change them, and once it is done, they can."""
    from sqlalchemy.exc import OperationalError

    from senforms.pipeline import read

    data = filled("early-discussion", values("early-discussion"))
    pipeline.process_bytes(data, name="early.docx")
    _raw, form, _warnings = read(data, "early.docx", cfg)
    with pipeline.archive.reading() as session:
        found = store.find_pupil(session, form.pupil, "support-plan")  # type: ignore[attr-defined]
        assert found is not None
        pupil_id = found.id
    sqlite = cfg.database_url.startswith("sqlite")
    other = create_engine(cfg.database_url, connect_args={"timeout": 0} if sqlite else {})
    change = text("UPDATE pupils SET class_name = 'Oak' WHERE id = :id")

    def change_meanwhile() -> None:
        with other.begin() as conn:
            if not sqlite:
                conn.execute(text("SET LOCAL lock_timeout = '200ms'"))
            conn.execute(change, {"id": pupil_id})

    with pipeline.archive.session() as session:
        held = store.find_pupil_locked(session, form.pupil, "support-plan", pupil_id)  # type: ignore[attr-defined]
        assert held is not None and held.id == pupil_id
        with pytest.raises(OperationalError):
            change_meanwhile()
    change_meanwhile()  # let go when the transaction ended
    other.dispose()


def test_the_pupils_row_changes_only_when_a_form_changes_their_details(pipeline: Pipeline, cfg: Settings) -> None:
    """Most forms repeat the pupil's details: the pupil's row is then left alone (one write fewer
    per form), and ``updated_at`` says when the details last changed; a form that changes them
    (a new class, another parent) is saved, and dated."""
    early = values("early-discussion")
    upn = early["pupil"]["upn"]

    def row() -> tuple[str | None, int, object]:
        with pipeline.archive.reading() as session:
            pupil = session.scalars(select(t.Pupil).where(t.Pupil.upn == upn)).one()
            return pupil.class_name, len(pupil.parents), pupil.updated_at

    pipeline.process_bytes(filled("early-discussion", early), name="early.docx")
    first = row()
    pipeline.process_bytes(filled("support-plan", values("support-plan", pupil=early["pupil"])), name="plan.docx")
    assert row() == first
    moved = values("review", pupil=early["pupil"] | {"class_name": "Kestrels"})
    pipeline.process_bytes(filled("review", moved), name="review.docx")
    class_name, parents, updated = row()
    assert class_name == "Kestrels" and parents == first[1] and updated > first[2]  # type: ignore[operator]
