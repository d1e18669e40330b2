"""The CRS window walk against its definition, and the crs_derived rule's direct reading
of a record against `peak_crs_grade` over the same post-infusion observations."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cartwatch.alerts.rules import RuleThresholds, evaluate_crs_derived
from cartwatch.models.astct import (
    CRS_CODES,
    CrsSigns,
    crs_grade,
    crs_sign_of,
    peak_crs_grade,
    peak_of_crs_marks,
)
from cartwatch.models.patient import PatientRecord

HOUR = 3600.0
DEVICES = ["room_air", "low_flow_cannula", "high_flow_cannula", "facemask", "bipap"]

observations = st.lists(
    st.one_of(
        st.tuples(st.integers(-12, 36), st.just("temperature_c"), st.sampled_from([37.0, 38.5])),
        st.tuples(st.integers(-12, 36), st.just("systolic_bp_mmhg"), st.sampled_from([80, 120])),
        st.tuples(st.integers(-12, 36), st.just("vasopressors"), st.integers(0, 2)),
        st.tuples(
            st.integers(-12, 36),
            st.just("oxygen"),
            st.tuples(st.sampled_from(DEVICES), st.sampled_from([None, 2.0, 8.0])),
        ),
        st.tuples(st.integers(-12, 36), st.just("ice_score"), st.integers(0, 10)),
    ).map(lambda row: (row[0] * HOUR, row[1], row[2])),
    max_size=25,
)
treatment = st.one_of(st.none(), st.integers(-12, 36).map(lambda h: h * HOUR))


def by_definition(observed: list, anti_cytokine_from: float | None, window_s: float) -> int:
    """Every window ending at a sign: fever in it, and the worst organ sign that counts."""
    marks = [(t, crs_sign_of(c, v)) for t, c, v in observed if c in CRS_CODES]
    marks = [(t, level) for t, level in marks if level]
    peak = 0
    for end, _ in marks:
        inside = [(t, level) for t, level in marks if end - window_s <= t <= end]
        fever = any(level == 1 for _, level in inside)
        after = anti_cytokine_from is not None and anti_cytokine_from <= end
        organs = [
            level
            for t, level in inside
            if level > 1 and (fever or (anti_cytokine_from is not None and anti_cytokine_from <= t))
        ]
        peak = max(peak, crs_grade(CrsSigns(fever, after, max(organs, default=0), 0)))
    return peak


@settings(max_examples=300, deadline=None)
@given(observations, treatment, st.sampled_from([6 * HOUR, 24 * HOUR]))
@example([(0.0, "temperature_c", 38.5), (24 * HOUR, "vasopressors", 1)], None, 24 * HOUR)
def test_the_window_walk_gives_the_grade_of_its_definition(observed, treated, window_s):
    expected = by_definition(observed, treated, window_s)
    assert peak_crs_grade(observed, treated, window_s) == expected
    marks = [(t, crs_sign_of(c, v)) for t, c, v in reversed(observed) if c in CRS_CODES]
    assert peak_of_crs_marks([m for m in marks if m[1]], treated, window_s) == expected


@settings(max_examples=300, deadline=None)
@given(observations, st.lists(st.integers(-12, 36).map(lambda h: h * HOUR), max_size=3))
@example([(0.0, "temperature_c", 38.5), (HOUR, "vasopressors", 1)], [])
def test_crs_derived_reads_the_post_infusion_observations(observed, given_at):
    record = PatientRecord("T1", "P1", infusions=[0.0])
    for t, code, value in observed:
        record.observations.setdefault(code, []).append((t, value))
    record.observations["anti_cytokine_given"] = [(t, True) for t in given_at]
    treated = min((t for t in given_at if t >= 0), default=None)
    after_t0 = [(t, c, v) for t, c, v in observed if t >= 0]
    grade = peak_crs_grade(after_t0, treated, RuleThresholds().crs_window_h * HOUR)
    crossing = evaluate_crs_derived(record, RuleThresholds(crs_derived_min=1))
    assert (crossing.level if crossing is not None else 0) == grade
