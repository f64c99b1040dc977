"""LibreOffice, headless: Word letters (.docx) to PDF. The only module that talks to LibreOffice.

One ``Office`` starts ONE headless LibreOffice process and converts every letter through it,
because starting LibreOffice costs about a second while converting a one-page letter in a
running office costs under a tenth of one (see ``bench/pdf.py``)::

    with Office(timeout=settings.seconds_per_file) as office:
        pdfs = office.convert(docx_paths, outdir)

How it talks to the office. LibreOffice is driven through Python-UNO (``import uno``), which
only loads in the Python that LibreOffice was built for: Debian's ``/usr/bin/python3`` with
the ``python3-uno`` package, or the Python bundled with LibreOffice on Windows and macOS, never
our virtual environment's. So a small client script (``_CLIENT`` below) runs under that
Python, connects to the running office over a named pipe, and takes one request per line on
its stdin. The pipe (rather than a TCP port) cannot collide with another program's port, and
named pipes exist on Windows as well as on Linux.

If no Python with ``uno`` is found, the office falls back to one
``soffice --convert-to pdf file1 ... fileN`` call per ``convert()`` batch: still one start
per batch rather than one per letter, but without per-letter timeouts.

Damaged files. ``convert()`` converts every file it can; if some could not be converted it
raises ``ConversionFailed`` (an ``OfficeError``) *after* the others are done, listing what
was converted and why each failure happened, so one damaged letter never loses the rest.
Every file is opened with the Word filter named explicitly: left to guess, LibreOffice
happily "converts" a non-Word file as plain text and produces a PDF of garbage.

Each office uses its own user profile in a temporary folder, so it never clashes with a
LibreOffice the user has open, nor with a test running in parallel. An office that dies or
hangs is killed and started again; the letter it was working on is reported as failed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from senforms.errors import OfficeError

MISSING_MESSAGE = (
    "LibreOffice was not found, so letters will be written as Word documents (.docx) only. "
    "Install LibreOffice to get PDF letters."
)

# Where the Windows and macOS installers put LibreOffice when it is not on PATH.
_KNOWN_PLACES = (
    Path(r"C:\Program Files\LibreOffice\program\soffice.exe"),
    Path(r"C:\Program Files (x86)\LibreOffice\program\soffice.exe"),
    Path("/Applications/LibreOffice.app/Contents/MacOS/soffice"),
)

_WORD_FILTER = "MS Word 2007 XML"  # the same names are written out in _CLIENT below
_PDF_FILTER = "writer_pdf_Export"
_IS_WINDOWS = os.name == "nt"


def find_office() -> Path | None:
    """The LibreOffice program (``soffice``), or None when LibreOffice is not installed."""
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return next((place for place in _KNOWN_PLACES if place.is_file()), None)


def office_available() -> bool:
    """True when PDF letters can be made; otherwise tell staff ``MISSING_MESSAGE`` at start-up."""
    return find_office() is not None


@functools.cache
def find_uno_python(soffice: Path) -> Path | None:
    """A Python that can ``import uno`` for this LibreOffice, or None (then the fallback is used)."""
    program = soffice.resolve().parent
    candidates = [
        program / ("python.exe" if _IS_WINDOWS else "python"),  # bundled: Windows, TDF Linux builds
        program.parent / "Resources" / "python",  # bundled: macOS
        Path("/usr/bin/python3"),  # Debian and Ubuntu, with python3-uno
    ]
    for python in candidates:
        if python.is_file() and _imports_uno(python):
            return python
    return None


def _imports_uno(python: Path) -> bool:
    try:
        result = subprocess.run(
            [str(python), "-c", "import uno"],
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _clean_env() -> dict[str, str]:
    # Our virtual environment's settings must not leak into LibreOffice's own Python.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class ConversionFailed(OfficeError):
    """Some letters could not be converted; the others were, and are listed in ``converted``."""

    def __init__(self, converted: list[Path], failed: dict[Path, str]) -> None:
        self.converted = converted
        self.failed = failed
        lines = [f"LibreOffice could not turn {len(failed)} of {len(failed) + len(converted)} letters into PDF:"]
        lines += [f"  - {path.name}: {reason}" for path, reason in failed.items()]
        super().__init__("\n".join(lines))


class _NoAnswer(OfficeError):
    """The office did not answer in time: it is hung, and must be killed."""


class Office:
    """One running headless LibreOffice that converts Word documents to PDF; use it with ``with``.

    Not thread-safe: one thread converts at a time (LibreOffice itself converts one document
    at a time anyway).
    """

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        start_timeout: float = 60.0,
        soffice: Path | None = None,
        engine: str = "auto",
    ) -> None:
        """``timeout`` is per letter; ``engine`` is "uno", "cli" (one start per batch) or "auto"."""
        found = soffice or find_office()
        if found is None:
            raise OfficeError(MISSING_MESSAGE)
        if engine not in ("auto", "uno", "cli"):
            raise ValueError(f"engine must be 'auto', 'uno' or 'cli', not {engine!r}")
        self.soffice = found
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.uno_python = find_uno_python(found) if engine in ("auto", "uno") else None
        if engine == "uno" and self.uno_python is None:
            raise OfficeError(
                "LibreOffice's Python bridge (uno) was not found, so letters cannot be converted "
                "through a running LibreOffice.",
                advice="Install the python3-uno package, or reinstall LibreOffice.",
            )
        self.engine = "uno" if self.uno_python else "cli"
        self._tmp: Path | None = None
        self._soffice_proc: subprocess.Popen[bytes] | None = None
        self._client: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._pipe_name = ""

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> Office:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="senforms-office-"))
            (self._tmp / "client.py").write_text(_CLIENT, encoding="utf-8")
        if self.engine == "uno" and not self._running():
            self._start_uno()

    def close(self) -> None:
        """Ask the office to quit, kill it if it will not, and remove its profile folder."""
        if self._client is not None and self._client.poll() is None:
            with contextlib.suppress(OfficeError):
                self._request({"cmd": "quit"}, timeout=10)
        self._stop_processes(grace=10)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _running(self) -> bool:
        return (
            self._soffice_proc is not None
            and self._soffice_proc.poll() is None
            and self._client is not None
            and self._client.poll() is None
        )

    def _profile_args(self) -> list[str]:
        assert self._tmp is not None
        return [
            f"-env:UserInstallation={(self._tmp / 'profile').as_uri()}",
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "--nolockcheck",
        ]

    def _start_uno(self) -> None:
        assert self._tmp is not None and self.uno_python is not None
        self._stop_processes()
        # A fresh pipe name each start: a dying office may still hold the old one for a moment.
        self._pipe_name = f"senforms-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            self._soffice_proc = subprocess.Popen(
                [str(self.soffice), *self._profile_args(), f"--accept=pipe,name={self._pipe_name};urp;"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                **_new_group(),
            )
            self._client = subprocess.Popen(
                [str(self.uno_python), str(self._tmp / "client.py"), self._pipe_name, str(self.start_timeout)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                env=_clean_env(),
                **_new_group(),
            )
        except OSError as exc:
            self._stop_processes()
            raise OfficeError(f"LibreOffice could not be started: {exc}") from exc
        # A thread reads the client's replies so that every wait can have a timeout, the same
        # way on Windows (where select() does not work on pipes) as on Linux.
        self._replies = queue.Queue()
        threading.Thread(target=_pump, args=(self._client.stdout, self._replies), daemon=True).start()
        reply = self._await_start()
        if not reply.get("ok"):
            self._stop_processes()
            raise OfficeError(f"LibreOffice did not start. {reply.get('error', '')}".strip())

    def _await_start(self) -> dict[str, Any]:
        # Watch the office while the client connects, so an office that cannot start at all
        # (a broken installation) is reported at once rather than after the whole timeout.
        deadline = time.monotonic() + self.start_timeout + 5
        while time.monotonic() < deadline:
            try:
                return self._reply(0.25)
            except _NoAnswer:
                if self._soffice_proc is not None and self._soffice_proc.poll() is not None:
                    return {"ok": False, "error": f"It stopped with exit code {self._soffice_proc.returncode}."}
            except OfficeError as exc:
                return {"ok": False, "error": exc.message}
        return {"ok": False, "error": f"It did not answer within {self.start_timeout:g} seconds."}

    def _stop_processes(self, *, grace: float = 0.0) -> None:
        """End the client and the office, waiting up to ``grace`` seconds for them to quit."""
        if self._client is not None and self._client.stdin is not None:
            with contextlib.suppress(OSError):
                self._client.stdin.close()  # the client ends at the end of its input
        for proc in (self._client, self._soffice_proc):
            if proc is not None and grace:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)
            if proc is not None:
                # Always, even after a clean exit: soffice's launcher can leave its child behind.
                _kill_tree(proc)
        self._client = self._soffice_proc = None
        _remove_pipe(self._pipe_name)

    # -- talking to the client ---------------------------------------------------------------

    def _request(self, message: dict[str, Any], *, timeout: float) -> dict[str, Any]:
        assert self._client is not None and self._client.stdin is not None
        try:
            self._client.stdin.write(json.dumps(message) + "\n")
            self._client.stdin.flush()
        except (OSError, ValueError) as exc:
            raise OfficeError("LibreOffice stopped unexpectedly.") from exc
        return self._reply(timeout)

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise _NoAnswer(f"LibreOffice did not answer within {timeout:g} seconds.") from None
        if line is None:
            raise OfficeError("LibreOffice stopped unexpectedly.")
        return json.loads(line)

    # -- converting -------------------------------------------------------------------------

    def convert(self, paths: Sequence[Path], outdir: Path) -> list[Path]:
        """Convert each Word document to ``outdir/<name>.pdf``; return the PDFs in input order.

        Raises ``ConversionFailed`` once every other file is done if any file failed, and
        ``OfficeError`` if LibreOffice cannot run at all. A PDF appears under its final name
        only when complete, so a watcher of ``outdir`` never sees half a file.
        """
        sources = [Path(p).resolve() for p in paths]
        targets = _targets(sources, Path(outdir))
        Path(outdir).mkdir(parents=True, exist_ok=True)
        if not sources:
            return []
        self.start()
        convert_all = self._convert_uno if self.engine == "uno" else self._convert_cli
        failed = convert_all(sources, targets)
        converted = [t for s, t in zip(sources, targets, strict=True) if s not in failed]
        if failed:
            raise ConversionFailed(converted, failed)
        return converted

    def _convert_uno(self, sources: list[Path], targets: list[Path]) -> dict[Path, str]:
        failed: dict[Path, str] = {}
        for src, dst in zip(sources, targets, strict=True):
            if not src.is_file():
                failed[src] = "the file is missing."
                continue
            part = dst.with_name(f".{dst.stem}.{uuid.uuid4().hex[:8]}.part")
            request = {"cmd": "convert", "src": str(src), "dst": str(part)}
            # One retry: a letter must not be blamed for an office that died between letters.
            for attempt in (1, 2):
                if not self._running():
                    self._start_uno()
                try:
                    reply = self._request(request, timeout=self.timeout)
                except _NoAnswer:
                    self._stop_processes()  # hung on this letter: kill it, start afresh for the next
                    failed[src] = f"LibreOffice took longer than {self.timeout:g} seconds."
                    break
                except OfficeError as exc:
                    self._stop_processes()
                    if attempt == 2:
                        failed[src] = exc.message
                        break
                    continue
                if reply.get("lost") and attempt == 1:
                    self._stop_processes()
                    continue
                if reply.get("ok") and part.is_file():
                    os.replace(part, dst)
                else:
                    failed[src] = reply.get("error") or "no PDF was written."
                break
            part.unlink(missing_ok=True)
        return failed

    def _convert_cli(self, sources: list[Path], targets: list[Path]) -> dict[Path, str]:
        assert self._tmp is not None
        work = Path(tempfile.mkdtemp(prefix="out-", dir=self._tmp))
        present = [s for s in sources if s.is_file()]
        try:
            if present:
                self._run_cli(present, work)
            failed: dict[Path, str] = {}
            for src, dst in zip(sources, targets, strict=True):
                made = work / f"{src.stem}.pdf"
                if not src.is_file():
                    failed[src] = "the file is missing."
                elif made.is_file() and made.stat().st_size > 0:
                    os.replace(made, dst)
                else:
                    failed[src] = "LibreOffice could not open it as a Word document."
            return failed
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run_cli(self, sources: list[Path], work: Path) -> None:
        timeout = self.start_timeout + self.timeout * len(sources)
        command = [
            str(self.soffice),
            *self._profile_args(),
            f"--infilter={_WORD_FILTER}",
            "--convert-to",
            f"pdf:{_PDF_FILTER}",
            "--outdir",
            str(work),
            *map(str, sources),
        ]
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_new_group()
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise OfficeError(f"LibreOffice did not finish converting within {timeout:g} seconds.") from None
        finally:
            _kill_tree(proc)


def convert(paths: Sequence[Path], outdir: Path, *, timeout: float = 60.0) -> list[Path]:
    """Convert one batch through a LibreOffice started for it; see ``Office.convert``."""
    with Office(timeout=timeout) as office:
        return office.convert(paths, outdir)


def _targets(sources: Iterable[Path], outdir: Path) -> list[Path]:
    targets = [outdir.resolve() / f"{s.stem}.pdf" for s in sources]
    seen: set[Path] = set()
    for target in targets:
        if target in seen:
            raise OfficeError(f"Two letters in one batch would both be saved as {target.name}.")
        seen.add(target)
    return targets


def _remove_pipe(name: str) -> None:
    # A killed office on Linux or macOS leaves its pipe behind as a socket file in /tmp (or
    # /var/tmp, LibreOffice's fallback; it ignores TMPDIR for pipes).
    if name and not _IS_WINDOWS:
        for folder in (Path("/tmp"), Path("/var/tmp")):
            for leftover in folder.glob(f"OSL_PIPE_*_{name}"):
                leftover.unlink(missing_ok=True)


def _pump(stream: IO[str] | None, replies: queue.Queue[str | None]) -> None:
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                if line.startswith("{"):
                    replies.put(line)
    replies.put(None)  # end of stream: the client has gone


def _new_group() -> dict[str, Any]:
    # Own process group, so the office and its children can be ended together, and so that
    # Ctrl+C in the console reaches senforms (which then closes the office) rather than soffice.
    if _IS_WINDOWS:
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    return {"start_new_session": True}


def _kill_tree(proc: subprocess.Popen[Any]) -> None:
    """End a process and everything it started (soffice hands the real work to a child)."""
    if _IS_WINDOWS:
        if proc.poll() is None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                )
    else:
        killpg = getattr(os, "killpg", None)
        if killpg is not None:
            with contextlib.suppress(OSError):
                killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


# The client runs under LibreOffice's Python (see the module docstring), so it may use only
# the standard library and uno, and must keep to what older Pythons accept (LibreOffice bundles
# its own, sometimes several versions behind). One JSON request per line on stdin, one JSON
# reply per line on stdout. "lost" in a reply means the office went away, not that the
# document is bad.
_CLIENT = r"""
import json
import sys
import time

