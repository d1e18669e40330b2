"""Small statistics: exact binomial intervals and Kaplan-Meier medians (CONTRACT section 3)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from scipy.stats import binomtest

# Survival is a product of floats: 0.75 * (2/3) lands a hair under or over 0.5. A step
# of a real survival curve is at least 1/n, far above this tolerance for any trial.
_TOLERANCE = 1e-9


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
    rows = sorted(zip(times, events, strict=True))
    at_risk, survival, i = len(rows), 1.0, 0
    while i < len(rows):
        t, deaths, leaving = rows[i][0], 0, 0
        while i < len(rows) and rows[i][0] == t:
            deaths += rows[i][1]
            leaving += 1
            i += 1
        if deaths:
            survival *= 1.0 - deaths / at_risk
            if survival <= 0.5 + _TOLERANCE:
                return float(t)
        at_risk -= leaving
    return None


def reverse_km_median(times: Sequence[float], ended_in_death: Sequence[bool]) -> float | None:
    """Median follow-up by reverse Kaplan-Meier: death censors, everything else is the event."""
    return km_median(times, [not d for d in ended_in_death])


def median(values: Sequence[float]) -> float | None:
    """Plain median; None for an empty set."""
    return float(statistics.median(values)) if values else None
