"""Alert delivery outbox: one row per alert, sink and notification, with retry state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Utc = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", sa.String(256), nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("notification", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", Utc, nullable=False),
        sa.Column("created_at", Utc, nullable=False),
        sa.Column("delivered_at", Utc, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("alert_id", "sink", "notification", name="pk_alert_deliveries"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.alert_id"],
            name="fk_alert_deliveries_alert_id",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("status IN ('pending', 'delivered')", name="ck_alert_deliveries_status"),
    )
    op.create_index(
        "ix_alert_deliveries_sink_status_next_attempt_at",
        "alert_deliveries",
        ["sink", "status", "next_attempt_at"],
    )


def downgrade() -> None:
    op.drop_table("alert_deliveries")
