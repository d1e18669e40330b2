"""An alert's delivery state comes from its deliveries: `alerts.delivery_status` and
`alerts.delivered_at`, which stayed `pending` while `alert_deliveries` said delivered, are
dropped (streams/storage/delivery_state.py derives both when read).

The downgrade brings the columns back filled in as delivery_state.py derives them, so an
older release shows what was delivered.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Utc = sa.DateTime(timezone=True)
# The name 0001 gave the check: its name went through the naming convention a second time.
CHECK = "ck_alerts_ck_alerts_delivery"


def upgrade() -> None:
    # SQLite rebuilds the table; its foreign keys are not enforced (no PRAGMA foreign_keys),
    # so dropping the old table cascades to no delivery.
    with op.batch_alter_table("alerts") as table:
        table.drop_constraint(op.f(CHECK), type_="check")
        table.drop_column("delivery_status")
        table.drop_column("delivered_at")


# The first notification's rows of an alert, as delivery_state.py reads them.
_FIRST = "FROM alert_deliveries d WHERE d.alert_id = alerts.alert_id AND d.notification = 0"
_DELIVERED = (
    f"EXISTS (SELECT 1 {_FIRST}) AND NOT EXISTS (SELECT 1 {_FIRST} AND d.status <> 'delivered')"
)
_FAILING = f"EXISTS (SELECT 1 {_FIRST} AND d.status = 'pending' AND d.last_error IS NOT NULL)"


def downgrade() -> None:
    with op.batch_alter_table("alerts") as table:
        table.add_column(
            sa.Column("delivery_status", sa.String(16), nullable=False, server_default="pending")
        )
        table.add_column(sa.Column("delivered_at", Utc, nullable=True))
        table.create_check_constraint(
            op.f(CHECK), "delivery_status IN ('pending', 'delivered', 'failed')"
        )
    op.execute(
        "UPDATE alerts SET"
        f" delivery_status = CASE WHEN {_DELIVERED} THEN 'delivered'"
        f" WHEN {_FAILING} THEN 'failed' ELSE 'pending' END,"
        f" delivered_at = CASE WHEN {_DELIVERED} THEN (SELECT max(d.delivered_at) {_FIRST}) END"
    )
