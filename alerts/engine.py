"""The processing core shared by the worker, `replay` and the tests: one event in, effects out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from alerts.model import AlertRaised, alert_id
from alerts.rules import PATIENT_RULES, RuleThresholds
from models.events import Event
from models.patient import PatientRecord

Outcome = Literal["accepted", "duplicate"]


@dataclass(slots=True)
class Processed:
    """What applying one event did: its outcome and the alerts it raised."""

    outcome: Outcome
    alerts: list[AlertRaised] = field(default_factory=list)


def process_event(
    record: PatientRecord,
    event: Event,
    thresholds: RuleThresholds,
    detected_at: datetime | None = None,
) -> Processed:
    """Apply `event` to the patient's record, then evaluate every patient rule on it."""
    if not record.apply(event):
        return Processed("duplicate")
    now = (detected_at or datetime.now(UTC)).isoformat()
    alerts = []
    for evaluate in PATIENT_RULES:
        crossing = evaluate(record, thresholds)
        if crossing is None:
            continue
        record.alerted[crossing.rule] = crossing.level
        alerts.append(
            AlertRaised(
                alert_id=alert_id(
                    record.trial_id, record.patient_id, crossing.rule, crossing.level
                ),
                rule=crossing.rule,
                severity=crossing.severity,
                trial_id=record.trial_id,
                patient_id=record.patient_id,
                level=crossing.level,
                value=crossing.value,
                threshold=crossing.threshold,
                triggered_at=event.occurred_at.isoformat(),
                detected_at=now,
                source_event_id=event.event_id,
                message=f"Patient {record.patient_id} ({record.trial_id}): {crossing.message}",
            )
        )
    return Processed("accepted", alerts)
