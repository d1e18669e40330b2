"""Initial schema: snapshots, adverse-event reports, alerts, audit log, dead letters.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Utc = sa.DateTime(timezone=True)

# The audit log is append-only in the database itself, not just in the service's code.
_PG_APPEND_ONLY = [
    """
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
    END;
    $$
    """,
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]
_SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
]


def upgrade() -> None:
    op.create_table(
        "patient_snapshots",
        sa.Column("trial_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("events_accepted", sa.Integer, nullable=False),
        sa.Column("updated_at", Utc, nullable=False),
        sa.PrimaryKeyConstraint("trial_id", "patient_id", name="pk_patient_snapshots"),
    )
    op.create_table(
        "adverse_event_reports",
        sa.Column("id", Serial, nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("trial_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("ae_id", sa.Text, nullable=False),
        sa.Column("term", sa.Text, nullable=False),
        sa.Column("grade", sa.SmallInteger, nullable=False),
        sa.Column("onset_at", Utc, nullable=False),
        sa.Column("resolved_at", Utc, nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("treatments", sa.JSON, nullable=False),
        sa.Column("occurred_at", Utc, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_adverse_event_reports"),
        sa.UniqueConstraint("event_id", name="uq_adverse_event_reports_event_id"),
    )
    op.create_index(
        "ix_adverse_event_reports_trial_id_patient_id_ae_id",
        "adverse_event_reports",
        ["trial_id", "patient_id", "ae_id"],
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(256), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("trial_id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("triggered_at", Utc, nullable=False),
        sa.Column("detected_at", Utc, nullable=False),
        sa.Column("source_event_id", sa.String(128), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("delivery_status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("delivered_at", Utc, nullable=True),
        sa.Column("acknowledged_by", sa.String(128), nullable=True),
        sa.Column("acknowledged_at", Utc, nullable=True),
        sa.Column("ack_note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name="pk_alerts"),
        sa.CheckConstraint(
            "delivery_status IN ('pending', 'delivered', 'failed')", name="ck_alerts_delivery"
        ),
    )
    op.create_index("ix_alerts_trial_id_detected_at", "alerts", ["trial_id", "detected_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", Serial, nullable=False, autoincrement=True),
        sa.Column("at", Utc, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])
    op.create_table(
        "dead_letters",
        sa.Column("id", Serial, nullable=False, autoincrement=True),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("received_at", Utc, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="new"),
        sa.Column("redriven_at", Utc, nullable=True),
        sa.Column("redriven_event_id", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        sa.UniqueConstraint(
            "source_topic",
            "source_partition",
            "source_offset",
            name="uq_dead_letters_source_topic_source_partition_source_offset",
        ),
        sa.CheckConstraint("status IN ('new', 'redriven')", name="ck_dead_letters_status"),
    )
    dialect = op.get_bind().dialect.name
    append_only = {"postgresql": _PG_APPEND_ONLY, "sqlite": _SQLITE_APPEND_ONLY}
    if dialect not in append_only:
        raise NotImplementedError(f"no append-only audit log for {dialect}")
    for statement in append_only[dialect]:
        op.execute(statement)


def downgrade() -> None:
    for table in ("dead_letters", "audit_log", "alerts", "adverse_event_reports"):
        op.drop_table(table)
    op.drop_table("patient_snapshots")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
