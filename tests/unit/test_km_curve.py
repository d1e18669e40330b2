"""Kaplan-Meier curves and numbers at risk for the desk's charts, against lifelines."""

from __future__ import annotations

import random
import warnings
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter

from cartwatch.models.survival import (
    km_curve,
    km_median,
    numbers_at_risk,
    reverse_km_curve,
    reverse_km_median,
    survival_at,
)
from tests.unit.test_survival import random_sample

# An exact 1/2 can come out of a product of floats a hair above it (0.75 * 2/3).
HALF = 0.5 + 1e-12


def fitted(times: list[float], events: list[bool]) -> KaplanMeierFitter:
    fitter = KaplanMeierFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(times, event_observed=events)
    return fitter


def every_time_and_between(times: list[float]) -> list[float]:
    """The data's times, points between and around them: where a step function can differ."""
    distinct = sorted(set(times))
    between = [(a + b) / 2 for a, b in pairwise(distinct)]
    return [0.0, *distinct, *between, distinct[-1] + 1.0]


def median_read_off(curve: list[tuple[float, float]]) -> float | None:
    return next((t for t, s in curve if s <= HALF), None)


def test_the_curve_has_lifelines_survival_at_every_time_of_random_samples() -> None:
    rng = random.Random(2026)
    for _ in range(150):
        times, events = random_sample(rng)
        curve, reference = km_curve(times, events), fitted(times, events)
        grid = every_time_and_between(times)
        expected = reference.survival_function_at_times(grid).to_list()
        got = [survival_at(curve, t) for t in grid]
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), (times, events)


def test_the_curve_reaches_one_half_first_at_the_km_median() -> None:
    rng = random.Random(99)
    for _ in range(500):
        times, events = random_sample(rng)
        assert median_read_off(km_curve(times, events)) == km_median(times, events)


def test_the_reverse_curve_has_lifelines_survival_with_death_as_the_censoring() -> None:
    rng = random.Random(12)
    for _ in range(100):
        times, deaths = random_sample(rng)
        curve = reverse_km_curve(times, deaths)
        reference = fitted(times, [not d for d in deaths])
        grid = every_time_and_between(times)
        expected = reference.survival_function_at_times(grid).to_list()
        assert [survival_at(curve, t) for t in grid] == pytest.approx(expected, rel=1e-9)
        assert median_read_off(curve) == reverse_km_median(times, deaths)


def test_numbers_at_risk_are_lifelines_at_risk_at_every_distinct_time() -> None:
    rng = random.Random(5)
    for _ in range(100):
        times, events = random_sample(rng)
        table = fitted(times, events).event_table
        distinct = sorted(set(times))
        assert numbers_at_risk(times, distinct) == [int(table.loc[t, "at_risk"]) for t in distinct]


def test_numbers_at_risk_count_the_subjects_whose_time_is_at_or_after_each_tick() -> None:
    times = [3.0, 1.0, 2.0, 2.0, 5.0]
    assert numbers_at_risk(times, [0, 1, 1.5, 2, 4.9, 5, 6]) == [5, 5, 4, 4, 1, 1, 0]


def test_at_tied_times_the_events_drop_the_curve_before_the_censorings_leave() -> None:
    # 6 at risk: t=1 one event (5/6); t=2 one event among 5, three censored (2/3); t=3 (0).
    curve = km_curve([1, 2, 2, 2, 2, 3], [True, True, False, False, False, True])
    assert curve == [(0.0, 1.0), (1.0, 5 / 6), (2.0, pytest.approx(2 / 3)), (3.0, 0.0)]


def test_a_sample_without_events_stays_at_one() -> None:
    assert km_curve([4.0, 7.0], [False, False]) == [(0.0, 1.0)]
    assert km_curve([], []) == [(0.0, 1.0)]


def test_before_the_first_event_survival_is_one() -> None:
    curve = km_curve([10.0, 20.0], [True, True])
    assert survival_at(curve, 9.99) == 1.0 and survival_at(curve, 10.0) == 0.5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=50))
def test_the_curve_starts_at_one_and_only_falls_at_event_times(
    rows: list[tuple[int, bool]],
) -> None:
    times, events = [float(t) for t, _ in rows], [e for _, e in rows]
    curve = km_curve(times, events)
    assert curve[0] == (0.0, 1.0)
    assert all(b[0] > a[0] and b[1] <= a[1] for a, b in pairwise(curve[1:]))
    event_times = {t for t, e in rows if e}
    assert {t for t, _ in curve[1:]} == event_times
