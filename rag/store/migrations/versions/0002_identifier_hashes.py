"""identifier hashes: keyed hashes of each patient's name parts and IDs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identifier_hashes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "token_hash"),
    )
    with op.batch_alter_table("identifier_hashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identifier_hashes_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identifier_hashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identifier_hashes_patient_id"))

    op.drop_table("identifier_hashes")
