"""The panels of the patient course chart, one function each: a sign as a line, the time on
vasopressors, oxygen support, the cytokines on a log scale, the grades and the alerts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from cartwatch.models.astct import hypoxia_grade
from cartwatch.models.course import MARKERS, PatientCourse
from cartwatch.streams.charts.style import GRID, MUTED, SERIES, SEVERITY

# Readings further apart than this are not joined by a line.
GAP_DAYS = 3.0
DEVICE_SHORT = {
    "room_air": "RA",
    "blow_by": "BB",
    "low_flow_cannula": "LFNC",
    "high_flow_cannula": "HFNC",
    "facemask": "FM",
    "nonrebreather": "NRB",
    "venturi": "VM",
    "cpap": "CPAP",
    "bipap": "BiPAP",
    "mechanical_ventilation": "MV",
}
MARKER_NAMES = {
    "IL6": "IL-6 pg/mL",
    "CRP": "CRP mg/L",
    "FERRITIN": "Ferritin ng/mL",
    "IFNG": "IFN-γ pg/mL",
}


@dataclass(frozen=True, slots=True)
class AlertMark:
    """An alert on the course: when (days since t0), how severe, which rule and level."""

    day: float
    severity: str
    rule: str
    level: int


def empty(ax: Axes, label: str, keep_ticks: bool = False) -> None:
    ax.text(
        0.5,
        0.5,
        f"no {label} recorded",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color=MUTED,
        fontsize=9,
    )
    if not keep_ticks:
        ax.set_yticks([])


def line(
    ax: Axes, points: Sequence[tuple[float, float]], colour: str, label: str, what: str
) -> None:
    ax.set_ylabel(label, fontsize=9)
    if not points:
        empty(ax, what)
        return
    ax.plot(*with_gaps(points), color=colour, lw=1.6, marker="o", ms=3.5)


def with_gaps(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Days and values, the line broken (a NaN) where readings are more than GAP_DAYS apart:
    a straight line across a week without readings would claim values nobody measured."""
    days: list[float] = []
    values: list[float] = []
    for day, value in points:
        if days and day - days[-1] > GAP_DAYS:
            days.append((day + days[-1]) / 2)
            values.append(math.nan)
        days.append(day)
        values.append(value)
    return days, values


def vasopressors(ax: Axes, points: Sequence[tuple[float, float]], end: float) -> None:
    """Shade the time on vasopressors (darker on two or more), each period until the next
    observation of the count."""
    if not points:
        return
    for (day, n), nxt in zip(points, [*(d for d, _ in points[1:]), end], strict=True):
        if n > 0:
            ax.axvspan(day, nxt, color=SERIES["bp"], alpha=0.10 if n == 1 else 0.22, lw=0)
    if any(n > 0 for _, n in points):
        ax.text(
            0.995,
            0.06,
            "shaded: on vasopressors",
            transform=ax.transAxes,
            ha="right",
            fontsize=8,
            color=SERIES["bp"],
        )


def oxygen(ax: Axes, points: Sequence[tuple[float, str, float | None]]) -> None:
    """Oxygen support by the hypoxia grade it stands for (ASTCT Table 2), labelled with the
    device and flow: a BiPAP without a flow is not less support than 10 L by cannula."""
    ax.set_ylabel("O₂ support", fontsize=9)
    ax.set_ylim(-0.4, 4.9)
    ax.set_yticks([0, 2, 3, 4], ["air", "≤6 L", ">6 L, mask", "CPAP+"], fontsize=8)
    if not points:
        empty(ax, "oxygen", keep_ticks=True)
        return
    days = [d for d, _, _ in points]
    grades = [hypoxia_grade(device, flow) for _, device, flow in points]
    ax.step(days, grades, where="post", color=SERIES["oxygen"], lw=1.6)
    ax.plot(days, grades, "o", color=SERIES["oxygen"], ms=3.5)
    previous = None
    for day, device, flow in points:
        label = DEVICE_SHORT.get(device, device) + (f" {flow:g} L" if flow else "")
        if label != previous:  # a label where the support changes, not at every check
            ax.annotate(
                label,
                (day, hypoxia_grade(device, flow)),
                xytext=(2, 5),
                textcoords="offset points",
                fontsize=8,
                color=SERIES["oxygen"],
            )
        previous = label


def markers(ax: Axes, course: PatientCourse) -> None:
    ax.set_ylabel("cytokines (log)", fontsize=9)
    drawn = False
    for analyte in MARKERS:
        points = [(d, v) for d, v in course.markers[analyte] if v > 0]
        if points:
            days, values = zip(*points, strict=True)
            ax.plot(
                days,
                values,
                color=SERIES[analyte],
                lw=1.4,
                marker="o",
                ms=3,
                label=MARKER_NAMES[analyte],
            )
            drawn = True
    if not drawn:
        empty(ax, "cytokine")
        return
    ax.set_yscale("log")
    # Plain numbers (10, 100, 1000) rather than mathtext powers, and no minor ticks: the
    # same reading at a fraction of the drawing time.
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=4))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def grades(ax: Axes, course: PatientCourse, alerts: Sequence[AlertMark]) -> None:
    ax.set_ylabel("grade", fontsize=9)
    ax.set_ylim(-0.3, 5.9)
    ax.set_yticks(range(6))
    for term in ("CRS", "ICANS"):
        for kind, style in (("reported", "-"), ("derived", ":")):
            steps = (course.reported_grades if kind == "reported" else course.derived_grades)[term]
            if steps:
                days, grades = zip(*steps, strict=True)
                ax.step(
                    days,
                    grades,
                    where="post",
                    color=SERIES[term],
                    ls=style,
                    lw=2.0 if kind == "reported" else 1.4,
                    label=f"{term} {kind}",
                )
    for severity in ("info", "warning", "critical"):
        marks = [a for a in alerts if a.severity == severity]
        if marks:
            ax.plot(
                [a.day for a in marks],
                [5.5] * len(marks),
                "v",
                color=SEVERITY[severity],
                ms=7,
                label=f"{severity} alert",
                ls="none",
            )
    ax.axhline(5.5, color=GRID, lw=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
