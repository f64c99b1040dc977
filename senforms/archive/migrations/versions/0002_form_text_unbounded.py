"""form text in unbounded columns

Names, phone numbers, e-mail addresses, class names, provision details, file names, document
titles and paths become TEXT. With VARCHAR(n), PostgreSQL refused a form whose answer was longer
(a 61-character phone, a long surname), and the refusal was retried for ever as an outage.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# (table, column, the length it had)
COLUMNS = [
    ("pupils", "legal_forename", 200),
    ("pupils", "legal_surname", 200),
    ("pupils", "preferred_name", 200),
    ("pupils", "class_name", 100),
    ("parents", "name", 200),
    ("parents", "relationship", 100),
    ("parents", "email", 320),
    ("parents", "phone", 50),
    ("received_forms", "original_name", 400),
    ("provision", "who", 200),
    ("provision", "group_size", 100),
    ("provision", "frequency", 200),
    ("documents", "title", 200),
    ("documents", "path", 600),
]


def upgrade() -> None:
    # SQLite never enforces a VARCHAR length (both are stored as TEXT), and changing a column's type
    # there means copying the table, which its foreign keys forbid inside this transaction; so only
    # databases that enforce lengths are altered. PostgreSQL changes VARCHAR to TEXT in place.
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, length in COLUMNS:
        op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, length in COLUMNS:
        # Longer values are cut to fit, as the old columns require.
        op.alter_column(
            table,
            column,
            type_=sa.String(length),
            existing_type=sa.Text(),
            postgresql_using=f'left("{column}", {length})',
        )
