"""The processing core shared by the worker, `replay` and the tests: one event in, effects out."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from cartwatch.alerts.model import AlertRaised, alert_id
from cartwatch.alerts.rules import (
    Crossing,
    RuleThresholds,
    evaluate_toxicity_boundary,
    rules_for,
)
from cartwatch.models.dlt import DltCourse, dlt_course
from cartwatch.models.events import Event
from cartwatch.models.patient import PatientRecord

Outcome = Literal["accepted", "duplicate"]

_VERSIONS = itertools.count(1)  # of trials' courses, unique across monitors


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
    digest: int | None = None,
) -> Processed:
    """Apply `event` to the patient's record, then evaluate every patient rule on it
    (`digest`: its `event_key`, when the caller has it already)."""
    if not record.apply(event, digest):
        return Processed("duplicate")
    now = detected_at  # one detection instant for the event's alerts, read at the first one
    alerts = []
    for evaluate in rules_for(event):
        crossing = evaluate(record, thresholds)
        if crossing is None:
            continue
        now = now or datetime.now(UTC)
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
    the level `toxicity_boundary` already fired at (a new monitor raises a crossed boundary
    again at the trial's next event; the worker recognises it by its `alert_id`).

    The boundary walks every evaluable patient of the trial, so it is re-checked only when
    its input can have changed: a patient's DLT facts change where the trial's clock has
    already reached (their old or new evaluable time is past), or the clock passes a
    patient's evaluable time (a heap of those times, checked lazily). Anything else (a lab,
    an infusion whose 28 days are still ahead) costs O(log n), not a walk of the trial.
    """

    def __init__(self, thresholds: RuleThresholds) -> None:
        self.config = thresholds.toxicity
        self.courses: dict[str, dict[str, DltCourse]] = {}
        self.fired: dict[str, int] = {}
        # trial -> patient -> accepted events of the record each course is from
        self._arrivals: dict[str, dict[str, int]] = {}
        self._clock: dict[str, float] = {}
        self._due: dict[str, list[tuple[float, str]]] = {}  # heap of (evaluable time, patient)
        self._dirty: set[str] = set()
        # trial -> a number that changes whenever one of its courses is set (unique across
        # monitors: what is derived from the courses is current while it stays the same)
        self.version: dict[str, int] = {}

    def load(self, records: Iterable[PatientRecord]) -> None:
        """Rebuild the courses from stored records (worker start-up, other workers' patients).

        A record older than the one a course already comes from (fewer accepted events: the
        stored version of a patient whose newer record is still on its way to the broker) is
        passed over: the course never goes back. Each record costs O(log n): the trial's
        clock and heap of evaluable times take the loaded courses only."""
        for record in records:
            trial_id, patient = record.trial_id, record.patient_id
            arrivals = self._arrivals.setdefault(trial_id, {})
            if record.arrivals < arrivals.get(patient, 0):
                continue
            arrivals[patient] = record.arrivals
            course = dlt_course(record, self.config)
            if course is None:
                continue
            trial = self.courses.setdefault(trial_id, {})
            trial[patient] = course
            self._dirty.add(trial_id)  # the next event re-checks the boundary
            self.version[trial_id] = next(_VERSIONS)
            self._clock[trial_id] = max(self._clock.get(trial_id, -math.inf), course.last_event)
            at = course.evaluable_from(self.config)
            if at is not None:  # an earlier entry of the patient is passed over when popped
                heap = self._due.setdefault(trial_id, [])
                heapq.heappush(heap, (at, patient))
                if len(heap) > 2 * len(trial) + 64:
                    self._rebuild_due(trial_id)

    def _rebuild_due(self, trial_id: str) -> None:
        """The trial's heap of evaluable times from its current courses only."""
        self._due[trial_id] = [
            (at, patient)
            for patient, course in self.courses[trial_id].items()
            if (at := course.evaluable_from(self.config)) is not None
        ]
        heapq.heapify(self._due[trial_id])

    def observe(
        self, record: PatientRecord, event: Event, detected_at: datetime | None = None
    ) -> list[AlertRaised]:
        """Re-evaluate the record's trial after `event` was applied to `record`."""
        trial_id, patient = record.trial_id, record.patient_id
        self._arrivals.setdefault(trial_id, {})[patient] = record.arrivals
        trial = self.courses.setdefault(trial_id, {})
        old = trial.get(patient)
        course = self._course(record, event, old)
        if course is None:
            return []  # not infused: not part of the monitoring
        trial[patient] = course
        self.version[trial_id] = next(_VERSIONS)
        clock = self._clock[trial_id] = max(self._clock.get(trial_id, -math.inf), course.last_event)
        moved = False
        if old is None or not _same_facts(old, course):
            at = course.evaluable_from(self.config)
            if at is not None:
                heapq.heappush(self._due.setdefault(trial_id, []), (at, patient))
            was = old.evaluable_from(self.config) if old is not None else None
            moved = any(t is not None and t <= clock for t in (at, was))
        passed = self._pass_due(trial_id, trial, clock)
        if not (moved or passed or trial_id in self._dirty):
            return []
        self._dirty.discard(trial_id)
        fired = self.fired.get(trial_id, 0)
        crossing = evaluate_toxicity_boundary(trial.values(), self.config, fired)
        if crossing is None:
            return []
        self.fired[trial_id] = crossing.level
        return [raise_alert(trial_id, None, crossing, event, detected_at)]

    def _pass_due(self, trial_id: str, trial: dict[str, DltCourse], clock: float) -> bool:
        """Pop the evaluable times the clock has reached; whether one was still current."""
        heap, passed = self._due.get(trial_id), False
        while heap and heap[0][0] <= clock:
            at, patient = heapq.heappop(heap)
            course = trial.get(patient)
            passed |= course is not None and course.evaluable_from(self.config) == at
        return passed

    def _course(
        self, record: PatientRecord, event: Event, old: DltCourse | None
    ) -> DltCourse | None:
        if old is not None and event.type in ("lab", "observation"):  # only the clock moves
            return replace(old, last_event=max(old.last_event, event.occurred_at.timestamp()))
        return dlt_course(record, self.config)


def _same_facts(a: DltCourse, b: DltCourse) -> bool:
    return (a.t0, a.dlt_at, a.follow_up_ended) == (b.t0, b.dlt_at, b.follow_up_ended)
