"""The processing core shared by the worker, `replay` and the tests: one event in, effects out."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from alerts.model import AlertRaised, alert_id
from alerts.rules import (
    Crossing,
    RuleThresholds,
    evaluate_toxicity_boundary,
    rules_for,
)
from models.dlt import DltCourse, dlt_course
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
    now = detected_at or datetime.now(UTC)  # one detection instant for the event's alerts
    alerts = []
    for evaluate in rules_for(event):
        crossing = evaluate(record, thresholds)
        if crossing is None:
            continue
        record.alerted[crossing.rule] = crossing.level
        alerts.append(raise_alert(record.trial_id, record.patient_id, crossing, event, now))
    return Processed("accepted", alerts)


def raise_alert(
    trial_id: str,
    patient_id: str | None,
    crossing: Crossing,
    event: Event,
    detected_at: datetime | None = None,
) -> AlertRaised:
    """The alert for a crossing caused by `event` (patient_id None: a trial-level rule)."""
    who = f"Patient {patient_id} ({trial_id})" if patient_id is not None else f"Trial {trial_id}"
    return AlertRaised(
        alert_id=alert_id(trial_id, patient_id, crossing.rule, crossing.level),
        rule=crossing.rule,
        severity=crossing.severity,
        trial_id=trial_id,
        patient_id=patient_id,
        level=crossing.level,
        value=crossing.value,
        threshold=crossing.threshold,
        triggered_at=event.occurred_at.isoformat(),
        detected_at=(detected_at or datetime.now(UTC)).isoformat(),
        source_event_id=event.event_id,
        message=f"{who}: {crossing.message}",
    )


class TrialMonitor:
    """Trial-level rules: one DLT course per patient, kept current event by event.

    Call `observe(record, event)` after every accepted event (with the patient's updated
    record); it returns the trial-level alerts that event raised. `fired` holds, per trial,
    the level `toxicity_boundary` already fired at (restore it from the alerts on restart).
    The boundary is re-checked only when a patient's DLT facts change or the trial's clock
    passes the moment a patient becomes evaluable; between those the result cannot change.
    """

    def __init__(self, thresholds: RuleThresholds) -> None:
        self.config = thresholds.toxicity
        self.courses: dict[str, dict[str, DltCourse]] = {}
        self.fired: dict[str, int] = {}
        self._clock: dict[str, float] = {}
        self._next_due: dict[str, float] = {}
        self._dirty: set[str] = set()

    def load(self, records: Iterable[PatientRecord]) -> None:
        """Rebuild the courses from stored records (worker start-up)."""
        for record in records:
            course = dlt_course(record, self.config)
            if course is not None:
                self.courses.setdefault(record.trial_id, {})[record.patient_id] = course
                self._dirty.add(record.trial_id)

    def observe(
        self, record: PatientRecord, event: Event, detected_at: datetime | None = None
    ) -> list[AlertRaised]:
        """Re-evaluate the record's trial after `event` was applied to `record`."""
        trial_id = record.trial_id
        trial = self.courses.setdefault(trial_id, {})
        old = trial.get(record.patient_id)
        course = self._course(record, event, old)
        if course is None:
            return []  # not infused: not part of the monitoring
        trial[record.patient_id] = course
        before = self._clock.get(trial_id, -math.inf)
        clock = self._clock[trial_id] = max(before, course.last_event)
        due = before < self._next_due.get(trial_id, math.inf) <= clock
        unchanged = old is not None and _same_facts(old, course)
        if unchanged and not due and trial_id not in self._dirty:
            return []
        self._dirty.discard(trial_id)
        due_times = (c.evaluable_from(self.config) for c in trial.values())
        self._next_due[trial_id] = min(
            (at for at in due_times if at is not None and at > clock), default=math.inf
        )
        fired = self.fired.get(trial_id, 0)
        crossing = evaluate_toxicity_boundary(trial.values(), self.config, fired)
        if crossing is None:
            return []
        self.fired[trial_id] = crossing.level
        return [raise_alert(trial_id, None, crossing, event, detected_at)]

    def _course(
        self, record: PatientRecord, event: Event, old: DltCourse | None
    ) -> DltCourse | None:
        if old is not None and event.type in ("lab", "observation"):  # only the clock moves
            return replace(old, last_event=max(old.last_event, event.occurred_at.timestamp()))
        return dlt_course(record, self.config)


def _same_facts(a: DltCourse, b: DltCourse) -> bool:
    return (a.t0, a.dlt_at, a.follow_up_ended) == (b.t0, b.dlt_at, b.follow_up_ended)
