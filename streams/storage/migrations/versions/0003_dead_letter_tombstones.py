"""A dead letter's value may be null: a tombstone (a record with no value) is kept as one,
not as zero bytes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as table:  # SQLite rebuilds the table
        table.alter_column("value", existing_type=sa.LargeBinary, nullable=True)


def downgrade() -> None:
    empty = sa.bindparam("empty", b"", type_=sa.LargeBinary)
    op.execute(
        sa.text("UPDATE dead_letters SET value = :empty WHERE value IS NULL").bindparams(empty)
    )
    with op.batch_alter_table("dead_letters") as table:
        table.alter_column("value", existing_type=sa.LargeBinary, nullable=False)
