"""A patient's state as the API shows it: the derived figures, readable timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

from cartwatch.models.outcomes import DAY, counted_toxicities, derive_outcome, worst_grade
from cartwatch.models.patient import PatientRecord


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat() if t is not None else None


def patient_summary(record: PatientRecord, as_of: float) -> dict:
    """The patient's derived state as of `as_of` (POSIX seconds)."""
    outcome = derive_outcome(record, as_of)
    base = {
        "trial_id": record.trial_id,
        "patient_id": record.patient_id,
        "as_of": _iso(as_of),
        "events_accepted": len(record.seen),
        "infused": outcome is not None,
        "alerted_levels": dict(record.alerted),
    }
    if outcome is None:
        return base
    toxicities = counted_toxicities(record, outcome.t0, as_of)
    return base | {
        "t0": _iso(outcome.t0),
        "day": (as_of - outcome.t0) / DAY,
        "remission_onset": _iso(outcome.remission_onset),
        "best_response": outcome.best_response,
        "mrd_negative": outcome.mrd_negative,
        "relapse_at": _iso(outcome.relapse_at),
        "death_at": _iso(outcome.death_at),
        "duration_of_remission_days": outcome.dor_days,
        "duration_of_remission_event": outcome.dor_event if outcome.dor_days is not None else None,
        "follow_up_days": outcome.follow_up_days,
        "crs_worst_grade": worst_grade(toxicities, "CRS"),
        "icans_worst_grade": worst_grade(toxicities, "ICANS"),
        "toxicities": [
            {
                "term": t.term,
                "grade": t.grade,
                "onset_at": _iso(t.onset),
                "resolved_at": _iso(t.resolved),
            }
            for t in toxicities
        ],
    }
