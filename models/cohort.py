"""Cohort figures of one trial (CONTRACT sections 3 and 5)."""

from __future__ import annotations

from collections.abc import Iterable

from cartwatch.models.outcomes import DAY, PatientOutcome, Toxicity, derive_outcome, worst_grade
from cartwatch.models.patient import PatientRecord
from cartwatch.models.survival import clopper_pearson, km_median, median, reverse_km_median

DAYS_PER_MONTH = 30.4375  # CONTRACT 2: months = days / 30.4375
GRADES = (1, 2, 3, 4, 5)


def trial_report(trial_id: str, outcomes: Iterable[PatientOutcome]) -> dict:
    """The version-1 trial report over the outcomes of the trial's infused patients."""
    pts = list(outcomes)
    n = len(pts)
    responders = [p for p in pts if p.remission_onset is not None]
    in_remission = [p for p in responders if p.relapse_at is None and p.death_at is None]
    return {
        "trial_id": trial_id,
        "n_infused": n,
        "efficacy": {
            "remission": {
                "n": len(responders),
                "rate": _rate(len(responders), n),
                "ci95": _list(clopper_pearson(len(responders), n)),
            },
            "cr": _count(sum(p.best_response == "CR" for p in pts), n),
            "cri": _count(sum(p.best_response == "CRi" for p in pts), n),
            "mrd_negative": {"n": sum(p.mrd_negative for p in pts)},
            "in_remission": {
                "n": len(in_remission),
                "fraction_of_remission": _rate(len(in_remission), len(responders)),
            },
            "relapsed": {"n": sum(p.relapse_at is not None for p in pts)},
            "median_dor_months": _months(
                km_median([p.dor_days for p in responders], [p.dor_event for p in responders])
            ),
            "median_follow_up_months": _months(
                reverse_km_median(
                    [p.follow_up_days for p in pts], [not p.follow_up_event for p in pts]
                )
            ),
        },
        "safety": {
            "crs": _toxicity_summary(pts, "CRS"),
            "icans": _toxicity_summary(pts, "ICANS"),
            "deaths": {"n": sum(p.death_at is not None for p in pts)},
        },
    }


def toxicity_times(pts: list[PatientOutcome], term: str) -> tuple[list[float], list[float]]:
    """Onset days (per patient, the earliest counted onset minus t0) and durations in days
    (per counted event resolved as of the instant) of `term` (CONTRACT 3)."""
    onset_days = [
        (min(t.onset for t in _of(p.toxicities, term)) - p.t0) / DAY
        for p in pts
        if _of(p.toxicities, term)
    ]
    durations = [
        (t.resolved - t.onset) / DAY
        for p in pts
        for t in _of(p.toxicities, term)
        if t.resolved is not None
    ]
    return onset_days, durations


def _toxicity_summary(pts: list[PatientOutcome], term: str) -> dict:
    n = len(pts)
    worst = [worst_grade(p.toxicities, term) for p in pts]
    onset_days, durations = toxicity_times(pts, term)
    any_n = sum(g >= 1 for g in worst)
    severe_n = sum(g >= 3 for g in worst)
    return {
        "any": _count(any_n, n),
        "grade3plus": _count(severe_n, n),
        "by_grade": {str(g): sum(w == g for w in worst) for g in GRADES},
        "median_onset_day": median(onset_days),
        "median_duration_days": median(durations),
    }


def _of(toxicities: list[Toxicity], term: str) -> list[Toxicity]:
    return [t for t in toxicities if t.term == term]


def _count(k: int, n: int) -> dict:
    return {"n": k, "rate": _rate(k, n)}


def _rate(k: int, n: int) -> float | None:
    return k / n if n else None


def _list(pair: tuple[float, float] | None) -> list[float] | None:
    return list(pair) if pair is not None else None


def _months(days: float | None) -> float | None:
    return days / DAYS_PER_MONTH if days is not None else None


def cohort_reports(records: Iterable[PatientRecord], as_of: float | None) -> list[dict]:
    """One trial report per trial seen in `records`, sorted by trial_id."""
    by_trial: dict[str, list[PatientOutcome]] = {}
    add_outcomes(by_trial, records, as_of)
    return [trial_report(trial, by_trial[trial]) for trial in sorted(by_trial)]


def add_outcomes(
    by_trial: dict[str, list[PatientOutcome]], records: Iterable[PatientRecord], as_of: float | None
) -> None:
    """Add the records' outcomes to their trials' lists (a trial seen gets a list, even empty)."""
    for record in records:
        outcomes = by_trial.setdefault(record.trial_id, [])
        outcome = derive_outcome(record, as_of)
        if outcome is not None:
            outcomes.append(outcome)
