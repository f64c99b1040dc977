"""forms received on a day counted from an index

Revision ID: 0008_received_by_day
Revises: 0007_letters_by_day
Create Date: 2026-11-24 01:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0008_received_by_day"
down_revision = "0007_letters_by_day"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The status's "Done today" counts the forms the archive received today, whoever processed
    # them (the watcher or senforms process): one range count on this index, not a scan of every
    # form the school ever filed (each row holds the form's original bytes).
    op.create_index(op.f("ix_received_forms_received_at"), "received_forms", ["received_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_received_forms_received_at"), table_name="received_forms")
