"""WordprocessingML facts shared by the form writer and the form reader.

python-docx has no API for content controls, so both sides work on the XML with lxml.
"""

from __future__ import annotations

import re

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W14_NS = "http://schemas.microsoft.com/office/word/2010/wordml"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
CUSTOM_NS = "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
VT_NS = "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"
NS = {"w": W_NS, "w14": W14_NS, "mc": MC_NS}


def w(tag: str) -> str:
    return f"{{{W_NS}}}{tag}"


def w14(tag: str) -> str:
    return f"{{{W14_NS}}}{tag}"


# The words an empty answer box shows. The reader treats a box showing exactly one of these as
# empty, whatever its placeholder mark says, because not every word processor keeps that mark.
PLACEHOLDER_TEXT = "Type here"
PLACEHOLDER_DATE = "dd/mm/yyyy"
PLACEHOLDER_CHOICE = "Choose one"
PLACEHOLDERS = frozenset(
    t.casefold()
    for t in (
        PLACEHOLDER_TEXT,
        PLACEHOLDER_DATE,
        PLACEHOLDER_CHOICE,
        # Word's own defaults, for controls a school adds to its template.
        "Click or tap here to enter text.",
        "Click or tap to enter a date.",
        "Choose an item.",
        "Click here to enter text.",
        "Click here to enter a date.",
    )
)

CHECKED = "\u2612"  # ☒
UNCHECKED = "\u2610"  # ☐
CHECKED_GLYPHS = frozenset("\u2612\u2611\u2714\u2713xX")

# The marker printed in every form's footer; it survives any word processor that keeps text.
FOOTER_MARK = "senforms form: {slug} version {version}"
FOOTER_MARK_RE = re.compile(r"senforms form:\s*([a-z][a-z-]*)\s+version\s+(\d+)", re.IGNORECASE)
PROP_KIND = "senforms.kind"
PROP_VERSION = "senforms.version"
