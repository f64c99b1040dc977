"""indexes: register versions not yet written to the outbox; pupils by former UPN

Revision ID: 0005_register
Revises: 0004
Create Date: 2026-11-23 22:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0005_register"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The outbox's register is written once per batch; the versions still to write are found by
    # (template, delivered_at), which without an index scans every document ever issued.
    op.create_index("ix_documents_template_delivered_at", "documents", ["template", "delivered_at"], unique=False)
    # Every form for a pupil not found by UPN looks the UPN up as a former UPN: without an index
    # that scans every pupil (15 ms at 50,000), so a new pupil's form grew with the school.
    op.create_index(op.f("ix_pupils_former_upn"), "pupils", ["former_upn"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pupils_former_upn"), table_name="pupils")
    op.drop_index("ix_documents_template_delivered_at", table_name="documents")
