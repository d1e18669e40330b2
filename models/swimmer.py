"""Every infused patient's course on one time line, for the DMC report's swimmer plot.

Times are months since the patient's first infusion (CONTRACT 2: months = days / 30.4375);
CRS and ICANS episodes are in days, as the first weeks are where they happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from cartwatch.models.cohort import DAYS_PER_MONTH
from cartwatch.models.outcomes import DAY, PatientOutcome, Response, derive_outcome
from cartwatch.models.patient import PatientRecord

GRADED = ("CRS", "ICANS")
Ending = Literal["death", "withdrawn", "lost_to_follow_up", "ongoing"]


@dataclass(frozen=True, slots=True)
class Episode:
    """One counted CRS or ICANS event: days since t0; `end` None while unresolved."""

    term: str
    grade: int
    onset: float
    end: float | None


@dataclass(frozen=True, slots=True)
class Lane:
    """One patient's lane: follow-up, response, relapse, how follow-up ended, episodes."""

    patient_id: str
    months: float  # follow-up time (CONTRACT 2)
    best_response: Response | None
    remission_at: float | None
    relapse_at: float | None
    death_at: float | None
    ending: Ending
    episodes: tuple[Episode, ...]


def swimmer_lanes(records: Iterable[PatientRecord], as_of: float) -> list[Lane]:
    """The infused patients' lanes, longest follow-up first (ties by patient id)."""
    lanes = []
    for record in records:
        outcome = derive_outcome(record, as_of)
        if outcome is not None:
            lanes.append(_lane(record, outcome, as_of))
    return sorted(lanes, key=lambda lane: (-lane.months, lane.patient_id))


def _lane(record: PatientRecord, outcome: PatientOutcome, as_of: float) -> Lane:
    def months(t: float | None) -> float | None:
        return None if t is None else (t - outcome.t0) / DAY / DAYS_PER_MONTH

    return Lane(
        patient_id=record.patient_id,
        months=outcome.follow_up_days / DAYS_PER_MONTH,
        best_response=outcome.best_response,
        remission_at=months(outcome.remission_onset),
        relapse_at=months(outcome.relapse_at),
        death_at=months(outcome.death_at),
        ending=_ending(record, as_of),
        episodes=tuple(
            Episode(
                tox.term,
                tox.grade,
                (tox.onset - outcome.t0) / DAY,
                None if tox.resolved is None else (tox.resolved - outcome.t0) / DAY,
            )
            for tox in sorted(outcome.toxicities, key=lambda t: (t.onset, t.term))
            if tox.term in GRADED
        ),
    )


def _ending(record: PatientRecord, as_of: float) -> Ending:
    """How follow-up ended: its earliest disposition (death first at a tie), or ongoing."""
    ends = sorted((t, s) for t, s in record.dispositions if t <= as_of)
    return ends[0][1] if ends else "ongoing"  # type: ignore[return-value]
