"""PDF letters through one running LibreOffice: each PDF holds its own pupil, bad files fail alone."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from docx import Document

from senforms import office as office_module
from senforms.errors import OfficeError
from senforms.office import MISSING_MESSAGE, ConversionFailed, Office, find_office, office_available

needs_office = pytest.mark.skipif(
    find_office() is None or shutil.which("pdftotext") is None,
    reason="LibreOffice (soffice) or pdftotext is not installed",
)
libreoffice = [pytest.mark.libreoffice, needs_office]

# Accents and the characters that break XML (& and <) in names and in the body text.
PUPILS = {
    "zoe": "Zoë Ångström",
    "sian": "Siân O'Brien-Łukasz",
    "chloe": "Chloé Dupré & Co <Year 4>",
}
BODY = "Speech & language sessions <weekly>, twice a week from 3 March; café reading club."


def make_letter(path: Path, pupil: str) -> Path:
    doc = Document()
    doc.add_heading("Oakfield Primary School", level=1)
    doc.add_paragraph(f"Dear parent or carer of {pupil},")
    doc.add_paragraph(BODY)
    doc.add_paragraph("Yours sincerely,\nMrs A. Senco, SENCO")
    doc.save(str(path))
    return path


def pdf_text(path: Path) -> str:
    done = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, timeout=60)
    # pdftotext may break a long line; compare on single spaces.
    return " ".join(done.stdout.decode("utf-8").split())


@pytest.fixture(scope="module")
def office() -> Iterator[Office]:
    # One office for the module: starting LibreOffice is the slow part, and sharing it is
    # exactly what the pipeline does.
    if find_office() is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    with Office(timeout=60) as running:
        yield running


@pytest.fixture
def letters(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "letters"
    folder.mkdir()
    return {key: make_letter(folder / f"letter-{key}.docx", name) for key, name in PUPILS.items()}


@pytest.mark.parametrize("engine", ["uno", "cli"])
@pytest.mark.libreoffice
@needs_office
def test_one_batch_each_pdf_holds_its_own_pupil(engine: str, letters: dict[str, Path], tmp_path: Path) -> None:
    if engine == "uno" and office_module.find_uno_python(find_office()) is None:  # type: ignore[arg-type]
        pytest.skip("LibreOffice's Python bridge (python3-uno) is not installed")
    with Office(engine=engine) as running:
        pdfs = running.convert(list(letters.values()), tmp_path / "out")
    assert [p.name for p in pdfs] == [f"letter-{key}.pdf" for key in letters]
    for key, pdf in zip(letters, pdfs, strict=True):
        text = pdf_text(pdf)
        assert PUPILS[key] in text
        assert BODY in text
        for other in PUPILS.keys() - {key}:
            assert PUPILS[other] not in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in pdfs)


@pytest.mark.libreoffice
@needs_office
def test_damaged_files_fail_alone_and_the_others_are_converted(
    office: Office, letters: dict[str, Path], tmp_path: Path
) -> None:
    # Decision: convert() finishes the whole batch, then raises ConversionFailed naming each
    # bad file and listing the PDFs that were made, so one damaged letter loses nothing else.
    truncated = tmp_path / "truncated.docx"
    truncated.write_bytes(letters["zoe"].read_bytes()[:2000])
    not_word = tmp_path / "not-word.docx"
    not_word.write_text("Plain text with a .docx name: LibreOffice must not guess it is text.", encoding="utf-8")
    missing = tmp_path / "missing.docx"
    batch = [letters["zoe"], truncated, not_word, missing, letters["sian"]]
    outdir = tmp_path / "out"

    with pytest.raises(ConversionFailed) as caught:
        office.convert(batch, outdir)

    failure = caught.value
    assert isinstance(failure, OfficeError)
    assert set(failure.failed) == {truncated.resolve(), not_word.resolve(), missing.resolve()}
    assert [p.name for p in failure.converted] == ["letter-zoe.pdf", "letter-sian.pdf"]
    assert PUPILS["sian"] in pdf_text(outdir / "letter-sian.pdf")
    assert "truncated.docx" in failure.message and "Traceback" not in failure.message
    # No half-written or garbage PDFs beside the good ones.
    assert sorted(p.name for p in outdir.iterdir()) == ["letter-sian.pdf", "letter-zoe.pdf"]


@pytest.mark.libreoffice
@needs_office
def test_the_office_is_reused_and_restarted_when_it_dies(
    office: Office, letters: dict[str, Path], tmp_path: Path
) -> None:
    office.convert([letters["zoe"]], tmp_path / "a")
    first = office._soffice_proc
    office.convert([letters["sian"]], tmp_path / "b")
    assert office._soffice_proc is first  # the same running office, not one start per batch

    if office.engine == "uno" and sys.platform != "win32":
        assert first is not None
        os.killpg(first.pid, signal.SIGKILL)  # a crash between two letters
        pdfs = office.convert([letters["chloe"]], tmp_path / "c")
        assert PUPILS["chloe"] in pdf_text(pdfs[0])
        assert office._soffice_proc is not first


@pytest.mark.libreoffice
@needs_office
def test_a_letter_that_takes_too_long_fails_with_a_plain_message(letters: dict[str, Path], tmp_path: Path) -> None:
    with Office(timeout=0.01) as hasty:
        if hasty.engine != "uno":
            pytest.skip("per-letter timeouts need the UNO engine")
        with pytest.raises(ConversionFailed) as caught:
            hasty.convert([letters["zoe"]], tmp_path / "out")
    assert "took longer than 0.01 seconds" in caught.value.message


@pytest.mark.libreoffice
@needs_office
def test_two_letters_with_the_same_name_are_refused(office: Office, letters: dict[str, Path], tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    twin.mkdir()
    copy = make_letter(twin / letters["zoe"].name, "Another Pupil")
    with pytest.raises(OfficeError, match=r"both be saved as letter-zoe\.pdf"):
        office.convert([letters["zoe"], copy], tmp_path / "out")
    assert office.convert([], tmp_path / "out") == []


def test_without_libreoffice_the_message_is_plain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no soffice, no libreoffice
    monkeypatch.setattr(office_module, "_KNOWN_PLACES", ())
    assert find_office() is None
    assert office_available() is False
    with pytest.raises(OfficeError) as caught:
        Office()
    assert caught.value.message == MISSING_MESSAGE
    assert "Word documents (.docx)" in caught.value.message
    assert "Install LibreOffice" in caught.value.note()


@pytest.mark.libreoffice
@needs_office
def test_the_benchmark_runs_in_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    bench = Path(__file__).resolve().parent.parent / "bench" / "pdf.py"
    spec = importlib.util.spec_from_file_location("bench_pdf", bench)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "one LibreOffice start per letter (baseline)" in out
    assert "faster than the baseline" in out
    assert "senforms.forms.extract" in out


@pytest.mark.libreoffice
@needs_office
@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in office is a shell script")
def test_an_office_that_cannot_start_is_reported_at_once(tmp_path: Path) -> None:
    broken = tmp_path / "soffice"
    broken.write_text("#!/bin/sh\nexit 3\n", encoding="utf-8")
    broken.chmod(0o755)
    office = Office(soffice=broken, start_timeout=60)
    if office.engine != "uno":
        pytest.skip("LibreOffice's Python bridge (python3-uno) is not installed")
    started = time.monotonic()
    with pytest.raises(OfficeError, match=r"did not start\. It stopped with exit code 3"):
        office.start()
    assert time.monotonic() - started < 15  # not the whole minute of start_timeout
    office.close()
