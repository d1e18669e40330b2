"""A patient's course around the first infusion, as of an instant: what the safety desk draws.

Times are days since t0, the first infusion (CONTRACT 2). Signs and cytokines are kept from
7 days before t0 (the baseline window of the cytokine early warnings) up to `as_of`;
response labs from any time up to `as_of`. The grades and responses reuse the contract's
definitions (models/outcomes.py) and the ASTCT grading (models/astct.py), so the course
agrees with the alerts and the cohort figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cartwatch.models.astct import DEFAULT_CRS_WINDOW_S
from cartwatch.models.course_grades import (
    derived_crs_steps,
    derived_icans_steps,
    reported_grade_steps,
)
from cartwatch.models.outcomes import (
    BLOOD_RELAPSE_AT,
    DAY,
    MARROW_RELAPSE_AT,
    MARROW_REMISSION_BELOW,
    MRD_NEGATIVE_BELOW,
    PatientOutcome,
    Toxicity,
    derive_outcome,
    response_at,
)
from cartwatch.models.patient import ObservationValue, PatientRecord

# The numeric bedside signs the CRS and ICANS rules read.
SIGNS = ("temperature_c", "systolic_bp_mmhg", "vasopressors", "ice_score")
# The cytokines and markers the early warnings read.
MARKERS = ("IL6", "CRP", "FERRITIN", "IFNG")
RESPONSE_LABS = ("BM_BLASTS", "PB_BLASTS", "MRD")
GRADED = ("CRS", "ICANS")
# alerts/early_warnings.py: the baseline is drawn in the 7 days up to the infusion.
BASELINE_DAYS = 7.0

Point = tuple[float, float]  # (day, value)
ToDay = Callable[[float], float]  # POSIX seconds -> days since t0


@dataclass(frozen=True, slots=True)
class Episode:
    """One counted adverse event (CONTRACT 2: worst grade of its reports), in days."""

    term: str
    grade: int
    onset: float
    resolved: float | None


@dataclass(frozen=True, slots=True)
class Assessment:
    """A response lab and what the contract makes of it: CR, CRi, relapse, MRD-negative or
    MRD-positive (None: a baseline, or after relapse)."""

    day: float
    analyte: str
    value: float
    finding: str | None


@dataclass(frozen=True, slots=True)
class PatientCourse:
    """The course of one infused patient as of `as_of` (POSIX seconds)."""

    t0: float
    as_of: float
    outcome: PatientOutcome
    signs: dict[str, list[Point]]
    oxygen: list[tuple[float, str, float | None]]  # (day, device, flow L/min)
    consciousness: list[tuple[float, str]]
    other_observations: list[tuple[float, str, ObservationValue]]  # seizure, edema, ...
    markers: dict[str, list[Point]]
    episodes: list[Episode]
    reported_grades: dict[str, list[Point]]  # step points: the grade in effect from each day
    derived_grades: dict[str, list[Point]]  # step points: the ASTCT grade the signs meet
    assessments: list[Assessment]
    milestones: list[tuple[float, str]] = field(default_factory=list)

    @property
    def day(self) -> float:
        """Days from t0 to `as_of`."""
        return (self.as_of - self.t0) / DAY


def patient_course(
    record: PatientRecord, as_of: float, crs_window_s: float = DEFAULT_CRS_WINDOW_S
) -> PatientCourse | None:
    """The patient's course as of `as_of`; None when not infused by then."""
    outcome = derive_outcome(record, as_of)
    if outcome is None:
        return None
    t0 = outcome.t0

    def day(t: float) -> float:
        return (t - t0) / DAY

    start = t0 - BASELINE_DAYS * DAY
    observed = {
        code: sorted((t, v) for t, v in rows if start <= t <= as_of)
        for code, rows in record.observations.items()
    }
    labs = {a: sorted(r for r in rows if r[0] <= as_of) for a, rows in record.labs.items()}
    return PatientCourse(
        t0=t0,
        as_of=as_of,
        outcome=outcome,
        signs={c: [(day(t), float(v)) for t, v in observed.get(c, [])] for c in SIGNS},
        oxygen=[(day(t), v[0], v[1]) for t, v in observed.get("oxygen", [])],  # type: ignore[index]
        consciousness=[(day(t), str(v)) for t, v in observed.get("consciousness", [])],
        other_observations=sorted(
            (day(t), code, v)
            for code, rows in observed.items()
            if code not in (*SIGNS, "oxygen", "consciousness")
            for t, v in rows
        ),
        markers={a: [(day(t), v) for t, v in labs.get(a, []) if t >= start] for a in MARKERS},
        episodes=[_episode(tox, day) for tox in sorted(outcome.toxicities, key=_by_onset)],
        reported_grades={
            term: reported_grade_steps(outcome.toxicities, term, t0, as_of) for term in GRADED
        },
        derived_grades={
            "CRS": derived_crs_steps(observed, t0, as_of, crs_window_s),
            "ICANS": derived_icans_steps(observed, t0, as_of, crs_window_s),
        },
        assessments=_assessments(labs, outcome, day),
        milestones=_milestones(record, outcome, as_of, day),
    )


def _by_onset(tox: Toxicity) -> tuple[float, str]:
    return tox.onset, tox.term


def _episode(tox: Toxicity, day: ToDay) -> Episode:
    resolved = day(tox.resolved) if tox.resolved is not None else None
    return Episode(tox.term, tox.grade, day(tox.onset), resolved)


def _assessments(labs: dict, outcome: PatientOutcome, day: ToDay) -> list[Assessment]:
    out = []
    for analyte in RESPONSE_LABS:
        for t, value in labs.get(analyte, []):
            out.append(
                Assessment(day(t), analyte, value, _finding(analyte, t, value, labs, outcome))
            )
    return sorted(out, key=lambda a: (a.day, RESPONSE_LABS.index(a.analyte)))


def _finding(
    analyte: str, t: float, value: float, labs: dict, outcome: PatientOutcome
) -> str | None:
    onset, relapse = outcome.remission_onset, outcome.relapse_at
    relapse_at_least = {"BM_BLASTS": MARROW_RELAPSE_AT, "PB_BLASTS": BLOOD_RELAPSE_AT}
    if t == relapse and value >= relapse_at_least.get(analyte, float("inf")):
        return "relapse"
    before_relapse = relapse is None or t < relapse
    if (
        analyte == "BM_BLASTS"
        and t > outcome.t0
        and before_relapse
        and value < MARROW_REMISSION_BELOW
    ):
        return response_at(t, labs)
    if analyte == "MRD" and onset is not None and onset <= t and before_relapse:
        return "MRD-negative" if value < MRD_NEGATIVE_BELOW else "MRD-positive"
    return None


def _milestones(
    record: PatientRecord, outcome: PatientOutcome, as_of: float, day: ToDay
) -> list[tuple[float, str]]:
    events = [(t, "infusion") for t in record.infusions if t <= as_of]
    if outcome.remission_onset is not None:
        events.append((outcome.remission_onset, f"remission ({outcome.best_response})"))
    if outcome.relapse_at is not None:
        events.append((outcome.relapse_at, "relapse"))
    firsts: dict[str, float] = {}
    for t, status in sorted(record.dispositions):
        if t <= as_of:
            firsts.setdefault(status, t)
    events += [(t, status.replace("_", " ")) for status, t in firsts.items()]
    return sorted((day(t), what) for t, what in events)
