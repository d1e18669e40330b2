"""CONTRACT section 3: Kaplan-Meier medians and exact intervals, against the libraries."""

from __future__ import annotations

import math
import random
import warnings
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from scipy.stats import beta

from cartwatch.models.survival import clopper_pearson, km_median, median, reverse_km_median


def exact_km(times: list[float], events: list[bool]) -> tuple[float | None, bool]:
    """The contract's median in exact arithmetic; also whether survival ever equals 1/2."""
    survival, at_risk, hits_half = Fraction(1), len(times), False
    for t in sorted(set(times)):
        deaths = sum(e for x, e in zip(times, events, strict=True) if x == t)
        if deaths:
            survival *= 1 - Fraction(deaths, at_risk)
            hits_half = hits_half or survival == Fraction(1, 2)
            if survival <= Fraction(1, 2):
                return t, hits_half
        at_risk -= sum(1 for x in times if x == t)
    return None, hits_half


def lifelines_median(times: list[float], events: list[bool]) -> float | None:
    fitter = KaplanMeierFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(times, event_observed=events)
    value = float(fitter.median_survival_time_)
    return None if math.isinf(value) else value


def random_sample(rng: random.Random) -> tuple[list[float], list[bool]]:
    n = rng.randint(1, 40)
    # Few distinct times: many ties, and ties of events with censorings.
    distinct = rng.randint(1, 8)
    times = [float(rng.randint(1, distinct) * 10) for _ in range(n)]
    events = [rng.random() < rng.choice([0.2, 0.5, 0.8]) for _ in range(n)]
    return times, events


# --- Kaplan-Meier median -------------------------------------------------------------


def test_km_median_matches_lifelines_on_random_samples_with_many_ties() -> None:
    rng = random.Random(20250106)
    compared = 0
    for _ in range(150):
        times, events = random_sample(rng)
        expected, hits_half = exact_km(times, events)
        if hits_half:
            # lifelines multiplies in log space: an exact 1/2 may land a hair above it
            # there; such samples are checked against exact arithmetic below.
            continue
        assert km_median(times, events) == lifelines_median(times, events) == expected
        compared += 1
    assert compared > 75


def test_km_median_matches_exact_arithmetic_on_random_samples() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        times, events = random_sample(rng)
        assert km_median(times, events) == exact_km(times, events)[0], (times, events)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=12), st.booleans()),
        min_size=0,
        max_size=60,
    )
)
def test_km_median_is_the_smallest_time_with_survival_at_most_one_half(
    rows: list[tuple[int, bool]],
) -> None:
    times = [float(t) for t, _ in rows]
    events = [e for _, e in rows]
    assert km_median(times, events) == exact_km(times, events)[0]


def test_survival_reaching_exactly_one_half_at_an_event_is_the_median() -> None:
    assert km_median([1, 2, 3, 4], [True, True, True, True]) == 2


def test_an_exact_half_that_floats_put_a_hair_above_is_still_the_median() -> None:
    # 13/24 * 12/13 is exactly 1/2; in floats (1 - 11/24) * (1 - 1/13) is 0.5000000000000001.
    times = [1.0] * 11 + [2.0] + [3.0] * 12
    events = [True] * 12 + [False] * 12
    assert km_median(times, events) == 2


def test_at_tied_times_events_come_before_censorings() -> None:
    # t=1: 6 at risk, 1 event: S = 5/6. t=2: 1 event and 3 censorings. Events first:
    # 5 at risk, S = 2/3 (censorings first would give 2 at risk and S = 5/12).
    # t=3: the last subject's event: S = 0.
    times = [1, 2, 2, 2, 2, 3]
    events = [True, True, False, False, False, True]
    assert km_median(times, events) == 3
    assert lifelines_median(times, events) == 3


def test_a_tied_event_and_censoring_at_the_median_time() -> None:
    # t=1: S = 3/4; t=2: one event among 3 at risk (the censored one still counts): S = 1/2.
    times = [1, 2, 2, 3]
    events = [True, True, False, True]
    assert km_median(times, events) == 2
    assert lifelines_median(times, events) == 2


def test_median_not_reached_is_none() -> None:
    assert km_median([1, 2, 3, 4], [True, False, False, False]) is None
    assert km_median([5, 6], [False, False]) is None
    assert km_median([], []) is None


def test_a_single_event_is_the_median() -> None:
    assert km_median([9.5], [True]) == 9.5


def test_input_order_does_not_matter() -> None:
    times = [4, 1, 3, 2, 2]
    events = [True, False, True, True, False]
    assert km_median(times, events) == km_median(times[::-1], events[::-1]) == 3


# --- reverse Kaplan-Meier -------------------------------------------------------------


def test_reverse_km_median_treats_death_as_the_censoring() -> None:
    # Follow-up 10 (withdrawn), 20 (death: censored), 30, 40: S(10) = 3/4, S(30) = 3/8.
    assert reverse_km_median([10, 20, 30, 40], [False, True, False, False]) == 30


def test_reverse_km_median_matches_lifelines_on_random_samples() -> None:
    rng = random.Random(11)
    compared = 0
    for _ in range(100):
        times, deaths = random_sample(rng)
        not_death = [not d for d in deaths]
        if exact_km(times, not_death)[1]:
            continue
        assert reverse_km_median(times, deaths) == lifelines_median(times, not_death)
        compared += 1
    assert compared > 50


def test_reverse_km_median_with_only_deaths_is_not_reached() -> None:
    assert reverse_km_median([10, 20], [True, True]) is None


# --- Clopper-Pearson ---------------------------------------------------------------


def beta_interval(k: int, n: int) -> tuple[float, float]:
    low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    return float(low), float(high)


def test_clopper_pearson_of_75_in_94() -> None:
    low, high = clopper_pearson(75, 94)
    assert low == pytest.approx(0.702, abs=5e-4)
    assert high == pytest.approx(0.874, abs=5e-4)


def test_clopper_pearson_at_the_bounds_is_closed_form() -> None:
    # k = 0: upper = 1 - (alpha/2)^(1/n); k = n: lower = (alpha/2)^(1/n).
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))
    assert clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 94])
def test_clopper_pearson_matches_the_beta_quantiles_for_every_k(n: int) -> None:
    for k in range(n + 1):
        low, high = clopper_pearson(k, n)
        expected_low, expected_high = beta_interval(k, n)
        assert low == pytest.approx(expected_low, rel=1e-7, abs=1e-12)
        assert high == pytest.approx(expected_high, rel=1e-7, abs=1e-12)
        assert 0.0 <= low <= k / n <= high <= 1.0


def test_clopper_pearson_over_zero_patients_is_none() -> None:
    assert clopper_pearson(0, 0) is None


def test_clopper_pearson_returns_plain_floats() -> None:
    low, high = clopper_pearson(3, 9)
    assert type(low) is float and type(high) is float


# --- plain median ------------------------------------------------------------------


def test_median_of_an_empty_set_is_none() -> None:
    assert median([]) is None


def test_median_of_an_even_set_is_the_mean_of_the_middle_two() -> None:
    assert median([7.0, 1.0, 3.0, 5.0]) == 4.0


def test_median_of_an_odd_set_is_the_middle_value_as_a_float() -> None:
    result = median([3, 1, 2])
    assert result == 2.0 and type(result) is float
