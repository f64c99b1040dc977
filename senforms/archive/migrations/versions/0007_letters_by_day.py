"""the day's letters found from an index alone

Revision ID: 0007_letters_by_day
Revises: 0006_documents_created
Create Date: 2026-11-24 00:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0007_letters_by_day"
down_revision = "0006_documents_created"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every column the office's letters list filters on, and the path it returns, in one index:
    # read through the table, each document row was read through its bytes (stored before
    # created_at and delivered_at), so finding a day's letters cost more with every letter sent.
    # It starts with created_at, so it also serves everything the index it replaces did.
    op.create_index(
        "ix_documents_letters_by_day", "documents", ["created_at", "audience", "delivered_at", "path"], unique=False
    )
    op.drop_index(op.f("ix_documents_created_at"), table_name="documents")


def downgrade() -> None:
    op.create_index(op.f("ix_documents_created_at"), "documents", ["created_at"], unique=False)
    op.drop_index("ix_documents_letters_by_day", table_name="documents")
