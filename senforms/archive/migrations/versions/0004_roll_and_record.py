"""the roll, leaving, legal hold, and documents issued on a date rather than for a form

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pupils") as batch:
        # From the school's roll export: the surname a pupil is known by, and when the roll last
        # confirmed this pupil (None: known only from forms).
        batch.add_column(sa.Column("preferred_surname", sa.Text(), nullable=True))
        batch.add_column(sa.Column("roll_updated_at", sa.DateTime(timezone=True), nullable=True))
        # Leaving the school (Code 6.57) and retention (6.72-6.76 and the school's records policy).
        batch.add_column(sa.Column("left_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("left_to", sa.Text(), nullable=True))
        batch.add_column(sa.Column("file_passed_on", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("documents") as batch:
        # A digest, an annual report or a review record issued by date belongs to no one form.
        batch.alter_column("form_id", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "issued",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("for_date", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupils.id"], name=op.f("fk_issued_pupil_id_pupils")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued")),
        sa.UniqueConstraint("key", name=op.f("uq_issued_key")),
    )
    # Identity checks look a pupil up by date of birth (names are compared folded, in Python).
    op.create_index(op.f("ix_pupils_date_of_birth"), "pupils", ["date_of_birth"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pupils_date_of_birth"), table_name="pupils")
    op.drop_table("issued")
    with op.batch_alter_table("documents") as batch:
        batch.alter_column("form_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("pupils") as batch:
        for column in ("hold_reason", "file_passed_on", "left_to", "left_on", "roll_updated_at", "preferred_surname"):
            batch.drop_column(column)
