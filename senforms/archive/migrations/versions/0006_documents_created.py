"""index documents by when they were filed, for the office's daily list of letters

Revision ID: 0006_documents_created
Revises: 0005_register
Create Date: 2026-11-23 23:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0006_documents_created"
down_revision = "0005_register"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "Letters to send <day>.csv" is rebuilt after each delivery from the letters filed around
    # that day; without this index every delivery read every document the school ever sent.
    op.create_index(op.f("ix_documents_created_at"), "documents", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_documents_created_at"), table_name="documents")
