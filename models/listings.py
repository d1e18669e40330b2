"""The DMC report's listings: every grade >= 3 adverse event and every death, as of a cut."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cartwatch.models.outcomes import DAY, Response, derive_outcome
from cartwatch.models.patient import PatientRecord

SEVERE_FROM = 3  # CTCAE / ASTCT grade 3: severe


@dataclass(frozen=True, slots=True)
class SevereEvent:
    """A counted adverse event of grade >= 3; days since the patient's first infusion."""

    patient_id: str
    term: str
    grade: int
    onset_at: float
    onset_day: float
    resolved_day: float | None  # None: not resolved as of the cut


@dataclass(frozen=True, slots=True)
class Death:
    """A death of an infused patient: when, and where the patient stood."""

    patient_id: str
    died_at: float
    day: float
    best_response: Response | None
    relapsed: bool


def severe_events(records: Iterable[PatientRecord], as_of: float) -> list[SevereEvent]:
    """Every counted adverse event of grade >= 3, any term, by patient and onset."""
    rows = []
    for record in records:
        outcome = derive_outcome(record, as_of)
        if outcome is None:
            continue
        for tox in outcome.toxicities:
            if tox.grade >= SEVERE_FROM:
                rows.append(
                    SevereEvent(
                        record.patient_id,
                        tox.term,
                        tox.grade,
                        tox.onset,
                        (tox.onset - outcome.t0) / DAY,
                        None if tox.resolved is None else (tox.resolved - outcome.t0) / DAY,
                    )
                )
    return sorted(rows, key=lambda r: (r.patient_id, r.onset_at, r.term))


def deaths(records: Iterable[PatientRecord], as_of: float) -> list[Death]:
    """Every infused patient's death, in the order they happened."""
    rows = []
    for record in records:
        outcome = derive_outcome(record, as_of)
        if outcome is not None and outcome.death_at is not None:
            rows.append(
                Death(
                    record.patient_id,
                    outcome.death_at,
                    (outcome.death_at - outcome.t0) / DAY,
                    outcome.best_response,
                    outcome.relapse_at is not None,
                )
            )
    return sorted(rows, key=lambda d: (d.died_at, d.patient_id))
