"""The rows of a patient's course table: every sign, lab, grade and milestone in time order,
worded for a physician, with abnormal values flagged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cartwatch.models.astct import FEVER_C, HYPOTENSION_BELOW_MMHG, icans_domain_grade
from cartwatch.models.course import PatientCourse
from cartwatch.models.outcomes import DAY
from cartwatch.streams.charts.panels import AlertMark
from cartwatch.streams.http.desk.pages import number

ANALYTES = {
    "IL6": ("IL-6", "pg/mL"),
    "CRP": ("CRP", "mg/L"),
    "FERRITIN": ("Ferritin", "ng/mL"),
    "IFNG": ("IFN-γ", "pg/mL"),
    "BM_BLASTS": ("Marrow blasts", "%"),
    "PB_BLASTS": ("Blood blasts", "%"),
    "MRD": ("MRD (flow)", "%"),
}


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: when (day since t0 and the instant), what kind, what, and
    `flag` ('' | 'abnormal' | 'info' | 'warning' | 'critical') for its colour."""

    day: float
    at: float
    kind: str
    text: str
    flag: str = ""


def course_rows(course: PatientCourse, alerts: Sequence[AlertMark]) -> list[Row]:
    """The course's rows, newest first: what happened last is what a physician reads first."""
    rows = [*_signs(course), *_labs(course), *_grades(course), *_alerts(alerts)]
    rows += [Row(d, 0, "milestone", what.capitalize(), "info") for d, what in course.milestones]
    rows = [Row(r.day, course.t0 + r.day * DAY, r.kind, r.text, r.flag) for r in rows]
    return sorted(rows, key=lambda r: (r.day, r.kind == "milestone"), reverse=True)


def _signs(course: PatientCourse) -> Iterator[Row]:
    for day, value in course.signs["temperature_c"]:
        yield Row(day, 0, "sign", f"Temperature {number(value)} °C", _flag(value >= FEVER_C))
    for day, value in course.signs["systolic_bp_mmhg"]:
        low = value < HYPOTENSION_BELOW_MMHG
        yield Row(day, 0, "sign", f"Systolic BP {number(value)} mmHg", _flag(low))
    for day, value in course.signs["vasopressors"]:
        yield Row(day, 0, "sign", f"Vasopressors running: {number(value)}", _flag(value > 0))
    for day, device, flow in course.oxygen:
        litres = f", {number(flow)} L/min" if flow is not None else ""
        yield Row(
            day,
            0,
            "sign",
            f"Oxygen: {device.replace('_', ' ')}{litres}",
            _flag(device != "room_air"),
        )
    for day, value in course.signs["ice_score"]:
        yield Row(day, 0, "neuro", f"ICE score {number(value)}/10", _flag(value < 10))
    for day, state in course.consciousness:
        grade = icans_domain_grade("consciousness", state)
        yield Row(day, 0, "neuro", f"Consciousness: {state.replace('_', ' ')}", _flag(grade > 0))
    for day, code, value in course.other_observations:
        yield Row(day, 0, "observation", f"{code.replace('_', ' ').capitalize()}: {_said(value)}")


def _labs(course: PatientCourse) -> Iterator[Row]:
    for analyte, points in course.markers.items():
        name, unit = ANALYTES[analyte]
        for day, value in points:
            yield Row(day, 0, "lab", f"{name} {number(value, 2)} {unit}")
    for a in course.assessments:
        name, unit = ANALYTES[a.analyte]
        finding = f" — {a.finding}" if a.finding else ""
        flag = "critical" if a.finding == "relapse" else "info" if a.finding else ""
        yield Row(a.day, 0, "response", f"{name} {number(a.value, 4)}{unit}{finding}", flag)


def _grades(course: PatientCourse) -> Iterator[Row]:
    for e in course.episodes:
        severity = "critical" if e.grade >= 3 else "warning" if e.grade == 2 else ""
        yield Row(e.onset, 0, "adverse event", f"{e.term} grade {e.grade} (onset)", severity)
        if e.resolved is not None:
            yield Row(e.resolved, 0, "adverse event", f"{e.term} grade {e.grade} resolved")


def _alerts(alerts: Sequence[AlertMark]) -> Iterator[Row]:
    for a in alerts:
        yield Row(
            a.day,
            0,
            "alert",
            f"{a.severity.capitalize()} alert: {a.rule}, level {a.level}",
            a.severity,
        )


def _flag(abnormal: bool) -> str:
    return "abnormal" if abnormal else ""


def _said(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("_", " ")
