"""Threshold rules of CONTRACT section 4, as pure functions over a patient's record."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.model import Severity
from models.outcomes import counted_toxicities, worst_grade
from models.patient import PatientRecord


@dataclass(frozen=True, slots=True)
class Crossing:
    """A rule reaching a new level for one patient; the engine turns it into an alert."""

    rule: str
    level: int
    value: float
    threshold: float
    severity: Severity
    message: str


@dataclass(frozen=True, slots=True)
class RuleThresholds:
    """Configurable thresholds; defaults are the contract's."""

    crs_grade_min: int = 2  # CONTRACT 4: crs_grade fires from grade 2
    icans_grade_min: int = 1  # CONTRACT 4: icans_grade fires from grade 1


def _grade_severity(level: int, warning_from: int) -> Severity:
    # CONTRACT 4: grade 3-5 critical for both; CRS 2 and ICANS 1-2 warning.
    if level >= 3:
        return "critical"
    return "warning" if level >= warning_from else "info"


def _evaluate_grade(
    record: PatientRecord, rule: str, term: str, minimum: int, warning_from: int
) -> Crossing | None:
    if not record.infusions:
        return None
    grade = worst_grade(counted_toxicities(record, min(record.infusions), None), term)
    if grade < minimum or grade <= record.alerted.get(rule, 0):
        return None
    return Crossing(
        rule=rule,
        level=grade,
        value=grade,
        threshold=minimum,
        severity=_grade_severity(grade, warning_from),
        message=f"{term} reached ASTCT grade {grade} (alert threshold: grade {minimum}).",
    )


def evaluate_crs_grade(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`crs_grade`: the patient's CRS worst grade reaches a new level at or above the minimum."""
    return _evaluate_grade(record, "crs_grade", "CRS", thresholds.crs_grade_min, 2)


def evaluate_icans_grade(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`icans_grade`: the ICANS worst grade reaches a new level at or above the minimum."""
    return _evaluate_grade(record, "icans_grade", "ICANS", thresholds.icans_grade_min, 1)


PATIENT_RULES = (evaluate_crs_grade, evaluate_icans_grade)
