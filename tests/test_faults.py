"""Faults a school's bad day brings (issue 9), each injected: an outbox that cannot be written to
(an ``OSError`` from the write: disk full, read-only), an archive that is locked, slow or refuses a
value, and two ``senforms process`` runs racing on the same files. On SQLite and PostgreSQL.

Each test counts what matters: forms lost (neither filed nor set aside), doubled (filed twice, or
a letter written twice), misfiled, and needlessly set aside (a valid form in problems/)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

import senforms.outbox
from senforms.archive import store
from senforms.archive import tables as t
from senforms.archive.store import Archive
from senforms.config import Settings, load_settings
from senforms.errors import ArchiveRefusedError, ArchiveUnavailableError, DeliveryPendingError, ExitCode
from senforms.pipeline import Pipeline, process_files
from tests.pipeline_helpers import drop, filled, pupil_upn, values
from tests.test_pipeline import TODAY, archive_url, count, outbox_files  # noqa: F401 (archive_url: a fixture)


@pytest.fixture
def cfg(home: Path, archive_url: str | None) -> Settings:  # noqa: F811 (the fixture imported above)
    return load_settings(home, archive_url=archive_url)


ROOT = Path(__file__).resolve().parents[1]


def early(serial: int) -> bytes:
    return filled(
        "early-discussion",
        values(
            "early-discussion",
            # Distinct names: two children with one name and birthday are a conflict, not a race.
            pupil={
                "upn": pupil_upn(serial),
                "legal_surname": f"Hart{chr(65 + serial // 26 % 26)}{chr(97 + serial % 26)}",
            },
        ),
    )


def _failing_write(error: int):
    def write(*args, **kwargs):
        raise OSError(error, os.strerror(error))

    return write


def states(cfg: Settings) -> Counter[str]:
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        found = Counter(conn.execute(select(t.ReceivedForm.state)).scalars().all())
    engine.dispose()
    return found


def doubled_letters(cfg: Settings) -> list[str]:
    """Letters written twice: the outbox gives a second copy the name "... (2).docx"."""
    return [f for f in outbox_files(cfg) if " (2)" in f]


# --- 9.3: a filed form is never set aside ---------------------------------------------------------


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_an_outbox_that_cannot_be_written_never_sends_filed_forms_to_problems(
    cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    paths = [drop(tmp_path / "in", f"form{i}.docx", early(i)) for i in range(1, 4)]
    monkeypatch.setattr(senforms.outbox, "write_atomic", _failing_write(error))
    report = process_files(paths, cfg)
    # Filed, kept where they were, reported; nothing in problems/, a non-zero exit code.
    assert not report.set_aside and not report.processed
    assert [p for p, _ in report.waiting] == paths
    assert all(isinstance(e, DeliveryPendingError) for _, e in report.waiting)
    assert "was filed, but its letters could not be written to the outbox" in report.waiting[0][1].message
    assert report.exit_code == ExitCode.archive_error
    assert all(p.exists() for p in paths)
    assert not cfg.problems.exists() or not any(cfg.problems.iterdir())
    assert states(cfg) == {"delivering": 3}
    assert outbox_files(cfg) == []

    # The outbox is back: the next run finishes every delivery, each letter written once.
    monkeypatch.undo()
    with Pipeline(cfg, today=lambda: TODAY) as pipeline:
        finished = pipeline.finish_pending()
        assert len(finished) == 3 and all(done.documents for done in finished)
        assert pipeline.finish_pending() == []
    assert states(cfg) == {"done": 3}
    assert doubled_letters(cfg) == []
    assert count(cfg, t.ReceivedForm) == 3
    assert all(path.exists() for done in finished for path in done.documents)
    again = process_files(paths, cfg)
    assert [done.status for _, done in again.processed] == ["already processed"] * 3
    assert again.exit_code == ExitCode.ok


def test_the_same_file_again_finishes_its_delivery(
    cfg: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = drop(tmp_path, "early.docx", early(7))
    with Pipeline(cfg, today=lambda: TODAY) as pipeline:
        monkeypatch.setattr(senforms.outbox, "write_atomic", _failing_write(errno.ENOSPC))
        with pytest.raises(DeliveryPendingError, match="the disk is full"):
            pipeline.process_file(path)
        monkeypatch.undo()
        done = pipeline.process_file(path)
        assert done.status == "processed" and done.documents
        assert pipeline.process_file(path).status == "already processed"
    assert sorted(p.relative_to(cfg.outbox).as_posix() for p in done.documents) == sorted(f for f in outbox_files(cfg))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_outbox_folder(cfg: Settings, tmp_path: Path) -> None:
    cfg.outbox.mkdir(parents=True, exist_ok=True)
    path = drop(tmp_path, "early.docx", early(8))
    os.chmod(cfg.outbox, 0o555)
    try:
        report = process_files([path], cfg)
    finally:
        os.chmod(cfg.outbox, 0o755)
    assert not report.set_aside and len(report.waiting) == 1 and path.exists()
    assert process_files([], cfg).exit_code == ExitCode.ok
    assert states(cfg) == {"done": 1}


# --- 9.5: what the database refuses is not an outage ------------------------------------------------


def test_a_locked_or_slow_archive_is_an_outage(cfg: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "STATEMENT_TIMEOUT_S", 1)
    archive = Archive(cfg.database_url)
    blocker = create_engine(cfg.database_url, isolation_level="AUTOCOMMIT")
    try:
        with blocker.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql("LOCK TABLE pupils IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(ArchiveUnavailableError) as caught, archive.session() as session:
                session.execute(text("UPDATE pupils SET upn = upn"))
            conn.exec_driver_sql("ROLLBACK")
        assert caught.value.exit_code == ExitCode.archive_error  # the watcher retries it
    finally:
        blocker.dispose()
        archive.close()


@pytest.mark.parametrize("idle", [False, True], ids=["at-once", "after-idle"])
def test_a_server_that_dropped_its_connections_loses_no_form(
    cfg: Settings, monkeypatch: pytest.MonkeyPatch, idle: bool
) -> None:
    """The server restarts (here: it ends every connection, as a restart does) between two forms.
    A connection idle for a while is pinged and replaced before use; one used a moment ago is not
    pinged (a round trip per transaction), so the form meets the dropped connection and is tried
    once more on a fresh one. Either way the form is filed, once, with its documents."""
    if not cfg.database_url.startswith("postgresql"):
        pytest.skip("a server's connections; SQLite has none to drop")
    monkeypatch.setattr(store, "PING_AFTER_IDLE_S", 0.0 if idle else 3600.0)
    tries = 0
    with Pipeline(cfg, today=lambda: TODAY) as pipeline:
        attempt = pipeline._process_bytes

        def counted(data: bytes, *, name: str):
            nonlocal tries
            tries += 1
            return attempt(data, name=name)

        monkeypatch.setattr(pipeline, "_process_bytes", counted)
        assert pipeline.process_bytes(early(1), name="first.docx").status == "processed"
        killer = create_engine(cfg.database_url, isolation_level="AUTOCOMMIT")
        with killer.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        killer.dispose()
        assert ended >= 1
        tries = 0
        second = pipeline.process_bytes(early(2), name="second.docx")
    assert second.status == "processed" and len(second.documents) >= 2
    assert all(path.exists() for path in second.documents)
    assert tries == (1 if idle else 2)
    assert states(cfg) == Counter({"done": 2})
    assert doubled_letters(cfg) == []


def test_a_value_the_archive_refuses_is_not_retried(cfg: Settings) -> None:
    archive = Archive(cfg.database_url)
    try:
        with pytest.raises(ArchiveRefusedError) as caught, archive.session() as session:
            # Two pupils with one UPN: a refusal that no retry will cure. (On PostgreSQL a value
            # longer than its column is refused the same way; SQLite does not check lengths.)
            for _ in range(2):
                session.execute(
                    text(
                        "INSERT INTO pupils (upn, legal_forename, legal_surname, date_of_birth, year_group, created_at, "
                        "updated_at) VALUES ('A123', 'A', 'B', '2015-01-01', 'Y1', '2026-01-01', '2026-01-01')"
                    )
                )
        assert caught.value.exit_code == ExitCode.archive_refused
        if cfg.database_url.startswith("postgresql"):
            with pytest.raises(ArchiveRefusedError), archive.session() as session:
                session.execute(text("UPDATE events SET upn = repeat('x', 100)"))
                session.execute(
                    text("INSERT INTO events (at, upn, action, detail) VALUES (now(), repeat('x', 14), 'x', 'x')")
                )
    finally:
        archive.close()


# --- 9.6: two `process` runs at once ---------------------------------------------------------------


def _run(cfg: Settings, paths: list[Path]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "senforms", "--home", str(cfg.home)]
    if cfg.archive_url:
        argv += ["--archive", cfg.archive_url]
    return subprocess.Popen(
        [*argv, "process", *map(str, paths)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_two_process_runs_on_the_same_files(cfg: Settings, tmp_path: Path) -> None:
    n = 40
    paths = [drop(cfg.home / "batch", f"form{i:02d}.docx", early(100 + i)) for i in range(n)]
    with Pipeline(cfg):  # the archive made once, as `senforms init` does, before both runs
        pass
    runs = [_run(cfg, paths), _run(cfg, list(reversed(paths)))]
    outputs = [run.communicate(timeout=600) for run in runs]
    codes = [run.returncode for run in runs]
    outcomes = Counter()
    for out, _ in outputs:
        for line in out.splitlines():
            if ": " in line and line.startswith("form"):
                outcomes[(line.split(":")[0], line.split(": ")[1].split(" (")[0])] += 1
    processed = sum(1 for (_, status), k in outcomes.items() if status == "processed" for _ in range(k))
    already = sum(1 for (_, status), k in outcomes.items() if status == "already processed" for _ in range(k))
    problems = list(cfg.problems.glob("*.docx")) if cfg.problems.exists() else []
    print(f"processed {processed}, already processed {already}, set aside {len(problems)}, exit codes {codes}")
    assert problems == [], outputs
    # Every file has an outcome in both runs. A run that found the form filed but not yet
    # delivered by the other finishes the delivery (under the form's lock, so once) and says
    # "processed" too: the archive below shows it was filed once, with one set of documents.
    assert processed + already == 2 * n, outputs
    assert {name for (name, status) in outcomes if status == "processed"} == {p.name for p in paths}
    assert codes == [0, 0], outputs
    assert count(cfg, t.ReceivedForm) == n
    assert states(cfg) == {"done": n}
    assert doubled_letters(cfg) == []
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        per_form = conn.execute(
            select(t.Document.form_id, func.count())
            .where(t.Document.pupil_id.is_not(None))
            .group_by(t.Document.form_id)
        ).all()
    engine.dispose()
    assert len({k for _, k in per_form}) == 1  # one set of documents per form


@pytest.mark.slow
def test_two_runs_given_a_pupils_early_discussion_and_plan(cfg: Settings) -> None:
    """Run B meets the plan before run A has filed the early discussion (and the other way round):
    the plan waits for the end of the batch, never set aside for "There is no pupil"."""
    pairs = []
    for serial in range(200, 210):
        data = values(
            "early-discussion",
            pupil={
                "upn": pupil_upn(serial),
                "legal_surname": f"Plan{chr(97 + serial % 26)}{chr(97 + serial // 26 % 26)}",
            },
        )
        pairs.append(
            (
                drop(cfg.home / "batch", f"early{serial}.docx", filled("early-discussion", data)),
                drop(
                    cfg.home / "batch",
                    f"plan{serial}.docx",
                    filled("support-plan", values("support-plan", pupil=data["pupil"])),
                ),
            )
        )
    with Pipeline(cfg):
        pass
    forward = [p for pair in pairs for p in pair]
    backward = [p for pair in pairs for p in reversed(pair)]
    runs = [_run(cfg, forward), _run(cfg, backward)]
    outputs = [run.communicate(timeout=600) for run in runs]
    problems = list(cfg.problems.glob("*.docx")) if cfg.problems.exists() else []
    assert problems == [], outputs
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert count(cfg, t.ReceivedForm) == 20
    assert states(cfg) == {"done": 20}
    assert doubled_letters(cfg) == []


# --- 9.7: the archive grows with the forms, not with the school ------------------------------------


def test_register_versions_do_not_grow_with_the_school(cfg: Settings, tmp_path: Path) -> None:
    n = 12
    with Pipeline(cfg, today=lambda: TODAY) as pipeline:
        for serial in range(300, 300 + n):
            pipeline.process_file(drop(tmp_path, f"early{serial}.docx", early(serial)))
    engine = create_engine(cfg.database_url)
    with engine.connect() as conn:
        sizes = (
            conn.execute(
                select(func.length(t.Document.content)).where(t.Document.template == "register").order_by(t.Document.id)
            )
            .scalars()
            .all()
        )
    engine.dispose()
    print(f"stored register bytes per version after {n} pupils: {sizes}")
    assert len(sizes) == n  # one version per change
    # Each version holds the change (one row), not the register: the twelfth is no bigger than the first.
    assert max(sizes) - min(sizes) < 10
    living = (cfg.outbox / "senco/SEND register.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(living) == n + 1  # the outbox still has the whole register, derived from the archive
