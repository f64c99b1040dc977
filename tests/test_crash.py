"""A crash at any point, followed by processing the same file again, gives exactly one set of
records and one set of documents (issue: "A crash loses nothing")."""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from senforms.archive import tables as t
from senforms.config import load_settings
from senforms.deliver import STAGING, staging
from senforms.pipeline import Pipeline
from tests.pipeline_helpers import filled, pupil_upn, values
from tests.test_pipeline import archive_url, cfg, pipeline  # noqa: F401  (fixtures: SQLite and PostgreSQL)

TODAY = date(2026, 11, 22)


class Crash(BaseException):
    """Not an Exception, so nothing in senforms can catch it: as abrupt as a power cut."""


def run(home: Path, data: bytes, crash_at: tuple[str, int] | None = None) -> None:
    with Pipeline(load_settings(home), today=lambda: TODAY) as running:
        seen: Counter[str] = Counter()

        def checkpoint(step: str) -> None:
            seen[step] += 1
            if crash_at == (step, seen[step]):
                raise Crash(step)

        running.checkpoint = checkpoint
        running.process_bytes(data, name="early.docx")


def state(home: Path) -> tuple[list[str], dict[str, int]]:
    outbox = home / "outbox"
    files = sorted(
        p.relative_to(outbox).as_posix()
        for p in outbox.rglob("*")
        if p.is_file() and not p.name.startswith("Letters to send ")  # the office's list, not a document
    )
    # The register's XLSX is a living copy beside its CSV, with no document row of its own.
    files.remove("senco/SEND register.xlsx")
    engine = create_engine(load_settings(home).database_url)
    with engine.connect() as conn:
        counts = {
            table.__tablename__: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (t.Pupil, t.ReceivedForm, t.Document, t.SenStatus, t.Parent)
        }
        counts["undelivered"] = conn.execute(
            select(func.count()).select_from(t.Document).where(t.Document.delivered_at.is_(None))
        ).scalar_one()
        counts["not done"] = conn.execute(
            select(func.count()).select_from(t.ReceivedForm).where(t.ReceivedForm.state != "done")
        ).scalar_one()
    engine.dispose()
    return files, counts


