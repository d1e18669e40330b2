"""The patient course chart: signs, oxygen, ICE score, cytokines (log scale) and the CRS and
ICANS grades over days since the first infusion, with the alerts as markers."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.ticker import (
    MaxNLocator,
    MultipleLocator,
)

from cartwatch.models.astct import FEVER_C, HYPOTENSION_BELOW_MMHG
from cartwatch.models.course import PatientCourse
from cartwatch.streams.charts import panels
from cartwatch.streams.charts.panels import AlertMark
from cartwatch.streams.charts.style import (
    INK,
    MUTED,
    SERIES,
    new_figure,
    one_at_a_time,
    to_svg,
)

# The first month is when CRS and ICANS happen (median onsets of days 2-7); later signs or
# alerts widen the window.
EARLY_DAYS = 28.0


@one_at_a_time
def course_chart(course: PatientCourse, alerts: Sequence[AlertMark]) -> str:
    """The course as one SVG of six panels sharing the day axis (day 0: infusion)."""
    figure = new_figure(11, 9.2)
    axes = figure.subplots(6, 1, sharex=True, height_ratios=[1, 1, 1, 0.9, 1.3, 1.2])
    figure.subplots_adjust(left=0.09, right=0.86, top=0.97, bottom=0.06, hspace=0.28)
    temperature, pressure, oxygen, ice, markers, grades = axes
    panels.line(
        temperature,
        course.signs["temperature_c"],
        SERIES["temperature"],
        "Temperature °C",
        "temperature",
    )
    temperature.axhline(FEVER_C, color=SERIES["temperature"], lw=0.8, ls="--", alpha=0.6)
    panels.line(
        pressure,
        course.signs["systolic_bp_mmhg"],
        SERIES["bp"],
        "Systolic BP mmHg",
        "blood pressure",
    )
    pressure.axhline(HYPOTENSION_BELOW_MMHG, color=SERIES["bp"], lw=0.8, ls="--", alpha=0.6)
    panels.vasopressors(pressure, course.signs["vasopressors"], course.day)
    panels.oxygen(oxygen, course.oxygen)
    panels.line(ice, course.signs["ice_score"], SERIES["ice"], "ICE score", "ICE score")
    ice.set_ylim(-0.5, 10.5)
    ice.set_yticks([0, 3, 7, 10])  # ASTCT Table 5: 7-9 grade 1, 3-6 grade 2, 0-2 grade 3
    panels.markers(markers, course)
    panels.grades(grades, course, alerts)
    low, high = _window(course, alerts)
    for ax in axes:
        ax.set_xlim(low, high)
        # Few ticks: every tick is an object matplotlib builds and draws (most of the time
        # a chart takes); weeks on the day axis, three or four values up the side.
        ax.xaxis.set_major_locator(MultipleLocator(_day_step(high - low)))
        if ax in (temperature, pressure):
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.axvline(0, color=INK, lw=1.0, alpha=0.7)
        for day, what in course.milestones:
            if 0 < day <= high and what != "infusion":
                ax.axvline(day, color=MUTED, lw=0.8, ls=":")
    temperature.annotate(
        "infusion",
        (0, 1),
        xycoords=("data", "axes fraction"),
        xytext=(3, -2),
        textcoords="offset points",
        va="top",
        fontsize=8,
        color=INK,
    )
    grades.set_xlabel("days since first infusion")
    return to_svg(figure, "Patient course: signs, cytokines and grades by day since infusion")


def _day_step(span: float) -> int:
    """Days between ticks: each day in the first week, then weeks, then four weeks."""
    return 1 if span <= 10 else 2 if span <= 21 else 7 if span <= 63 else 28


def _window(course: PatientCourse, alerts: Sequence[AlertMark]) -> tuple[float, float]:
    days = [d for series in course.signs.values() for d, _ in series]
    days += [d for d, _, _ in course.oxygen] + [d for s in course.markers.values() for d, _ in s]
    days += [e.onset for e in course.episodes] + [a.day for a in alerts]
    first = min([0.0, *days])
    last = max([EARLY_DAYS, *days]) if course.day > EARLY_DAYS else course.day
    return first - 0.5, min(last, course.day) + 0.5
