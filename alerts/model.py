"""The alert message of CONTRACT section 4."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["info", "warning", "critical"]


class AlertRaised(BaseModel):
    """One alert as published on `cartwatch.alerts`."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    rule: str
    severity: Severity
    trial_id: str
    patient_id: str | None
    level: int
    value: float | int | None
    threshold: float | int | None
    triggered_at: str
    detected_at: str
    source_event_id: str
    message: str


# The alert's fields in the order of CONTRACT 4.
ALERT_FIELDS = tuple(AlertRaised.model_fields)


def alert_id(trial_id: str, patient_id: str | None, rule: str, level: int) -> str:
    """Deterministic id: a redelivery, replay or restart never makes a second alert."""
    return f"{trial_id}:{patient_id if patient_id is not None else ''}:{rule}:{level}"
