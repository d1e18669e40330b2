"""The database schema (SQLAlchemy 2 Core tables); Alembic migrations create it.

Times are stored in UTC. Every table a stream writes has a natural key from the
contract (patient, `event_id`, `alert_id`, source coordinates), so a redelivered
message is an idempotent upsert, never a second row.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names, so migrations can name what they create and alter.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite autoincrements only a column declared exactly INTEGER PRIMARY KEY.
Serial = BigInteger().with_variant(Integer(), "sqlite")
Utc = DateTime(timezone=True)

patient_snapshots = Table(
    "patient_snapshots",
    metadata,
    Column("trial_id", String(64), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("record", JSON, nullable=False),  # PatientRecord.to_dict()
    Column("events_accepted", Integer, nullable=False),  # PatientRecord.arrivals
    Column("updated_at", Utc, nullable=False),
)

adverse_event_reports = Table(
    "adverse_event_reports",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("trial_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("ae_id", Text, nullable=False),
    Column("term", Text, nullable=False),
    Column("grade", SmallInteger, nullable=False),
    Column("onset_at", Utc, nullable=False),
    Column("resolved_at", Utc, nullable=True),
    Column("status", String(32), nullable=False),
    Column("treatments", JSON, nullable=False),
    Column("occurred_at", Utc, nullable=False),
    Index(None, "trial_id", "patient_id", "ae_id"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", String(256), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("trial_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("level", Integer, nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("triggered_at", Utc, nullable=False),
    Column("detected_at", Utc, nullable=False),
    Column("source_event_id", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("acknowledged_by", String(128), nullable=True),
    Column("acknowledged_at", Utc, nullable=True),
    Column("ack_note", Text, nullable=True),
    Index(None, "trial_id", "detected_at"),
)

# The delivery outbox (migration 0002): one row per alert, sink and notification (0 the
# first, 1.. the re-notifications of an unacknowledged critical alert). The primary key
# makes each of them happen once however many dispatchers run. It is the one record of
# delivery: an alert's state is derived from it when read (delivery_state.py; migration
# 0005 dropped the alerts' own copy, which nothing kept in step).
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column(
        "alert_id",
        String(256),
        ForeignKey("alerts.alert_id", name="fk_alert_deliveries_alert_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("sink", String(64), primary_key=True),
    Column("notification", Integer, primary_key=True),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Utc, nullable=False),
    Column("created_at", Utc, nullable=False),
    Column("delivered_at", Utc, nullable=True),
    Column("last_error", Text, nullable=True),
    CheckConstraint("status IN ('pending', 'delivered')", name="status"),
    Index(None, "sink", "status", "next_attempt_at"),
)

# Append-only: the migration adds triggers that make UPDATE and DELETE fail.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("at", Utc, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Index(None, "action", "at"),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Serial, primary_key=True, autoincrement=True),
    Column("source_topic", Text, nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=True),  # null: a tombstone (migration 0003)
    Column("reasons", JSON, nullable=False),
    Column("received_at", Utc, nullable=False),
    Column("status", String(16), nullable=False, server_default="new"),
    Column("redriven_at", Utc, nullable=True),
    Column("redriven_event_id", String(128), nullable=True),
    UniqueConstraint("source_topic", "source_partition", "source_offset"),
    CheckConstraint("status IN ('new', 'redriven')", name="status"),
)

# Local accounts (migration 0004): people and programs the API knows by a token it issued.
# Only a hash of the token is kept; a revoked account stays, so its name is never reused
# and the acknowledgements it made keep naming one account.
users = Table(
    "users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("roles", JSON, nullable=False),  # a sorted list of role names
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256, hex
    Column("created_at", Utc, nullable=False),
    Column("revoked_at", Utc, nullable=True),
)
