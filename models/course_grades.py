"""CRS and ICANS grades over a patient's course, as step lines in days since t0.

Reported grades come from the counted adverse events (CONTRACT 2, models/outcomes.py);
derived grades from the bedside observations, graded by models/astct.py exactly as the
`crs_derived` and `icans_derived` rules grade them, so the highest step of a derived line
is the grade those rules alert on. A derived line shows the present: signs count within a
window (24 h by default, the CRS window of the rules) and the line falls once they leave it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cartwatch.models.astct import (
    CRS_CODES,
    DEFAULT_CRS_WINDOW_S,
    ICANS_CODES,
    icans_domain_grade,
    peak_crs_grade,
)
from cartwatch.models.outcomes import DAY, Toxicity
from cartwatch.models.patient import ObservationValue

Point = tuple[float, float]  # (day, grade)
Observed = Mapping[str, Sequence[tuple[float, ObservationValue]]]  # code -> [(t, value)]


def steps(values: Sequence[Point], end: float) -> list[Point]:
    """Step points from (day, grade) evaluations in time order: changes only, the last
    grade held until `end`."""
    points: list[Point] = []
    for at, grade in values:
        if not points or grade != points[-1][1]:
            points.append((at, grade))
    if points and points[-1][0] < end:
        points.append((end, points[-1][1]))
    return points


def reported_grade_steps(
    toxicities: Sequence[Toxicity], term: str, t0: float, as_of: float
) -> list[Point]:
    """The highest grade among the term's events open at each instant (onset to resolution)."""
    episodes = [t for t in toxicities if t.term == term]
    resolutions = {t.resolved for t in episodes if t.resolved is not None}
    edges = sorted({t0, *(t.onset for t in episodes)} | resolutions)

    def grade_at(at: float) -> float:
        open_ = [
            t.grade for t in episodes if t.onset <= at and (t.resolved is None or at < t.resolved)
        ]
        return float(max(open_, default=0))

    return steps(
        [((at - t0) / DAY, grade_at(at)) for at in edges if at <= as_of], (as_of - t0) / DAY
    )


def derived_crs_steps(observed: Observed, t0: float, as_of: float, window_s: float) -> list[Point]:
    """The ASTCT CRS grade met by the signs within the window up to each moment, evaluated at
    every CRS observation and just after each sign leaves the window."""
    marks = sorted((t, c, v) for c in CRS_CODES for t, v in observed.get(c, ()) if t0 <= t <= as_of)
    given = [t for t, v in observed.get("anti_cytokine_given", ()) if v and t0 <= t <= as_of]
    treated = min(given, default=None)
    # 1 s after a sign leaves the window (both ends count, models/astct.py): the drop shows
    # where it happens
    moments = sorted({t for t, _, _ in marks} | {t + window_s + 1 for t, _, _ in marks})
    grades = [(0.0, 0.0)]
    for at in (m for m in moments if m <= as_of):
        window = [m for m in marks if at - window_s <= m[0] <= at]
        grades.append(((at - t0) / DAY, float(peak_crs_grade(window, treated, window_s))))
    return steps(grades, (as_of - t0) / DAY)


def derived_icans_steps(
    observed: Observed, t0: float, as_of: float, window_s: float = DEFAULT_CRS_WINDOW_S
) -> list[Point]:
    """The most severe ICANS domain (ASTCT Table 5) among each domain's latest observation
    within the window, evaluated at every observation and just after each one expires:
    a neurological finding not seen again for a day no longer stands for the present."""
    rows = sorted(
        (t, c, icans_domain_grade(c, v))
        for c in ICANS_CODES
        for t, v in observed.get(c, ())
        if t0 <= t <= as_of
    )
    moments = sorted({t for t, _, _ in rows} | {t + window_s + 1 for t, _, _ in rows})
    grades = [(0.0, 0.0)]
    for at in (m for m in moments if m <= as_of):
        latest: dict[str, tuple[float, int]] = {}
        for t, code, grade in rows:
            if at - window_s <= t <= at:
                latest[code] = (t, grade)  # rows are in time order: the last one stays
        current = max((grade for _, grade in latest.values()), default=0)
        grades.append(((at - t0) / DAY, float(current)))
    return steps(grades, (as_of - t0) / DAY)