@pytest.fixture(scope="module")
def form() -> bytes:
    return filled("early-discussion", values("early-discussion"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, form: bytes) -> tuple[list[str], dict[str, int]]:
    home = tmp_path_factory.mktemp("reference")
    run(home, form)
    files, counts = state(home)
    assert counts["documents"] == len(files) >= 4
    return files, counts


# Every step of processing, and the first, second and last document written (the early discussion note
# writes three documents one by one: note, notification and pre-filled plan; the SEND register
# is rewritten from the archive).
STEPS = [("read", 1), ("filed", 1), ("committed", 1), ("wrote", 1), ("wrote", 2), ("wrote", 3), ("marked", 1)]


@pytest.mark.parametrize("step", STEPS, ids=[f"{s}-{n}" for s, n in STEPS])
def test_crash_then_again_gives_one_set(home: Path, form: bytes, reference, step: tuple[str, int]) -> None:
    with pytest.raises(Crash):
        run(home, form, crash_at=step)
    run(home, form)
    files, counts = state(home)
    assert files == reference[0]
    assert counts == reference[1]
    assert counts["undelivered"] == 0 and counts["not done"] == 0
    # And a third time changes nothing.
    run(home, form)
    assert state(home) == (files, counts)


def test_a_half_written_document_is_never_visible(home: Path, form: bytes) -> None:
    with pytest.raises(Crash):
        run(home, form, crash_at=("wrote", 2))
    outbox = home / "outbox"
    visible = [p for p in outbox.rglob("*") if p.is_file()]
    # Temporary files start with a dot and end .part; they are never taken for documents.
    assert all(not p.name.startswith(".~senforms-") for p in visible)
    assert len(visible) == 4  # the SEND register (CSV and XLSX) and the two documents written before the crash


def test_remains_of_a_cut_off_write_are_cleared_and_never_among_documents(home: Path, form: bytes) -> None:
    stage = staging(home / "outbox")
    stage.mkdir(parents=True)
    old, fresh = stage / ".~senforms-old.part", stage / ".~senforms-fresh.part"
    old.write_bytes(b"half a letter")
    fresh.write_bytes(b"another watcher, writing now")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    run(home, form)
    assert not old.exists() and fresh.exists()
    pupil_folders = [p for p in (home / "outbox").rglob("*") if p.is_file() and STAGING not in p.parts]
    assert pupil_folders and not [p for p in pupil_folders if p.name.endswith(".part")]


def test_only_the_delivery_commits_without_waiting_for_the_disk(
    pipeline: Pipeline,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A form's delivery is done again from the filed form after a power cut (its documents are
    found by their hash), so its commit need not wait for the disk; the filing's commit, and every
    other, must. The setting is per connection on SQLite: a pooled connection a delivery used is
    synced again before anyone else has it."""
    from sqlalchemy import text

    import senforms.archive.store as store

    def synced(session: object) -> str:
        dialect = session.get_bind().dialect.name  # type: ignore[attr-defined]
        query = "PRAGMA synchronous" if dialect == "sqlite" else "SHOW synchronous_commit"
        return str(session.execute(text(query)).scalar_one())  # type: ignore[attr-defined]

    seen: list[str] = []
    real = store._not_synced

    def spy(session: object) -> None:
        real(session)  # type: ignore[arg-type]
        seen.append(synced(session))

    monkeypatch.setattr(store, "_not_synced", spy)
    done = pipeline.process_bytes(filled("early-discussion", values("early-discussion")), name="early.docx")
    assert done.status == "processed" and done.documents
    assert seen in (["1"], ["off"])  # one delivery, its commit not synced (SQLite NORMAL, PostgreSQL off)
    for _ in range(3):  # whichever pooled connection comes next is synced again
        with pipeline.archive.session() as session:
            assert synced(session) in ("2", "on")  # SQLite FULL, PostgreSQL on
        with pipeline.archive.reading() as session:
            assert synced(session) in ("2", "on")


def test_a_reading_transaction_writes_nothing_and_leaves_its_connection_able_to(
    pipeline: Pipeline,  # noqa: F811
) -> None:
    """``Archive.reading`` ends with a commit, not a rollback (see there for why), so the database
    itself must refuse a write in it, and a change to a loaded row must be dropped unsaved. The
    pooled connection it used then files the next form as usual."""
    from sqlalchemy import update

    from senforms.errors import ArchiveError

    early = values("early-discussion")
    assert pipeline.process_bytes(filled("early-discussion", early), name="early.docx").status == "processed"
    with pytest.raises(ArchiveError), pipeline.archive.reading() as session:
        session.execute(update(t.Pupil).values(legal_surname="Written"))
    with pipeline.archive.reading() as session:
        loaded = session.execute(select(t.Pupil)).scalar_one()
        loaded.legal_surname = "Changed"
        session.execute(select(t.Event.id)).all()  # would have saved the change before (autoflush)
    for _ in range(3):  # whichever pooled connection comes next
        with pipeline.archive.reading() as session:
            assert session.execute(select(t.Pupil.legal_surname)).scalar_one() == early["pupil"]["legal_surname"]
    plan = values("support-plan", pupil=early["pupil"])
    assert pipeline.process_bytes(filled("support-plan", plan), name="plan.docx").status == "processed"


def test_the_pipelines_statements_are_prepared_on_postgresql(pipeline: Pipeline) -> None:  # noqa: F811
    """psycopg prepares a statement once it has run five times on a connection, and forgets every
    one at a rollback. Each form is identified in a reading transaction; when those ended with a
    rollback, no statement was ever prepared, and each was parsed and planned again every time."""
    from sqlalchemy import text

    if pipeline.archive.engine.dialect.name != "postgresql":
        pytest.skip("prepared statements are psycopg's; SQLite's driver keeps its own cache")
    for serial in range(7):
        pupil = {
            "upn": pupil_upn(600 + serial),
            "legal_surname": f"Pupil{'abcdefg'[serial]}",
            "date_of_birth": f"2016-0{serial + 1}-1{serial}",
        }
        form = filled("early-discussion", values("early-discussion", pupil=pupil))
        assert pipeline.process_bytes(form, name=f"early {serial}.docx").status == "processed"
    with pipeline.archive.reading() as session:
        prepared = session.execute(text("SELECT statement FROM pg_prepared_statements")).scalars().all()
    # The look-up of a form by its bytes, run once per form in a reading transaction.
    assert any("received_forms.content_hash" in statement for statement in prepared), prepared


def test_folders_deleted_between_writes_are_made_again(tmp_path: Path) -> None:
    """Folders are made only when a write finds them missing (``write_atomic``): someone tidying
    the share may delete the outbox, its staging folder or a pupil's folder at any moment."""
    from senforms.deliver import write_atomic

    outbox = tmp_path / "outbox"
    first = write_atomic(outbox / "Pupil A" / "letter.docx", b"one", stage=staging(outbox))
    assert first.read_bytes() == b"one"
    # The pupil's folder goes, the staging folder stays: the document is written all the same.
    first.unlink()
    first.parent.rmdir()
    again = write_atomic(outbox / "Pupil A" / "letter.docx", b"two", stage=staging(outbox))
    assert again == outbox / "Pupil A" / "letter.docx" and again.read_bytes() == b"two"
    # The whole outbox goes.
    for p in sorted(outbox.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    outbox.rmdir()
    third = write_atomic(outbox / "Pupil B" / "letter.docx", b"three", stage=staging(outbox))
    assert third.read_bytes() == b"three"
    # A name taken is never replaced, and no temporary file is left behind.
    fourth = write_atomic(outbox / "Pupil B" / "letter.docx", b"four", stage=staging(outbox))
    assert fourth.name == "letter (2).docx" and third.read_bytes() == b"three"
    assert not list(staging(outbox).iterdir())
    # Without a staging folder, the temporary file is made beside the document.
    fifth = write_atomic(tmp_path / "elsewhere" / "list.csv", b"five", overwrite=True)
    assert fifth.read_bytes() == b"five" and [p.name for p in fifth.parent.iterdir()] == ["list.csv"]


def test_a_batch_lists_letters_of_a_delivery_it_finished_with_those_it_made(home: Path, form: bytes) -> None:
    """One batch (``senforms process``, or two watchers sharing the inbox) finishes the delivery
    of a form another run filed and never delivered, and delivers a form of its own: the office's
    list holds the letters of both. (The times of the first come from the archive, of the second
    from the delivery just made; on SQLite one has a time zone and the other not, and comparing
    them stopped the batch.)"""
    from senforms.pipeline import REGISTER_EVERY_S

    with pytest.raises(Crash):
        run(home, form, crash_at=("committed", 1))
    other = filled("early-discussion", values("early-discussion", pupil={"upn": pupil_upn(431), "legal_surname": "Other"}))
    with Pipeline(load_settings(home), today=lambda: TODAY, register_every=REGISTER_EVERY_S) as batch:
        assert batch.process_bytes(form, name="early.docx").status == "processed"
        assert batch.process_bytes(other, name="other.docx").status == "processed"
    (listing,) = (home / "outbox" / "parents").glob("Letters to send *.csv")
    with listing.open(encoding="utf-8-sig") as f:
        files = sorted(row["File"] for row in csv.DictReader(f))
    letters = sorted(p.relative_to(home / "outbox").as_posix() for p in (home / "outbox" / "parents").rglob("*.docx"))
    assert files == letters and len(letters) == 4  # two pupils, a note and a notification each
