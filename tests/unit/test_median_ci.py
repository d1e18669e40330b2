"""The confidence interval of a Kaplan-Meier median equals lifelines' (Brookmeyer-Crowley,
log-log limits), for the simulated trial's DOR and follow-up and for random samples."""

from __future__ import annotations

import math
import random

import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times

from cartwatch.models.cohort import DAYS_PER_MONTH
from cartwatch.models.survival import km_median, km_median_ci, reverse_km_median_ci
from tests.unit.demo_trial import demo_outcomes


def _lifelines(times: list[float], events: list[bool]) -> tuple[float | None, float | None]:
    fitter = KaplanMeierFitter().fit(times, events)
    low, high = median_survival_times(fitter.confidence_interval_).iloc[0]
    return tuple(None if math.isinf(x) else float(x) for x in (low, high))  # type: ignore[return-value]


def _sample(seed: int) -> tuple[list[float], list[bool]]:
    rng = random.Random(seed)
    n = rng.randint(8, 120)
    times = [float(rng.randint(1, 60)) for _ in range(n)]  # whole days: many ties
    events = [rng.random() < 0.6 for _ in range(n)]
    events[times.index(max(times))] = False  # a censored last time: S never reaches 0
    for i, t in enumerate(times):
        if t == max(times):
            events[i] = False
    return times, events


@pytest.mark.parametrize("seed", range(40))
def test_the_median_interval_equals_lifelines_on_random_samples_with_ties(seed: int):
    times, events = _sample(seed)
    assert km_median_ci(times, events) == _lifelines(times, events)


def test_the_interval_holds_the_median():
    times, events = _sample(7)
    low, high = km_median_ci(times, events)
    median = km_median(times, events)
    assert low is not None and median is not None
    assert low <= median and (high is None or median <= high)


def test_the_simulated_trials_dor_and_follow_up_intervals_equal_lifelines():
    outcomes = demo_outcomes()
    responders = [p for p in outcomes if p.remission_onset is not None]
    dor = [p.dor_days / DAYS_PER_MONTH for p in responders], [p.dor_event for p in responders]
    assert km_median_ci(*dor) == _lifelines(*dor)
    follow_up = [p.follow_up_days / DAYS_PER_MONTH for p in outcomes]
    died = [not p.follow_up_event for p in outcomes]
    assert reverse_km_median_ci(follow_up, died) == _lifelines(follow_up, [not d for d in died])


def test_a_curve_that_falls_to_zero_reaches_both_limits_there():
    assert km_median_ci([1.0, 2.0, 3.0], [True, True, True]) == (1.0, 3.0)


def test_nobody_gives_no_interval():
    assert km_median_ci([], []) == (None, None)
