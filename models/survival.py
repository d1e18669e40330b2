"""Small statistics: exact binomial intervals, Kaplan-Meier curves and medians (CONTRACT 3)."""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from fractions import Fraction

from scipy.stats import binomtest, norm

# Survival is a product of floats, which can land a hair either side of 0.5 (0.75 * 2/3).
# Near 0.5 the product is recomputed exactly with fractions, so "<= 0.5" is exact.
_NEAR_HALF = 1e-9


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float] | None:
    """Exact two-sided interval for k successes in n trials; None when n is 0."""
    if n == 0:
        return None
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def km_median(times: Sequence[float], events: Sequence[bool]) -> float | None:
    """Kaplan-Meier median: the smallest time with survival <= 0.5; None if not reached.

    At tied times the events are taken before the censorings: a subject censored
    at t is still at risk at t.
    """
    steps: list[tuple[int, int]] = []  # (deaths, at risk) of each event time so far
    survival = 1.0
    for t, deaths, at_risk in _event_times(sorted(zip(times, events, strict=True))):
        steps.append((deaths, at_risk))
        survival *= 1.0 - deaths / at_risk
        if survival < 0.5 - _NEAR_HALF or (survival <= 0.5 + _NEAR_HALF and _exact(steps) <= 0.5):
            return float(t)
    return None


def _event_times(rows: list[tuple[float, bool]]):
    """(time, deaths, at risk) at each distinct time with at least one event."""
    at_risk, i = len(rows), 0
    while i < len(rows):
        t, deaths, leaving = rows[i][0], 0, 0
        while i < len(rows) and rows[i][0] == t:
            deaths += rows[i][1]
            leaving += 1
            i += 1
        if deaths:
            yield t, deaths, at_risk
        at_risk -= leaving


def _exact(steps: list[tuple[int, int]]) -> Fraction:
    survival = Fraction(1)
    for deaths, at_risk in steps:
        survival *= Fraction(at_risk - deaths, at_risk)
    return survival


def km_curve(times: Sequence[float], events: Sequence[bool]) -> list[tuple[float, float]]:
    """Kaplan-Meier step points: (0, 1) then (t, survival from t on) at each event time.

    The same estimator as `km_median` (events before censorings at tied times), so the
    curve first reaches 0.5 at the median.
    """
    points = [(0.0, 1.0)]
    survival = 1.0
    for t, deaths, at_risk in _event_times(sorted(zip(times, events, strict=True))):
        survival *= 1.0 - deaths / at_risk
        points.append((float(t), survival))
    return points


def reverse_km_curve(
    times: Sequence[float], ended_in_death: Sequence[bool]
) -> list[tuple[float, float]]:
    """Reverse Kaplan-Meier curve of follow-up: death censors, everything else is the event."""
    return km_curve(times, [not d for d in ended_in_death])


def survival_at(curve: Sequence[tuple[float, float]], t: float) -> float:
    """The step function of a `km_curve` at time t (right-continuous: the step at t counts)."""
    index = bisect.bisect_right([time for time, _ in curve], t) - 1
    return curve[max(index, 0)][1]


def numbers_at_risk(times: Sequence[float], at: Sequence[float]) -> list[int]:
    """Subjects still at risk at each time of `at`: those whose time is at or after it."""
    ordered = sorted(times)
    return [len(ordered) - bisect.bisect_left(ordered, t) for t in at]


def reverse_km_median(times: Sequence[float], ended_in_death: Sequence[bool]) -> float | None:
    """Median follow-up by reverse Kaplan-Meier: death censors, everything else is the event."""
    return km_median(times, [not d for d in ended_in_death])


def km_median_ci(
    times: Sequence[float], events: Sequence[bool], level: float = 0.95
) -> tuple[float | None, float | None]:
    """Confidence interval of the Kaplan-Meier median (Brookmeyer & Crowley, Biometrics
    1982;38:29-41): the times at which the lower and the upper pointwise limits of S(t) first
    fall to 0.5 or below; None for a limit not reached.

    The pointwise limits are Greenwood's variance on the log(-log S) scale (Kalbfleisch &
    Prentice), the default of SAS PROC LIFETEST and lifelines, whose
    `median_survival_times(kmf.confidence_interval_)` gives the same times
    (tests/unit/test_median_ci.py). Where S reaches 0 both limits are taken as reached;
    lifelines leaves the band undefined (1.0) there.
    """
    z = float(norm.ppf(1 - (1 - level) / 2))
    survival, greenwood = 1.0, 0.0
    lower: float | None = None
    for t, deaths, at_risk in _event_times(sorted(zip(times, events, strict=True))):
        survival *= 1.0 - deaths / at_risk
        if survival <= 0.0:
            return (float(t) if lower is None else lower), float(t)
        greenwood += deaths / (at_risk * (at_risk - deaths))
        low, high = _log_log_limits(survival, greenwood, z)
        if lower is None and low <= 0.5:
            lower = float(t)
        if high <= 0.5:
            return lower, float(t)
    return lower, None


def _log_log_limits(survival: float, greenwood: float, z: float) -> tuple[float, float]:
    """Pointwise limits of S: exp(-exp(log(-log S) -/+ z * sqrt(V) / log S))."""
    if survival >= 1.0:
        return 1.0, 1.0
    log_s = math.log(survival)
    spread = z * math.sqrt(greenwood) / log_s  # negative: log S < 0
    centre = math.log(-log_s)
    return math.exp(-math.exp(centre - spread)), math.exp(-math.exp(centre + spread))


def reverse_km_median_ci(
    times: Sequence[float], ended_in_death: Sequence[bool], level: float = 0.95
) -> tuple[float | None, float | None]:
    """`km_median_ci` of follow-up by reverse Kaplan-Meier (death censors)."""
    return km_median_ci(times, [not d for d in ended_in_death], level)


def median(values: Sequence[float]) -> float | None:
    """Plain median; None for an empty set."""
    return float(statistics.median(values)) if values else None