import uno
from com.sun.star.beans import PropertyValue


def prop(name, value):
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def reply(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def connect(pipe, seconds):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + seconds
    while True:
        try:
            ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
            return ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        except Exception as exc:  # NoConnectException until the office is listening
            if time.monotonic() > deadline:
                raise RuntimeError("no connection after %g seconds: %s" % (seconds, exc))
            time.sleep(0.1)


def is_lost(exc):
    # What pyuno raises when the office at the other end of the pipe has gone.
    return type(exc).__name__ == "DisposedException" or "disposed" in str(exc).lower()


def convert(desktop, src, dst):
    load = (
        prop("Hidden", True),
        prop("ReadOnly", True),
        prop("FilterName", "MS Word 2007 XML"),  # never guess: see the module docstring
        prop("MacroExecutionMode", 0),  # never run macros
        prop("UpdateDocMode", 0),  # never follow links
    )
    doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(src), "_blank", 0, load)
    if doc is None:
        return "LibreOffice could not open it as a Word document."
    try:
        doc.storeToURL(uno.systemPathToFileUrl(dst), (prop("FilterName", "writer_pdf_Export"),))
    finally:
        doc.close(True)
    return None


def main():
    pipe, seconds = sys.argv[1], float(sys.argv[2])
    try:
        desktop = connect(pipe, seconds)
    except Exception as exc:
        reply(ok=False, error=str(exc))
        return
    reply(ok=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "quit":
            try:
                desktop.terminate()
            except Exception:
                pass  # the office closes its end while answering; that is success
            reply(ok=True)
            return
        try:
            error = convert(desktop, request["src"], request["dst"])
        except Exception as exc:
            reply(ok=False, lost=is_lost(exc), error="%s: %s" % (type(exc).__name__, exc))
            if is_lost(exc):
                return
            continue
        reply(ok=error is None, error=error)


main()
"""


if __name__ == "__main__":  # pragma: no cover - a manual check: python -m senforms.office a.docx ... outdir
    *_files, _out = sys.argv[1:]
    _started = time.perf_counter()
    print(*convert([Path(f) for f in _files], Path(_out)), sep="\n")
    print(f"{time.perf_counter() - _started:.2f} s", file=sys.stderr)
