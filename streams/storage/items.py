"""What the stream hands the storage writer: one small dataclass per row kind.

`AlertRaised` (cartwatch.alerts.model) is accepted as it is; the rest are built here from the
domain objects, so the worker never shapes database rows itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cartwatch.alerts.model import AlertRaised
from cartwatch.models.events import AdverseEvent
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.storage.engine import now


@dataclass(frozen=True, slots=True)
class PatientSnapshot:
    """A patient's record after `events_accepted` accepted events."""

    trial_id: str
    patient_id: str
    record: dict
    events_accepted: int
    updated_at: datetime = field(default_factory=now)

    @classmethod
    def of(cls, record: PatientRecord) -> PatientSnapshot:
        """The snapshot of a record as it stands now."""
        return cls(record.trial_id, record.patient_id, record.to_dict(), record.arrivals)


@dataclass(frozen=True, slots=True)
class AdverseEventReport:
    """One accepted `adverse_event` message (a report, new or updated)."""

    event_id: str
    trial_id: str
    patient_id: str
    ae_id: str
    term: str
    grade: int
    onset_at: datetime
    resolved_at: datetime | None
    status: str
    treatments: tuple[str, ...]
    occurred_at: datetime

    @classmethod
    def of(cls, event: AdverseEvent) -> AdverseEventReport:
        """The row of a validated adverse-event message."""
        return cls(
            event.event_id,
            event.trial_id,
            event.patient_id,
            event.ae_id,
            event.term,
            event.grade,
            event.onset_at,
            event.resolved_at,
            event.status,
            tuple(event.treatments),
            event.occurred_at,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that was not processed: original key and bytes, where from, and why."""

    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes | None  # None: a tombstone
    reasons: list[str]
    received_at: datetime = field(default_factory=now)


StorageItem = PatientSnapshot | AdverseEventReport | AlertRaised | DeadLetter
