"""What the HTTP API and the operator commands read and change of alerts, and a trial's
patient records for its reports (dead letters: dead_letters.py).

Every function takes an engine and returns JSON-ready dicts (times in RFC 3339, UTC).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, RowMapping, func, select, update

from cartwatch.models.patient import PatientRecord
from cartwatch.streams.storage.audit import (
    ALERT_ACKNOWLEDGE_REFUSED,
    ALERT_ACKNOWLEDGED,
    append_audit,
)
from cartwatch.streams.storage.delivery_state import TALLIES, delivery_of, with_delivery
from cartwatch.streams.storage.engine import now, utc
from cartwatch.streams.storage.errors import AlertAlreadyAcknowledged, AlertNotFound
from cartwatch.streams.storage.schema import alerts, patient_snapshots

_TIMES = ("triggered_at", "detected_at", "acknowledged_at")
# What an acknowledgement's audit entry keeps of the alert: what the person saw.
_SHOWN = ("rule", "level", "value", "severity", "triggered_at")


def list_alerts(
    engine: Engine,
    *,
    trial_id: str | None = None,
    patient_id: str | None = None,
    acknowledged: bool | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Stored alerts newest first (by detection time), with delivery (as `delivery_state`
    derives it) and acknowledgement; optionally of one trial, one patient (with
    `trial_id`), only open or only acknowledged."""
    stmt = with_delivery(select(alerts))
    stmt = stmt.order_by(alerts.c.detected_at.desc(), alerts.c.alert_id).limit(limit)
    if trial_id is not None:
        stmt = stmt.where(alerts.c.trial_id == trial_id)
    if patient_id is not None:
        stmt = stmt.where(alerts.c.patient_id == patient_id)
    if acknowledged is not None:
        ack = alerts.c.acknowledged_at
        stmt = stmt.where(ack.is_not(None) if acknowledged else ack.is_(None))
    with engine.connect() as conn:
        return [_alert_json(row) for row in conn.execute(stmt).mappings()]


def _alert_json(row: RowMapping) -> dict[str, Any]:
    """A row of `with_delivery(select(alerts))`: the alert with its delivery state in place
    of the tallies, times in RFC 3339 (UTC)."""
    alert = {k: v for k, v in row.items() if k not in TALLIES}
    for name in _TIMES:
        if alert.get(name) is not None:
            alert[name] = utc(alert[name]).isoformat()
    return alert | delivery_of(row)


def open_alert_counts(engine: Engine) -> dict[tuple[str, str], int]:
    """(trial_id, severity) -> alerts raised and not acknowledged, over every worker's."""
    stmt = (
        select(alerts.c.trial_id, alerts.c.severity, func.count())
        .where(alerts.c.acknowledged_at.is_(None))
        .group_by(alerts.c.trial_id, alerts.c.severity)
    )
    with engine.connect() as conn:
        return {(trial, severity): n for trial, severity, n in conn.execute(stmt)}


def acknowledge_alert(
    engine: Engine, alert_id: str, *, actor: str, note: str | None = None
) -> dict[str, Any]:
    """Acknowledge an alert and audit it with the alert as shown, in one transaction.

    The first acknowledgement stands: a second one changes nothing, is audited as refused,
    and raises AlertAlreadyAcknowledged naming the first; AlertNotFound when there is no
    such alert.
    """
    acknowledge = (
        update(alerts)
        .where(alerts.c.alert_id == alert_id, alerts.c.acknowledged_at.is_(None))
        .values(acknowledged_by=actor, acknowledged_at=now(), ack_note=note)
    )
    subject = f"alert:{alert_id}"
    with engine.begin() as conn:
        acknowledged = conn.execute(acknowledge).rowcount == 1
        shown = with_delivery(select(alerts)).where(alerts.c.alert_id == alert_id)
        row = conn.execute(shown).mappings().first()
        if row is None:
            raise AlertNotFound("no alert with that id")
        alert = _alert_json(row)
        details: dict[str, Any] = {"note": note, "alert": {k: alert[k] for k in _SHOWN}}
        if not acknowledged:  # who was first, and when
            details |= {k: alert[k] for k in ("acknowledged_by", "acknowledged_at")}
        action = ALERT_ACKNOWLEDGED if acknowledged else ALERT_ACKNOWLEDGE_REFUSED
        append_audit(conn, actor=actor, action=action, subject=subject, details=details)
    if not acknowledged:  # raised after the commit: the refusal stays in the audit log
        raise AlertAlreadyAcknowledged(alert["acknowledged_by"], alert["acknowledged_at"])
    return alert


def trial_records(engine: Engine, trial_id: str) -> list[PatientRecord]:
    """Every stored patient record of the trial (its latest snapshot), by patient id."""
    stmt = (
        select(patient_snapshots.c.record)
        .where(patient_snapshots.c.trial_id == trial_id)
        .order_by(patient_snapshots.c.patient_id)
    )
    with engine.connect() as conn:
        return [PatientRecord.from_dict(record) for (record,) in conn.execute(stmt)]


def trial_alerts(engine: Engine, trial_id: str, *, until: datetime) -> list[dict[str, Any]]:
    """The trial's alerts triggered at or before `until`, in the order they were triggered,
    with their acknowledgements as stored."""
    stmt = (
        with_delivery(select(alerts))
        .where(alerts.c.trial_id == trial_id, alerts.c.triggered_at <= until)
        .order_by(alerts.c.triggered_at, alerts.c.alert_id)
    )
    with engine.connect() as conn:
        return [_alert_json(row) for row in conn.execute(stmt).mappings()]
