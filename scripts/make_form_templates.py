"""Write the Word forms that come with senforms to senforms/templates/forms/, from the kinds' declaration.

A school copies one of these to its home folder's templates/forms/ and edits it in Word. Run this
again after changing a kind in senforms/kinds.py; tests/test_form_templates.py checks they agree.
"""

from __future__ import annotations

import io
from pathlib import Path

from senforms.kinds import KINDS
from senforms.wordform import build_template

FORMS = Path(__file__).resolve().parent.parent / "senforms" / "templates" / "forms"


def main() -> None:
    FORMS.mkdir(parents=True, exist_ok=True)
    for kind in KINDS.values():
        out = io.BytesIO()
        build_template(kind).save(out)
        (FORMS / kind.filename).write_bytes(out.getvalue())
        print(f"Wrote {FORMS / kind.filename}")


if __name__ == "__main__":
    main()
