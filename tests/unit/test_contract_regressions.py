"""Regressions found by an independent reading of CONTRACT.md (each failed at 09b6646)."""

from __future__ import annotations

import json
import math
import warnings

import pytest
from lifelines import KaplanMeierFitter

from cartwatch.models.codec import decode_event
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.survival import km_median
from tests.unit.builders import at, disposition, lab


def reasons_for(event: dict) -> list[str]:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(json.dumps(event).encode())
    return caught.value.reasons


# Bug 1 (CONTRACT 1, "every reason it failed"): an unaccepted unit is only checked when
# every other field is valid (a mode="after" model validator), so its reason is lost.
def test_a_bad_unit_is_reported_alongside_another_bad_field() -> None:
    reasons = reasons_for(lab("CRP", 3.0, at(1), unit="furlong", patient=""))
    assert any(r.startswith("patient_id") for r in reasons), reasons
    assert any(r.startswith("unit") for r in reasons), reasons


def test_a_bad_unit_is_reported_alongside_a_negative_value() -> None:
    reasons = reasons_for(lab("FERRITIN", -5, at(1), unit="mg/dL"))
    assert any(r.startswith("unit") for r in reasons), reasons


# Bug 2 (CONTRACT 1, occurred_at "RFC 3339 timestamp with offset; a timestamp without
# offset is invalid"): pydantic's lax datetime parsing accepts strings that are not
# RFC 3339, the worst being a bare epoch number in a string (no offset at all, read as UTC).
@pytest.mark.parametrize(
    "stamp",
    [
        "1735689600",  # epoch seconds as a string: accepted as 2025-01-01T00:00:00+00:00
        "2025-01-01T00:00:00+0100",  # offset without colon (ISO basic, not RFC 3339)
        "2025-01-01_00:00:00Z",  # underscore separator
        "2025-01-01T00:00Z",  # no seconds
        "2025-01-01T23:59:60Z",  # leap second: Python datetimes cannot hold it
    ],
)
def test_a_timestamp_that_is_not_rfc3339_is_invalid(stamp: str) -> None:
    event = {**disposition("death", at(1)), "occurred_at": stamp}
    reasons = reasons_for(event)
    assert any(r.startswith("occurred_at") for r in reasons)


# Bug 3 (CONTRACT 3, median "the smallest time at which survival <= 0.5"): km_median
# treats survival up to 0.5 + 1e-9 as <= 0.5. With 46 subjects, one event at each at-risk
# count 46, 42, 41, 40, 39, 38, 34, 33, 31, 28, 27, 26, 21, 17, 14, 7 (censorings in
# between), survival after the 16th event is exactly 1/2 + 1.44e-10 > 1/2; the median is
# not reached (None, and lifelines agrees: inf), but km_median returns the 16th event time.
def counterexample() -> tuple[list[float], list[bool]]:
    at_risk_sequence = [46, 42, 41, 40, 39, 38, 34, 33, 31, 28, 27, 26, 21, 17, 14, 7]
    times: list[float] = []
    events: list[bool] = []
    at_risk, t = 46, 0.0
    for n in at_risk_sequence:
        t += 1.0
        censored = at_risk - n
        times += [t - 0.5] * censored
        events += [False] * censored
        times.append(t)
        events.append(True)
        at_risk = n - 1
    times += [t + 1.0] * at_risk
    events += [False] * at_risk
    return times, events


def test_survival_a_hair_above_one_half_is_not_the_median() -> None:
    times, events = counterexample()
    fitter = KaplanMeierFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit(times, event_observed=events)
    assert math.isinf(fitter.median_survival_time_)  # lifelines: not reached
    assert km_median(times, events) is None
