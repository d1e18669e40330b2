"""The append-only audit log: acknowledgements, configuration changes, re-driven dead letters.

The service only ever inserts here; the database refuses UPDATE and DELETE (triggers
from the initial migration), so an entry cannot be rewritten through the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from cartwatch.streams.storage.engine import now, utc
from cartwatch.streams.storage.schema import audit_log

ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_ACKNOWLEDGE_REFUSED = "alert.acknowledge_refused"  # a second acknowledgement
CONFIGURATION_CHANGED = "configuration.changed"
DEAD_LETTER_REDRIVEN = "dead_letter.redriven"


def append_audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Append one entry in the caller's transaction; returns its id."""
    stmt = insert(audit_log).values(
        at=utc(at) if at else now(),
        actor=actor,
        action=action,
        subject=subject,
        details=dict(details or {}),
    )
    return conn.execute(stmt).inserted_primary_key[0]


def list_audit(
    engine: Engine, *, action: str | None = None, subject: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Entries newest first, optionally of one action or subject, JSON-ready."""
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action is not None:
        stmt = stmt.where(audit_log.c.action == action)
    if subject is not None:
        stmt = stmt.where(audit_log.c.subject == subject)
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [{**row, "at": utc(row["at"]).isoformat()} for row in rows]


def record_configuration(engine: Engine, config: Mapping[str, Any], *, actor: str) -> bool:
    """Append a configuration entry when `config` differs from the last one recorded."""
    last = (
        select(audit_log.c.details)
        .where(audit_log.c.action == CONFIGURATION_CHANGED)
        .order_by(audit_log.c.id.desc())
        .limit(1)
    )
    with engine.begin() as conn:
        if conn.execute(last).scalar() == dict(config):
            return False
        append_audit(
            conn, actor=actor, action=CONFIGURATION_CHANGED, subject="settings", details=config
        )
    return True


def configuration_of(settings: Any) -> dict[str, Any]:
    """The settings worth auditing: every plain value, secrets only as whether they are set."""
    values = settings.model_dump(mode="json", exclude={"database_url", "api_token"})
    values["api_token_set"] = settings.api_token is not None
    return values
