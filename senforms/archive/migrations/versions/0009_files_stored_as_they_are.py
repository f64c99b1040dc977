"""files kept as they are: PostgreSQL does not try to compress them again

Revision ID: 0009_files_stored_as_they_are
Revises: 0008_received_by_day
Create Date: 2026-11-24 03:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0009_files_stored_as_they_are"
down_revision = "0008_received_by_day"
branch_labels = None
depends_on = None

# The original forms and the documents are .docx (zip) and PDF files: compressed already.
# PostgreSQL's default storage for a bytea value over 2 KB tries to compress it (pglz) before
# storing it out of line, and gives up only after working through it: measured on this project's
# 40 KB letters and forms, an INSERT with its commit took 1.0 ms with the default (EXTENDED) and
# 0.41-0.52 ms with EXTERNAL (out of line, never compressed), for the same space on disk. A form
# stores four such files. Only new values are affected; SQLite has no such setting.
_COLUMNS = (("received_forms", "original"), ("documents", "content"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTENDED")
