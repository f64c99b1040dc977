"""meetings with parents, derived from every current form

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pupil_id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["form_id"], ["received_forms.id"], name=op.f("fk_meetings_form_id_received_forms")),
        sa.ForeignKeyConstraint(["pupil_id"], ["pupils.id"], name=op.f("fk_meetings_pupil_id_pupils")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
    )
    op.create_index(op.f("ix_meetings_pupil_id"), "meetings", ["pupil_id"], unique=False)
    op.create_index(op.f("ix_meetings_held_on"), "meetings", ["held_on"], unique=False)
    # Forms filed before this table existed: each current form was a meeting with parents.
    op.execute(
        "INSERT INTO meetings (pupil_id, form_id, kind, held_on) "
        "SELECT pupil_id, id, kind, meeting_date FROM received_forms WHERE superseded_by_id IS NULL"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_meetings_held_on"), table_name="meetings")
    op.drop_index(op.f("ix_meetings_pupil_id"), table_name="meetings")
    op.drop_table("meetings")
