"""Fill a Word form in LibreOffice as a person would, then save it as .docx (run by wordfill.py).

Runs under the Python that has LibreOffice's ``uno`` module (Debian: system python3 with
python3-uno), not the project's virtualenv, so it uses the standard library only.

    python3 lo_uno_fill.py JOB.json

JOB.json: ``{"profile": dir, "docs": [{"src": path, "out": path, "edits": [edit, ...]}, ...]}``: several
documents in one LibreOffice start, which costs seconds. An edit finds one table cell the way a
person finds it on the page:

- ``{"row": "Date of birth", "value": ...}``: the cell right of the cell whose first line is that label;
- ``{"header": "Outcome", "number": 2, "value": ...}``: in a table whose first row has that column
  heading, the cell in that column on the row numbered 2;
- ``{"item": "Parent or carer 2", "row": "Name", "value": ...}``: the column headed "Parent or carer 2",
  on the row labelled "Name".

``value`` is text typed into the answer box (a LibreOffice 7.4 input field or content control),
or true/false for a checkbox, clicked as a person clicks it. Prints ``{"done": [n, ...]}`` (edits
made in each document) on success.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import uno  # also registers the com.sun.star import hook
from com.sun.star.beans import PropertyValue


def _prop(name, value):
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def _fold(text):
    return re.sub(r"[^a-z0-9£]+", " ", text.casefold().replace("&", "and")).strip()


def _first_line(cell):
    for line in cell.getString().splitlines():
        if line.strip():
            return line.strip().removesuffix("*").strip()
    return ""


def _tables(doc):
    """Each table as rows of (cell, folded first line); read once, as UNO calls are slow."""
    found = []
    tables = doc.getTextTables()
    for i in range(tables.getCount()):
        table = tables.getByIndex(i)
        rows = []
        for r in range(table.getRows().getCount()):
            row = []
            for c in range(table.getColumns().getCount()):
                try:
                    cell = table.getCellByPosition(c, r)
                except Exception:  # a merged cell: the row is shorter
                    break
                row.append((cell, _fold(_first_line(cell))))
            rows.append(row)
        if rows:
            found.append(rows)
    return found


def _find_cell(tables, edit):
    for rows in tables:
        heads = [text for _, text in rows[0]]
        if "header" in edit or "item" in edit:
            wanted = _fold(edit.get("header") or edit["item"])
            if wanted not in heads:
                continue
            col = heads.index(wanted)
            for row in rows[1:]:
                first = row[0][1] if row else ""
                key = str(edit["number"]) if "header" in edit else _fold(edit["row"])
                if first == key and col < len(row):
                    return row[col][0]
        else:
            for row in rows:
                if len(row) >= 2 and row[0][1] == _fold(edit["row"]):
                    return row[1][0]
    raise LookupError(f"no cell for {edit}")


def _portions(cell):
    paragraphs = cell.createEnumeration()
    while paragraphs.hasMoreElements():
        para = paragraphs.nextElement()
        if not para.supportsService("com.sun.star.text.Paragraph"):
            continue
        portions = para.createEnumeration()
        while portions.hasMoreElements():
            yield portions.nextElement()


def _type_into(cell, value):
    """What a person does in LibreOffice 7.4: a plain text box imported from Word is an input
    field (click it, type in its dialog); a date, list or checkbox is a content control."""
    for portion in _portions(cell):
        kind = portion.TextPortionType
        if kind == "TextField" and portion.TextField.supportsService("com.sun.star.text.TextField.Input"):
            portion.TextField.Content = str(value)
            return
        if kind == "ContentControl":
            control = portion.ContentControl
            if control.Checkbox:
                # Clicking the box flips the state and the glyph shown.
                control.Checked = bool(value)
                control.getAnchor().setString(control.CheckedState if value else control.UncheckedState)
            else:
                # Clicking a control showing its placeholder selects all of it; typing replaces it.
                control.getAnchor().setString(str(value))
                control.ShowingPlaceHolder = False
            return
    # No answer box left in the cell (deleted, or never there): type at the end of the cell.
    text = cell.getText()
    text.insertString(text.getEnd(), str(value), False)


def _connect(pipe, proc):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 60
    while True:
        try:
            return resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main(job_path):
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    pipe = f"senforms_fill_{os.getpid()}"
    profile = job.get("profile") or tempfile.mkdtemp(prefix="lo-profile-")
    proc = subprocess.Popen(
        [
            "soffice",
            f"-env:UserInstallation=file://{profile}",
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            f"--accept=pipe,name={pipe};urp;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ctx = _connect(pipe, proc)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        done = []
        for item in job["docs"]:
            src = uno.systemPathToFileUrl(os.path.abspath(item["src"]))
            doc = desktop.loadComponentFromURL(src, "_blank", 0, (_prop("Hidden", True),))
            tables = _tables(doc)
            for edit in item["edits"]:
                _type_into(_find_cell(tables, edit), edit["value"])
            doc.getTextFields().refresh()
            out = uno.systemPathToFileUrl(os.path.abspath(item["out"]))
            doc.storeToURL(out, (_prop("FilterName", "MS Word 2007 XML"), _prop("Overwrite", True)))
            doc.close(True)
            done.append(len(item["edits"]))
        print(json.dumps({"done": done}))
        with contextlib.suppress(Exception):  # the bridge goes away as LibreOffice quits
            desktop.terminate()
    finally:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main(sys.argv[1])
