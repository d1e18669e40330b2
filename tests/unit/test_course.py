"""A patient's course for the desk: signs, markers, grades and responses in days since t0."""

from __future__ import annotations

import pytest

from cartwatch.alerts.replay import replay
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.astct import peak_crs_grade, peak_icans_grade
from cartwatch.models.course import patient_course
from cartwatch.models.outcomes import counted_toxicities, derive_outcome, worst_grade
from cartwatch.streams.devtools.simulator import simulate_trial
from tests.unit.builders import (
    at,
    blood_blasts,
    crs,
    disposition,
    epoch,
    icans,
    infusion,
    lab,
    marrow_blasts,
    observation,
    record_of,
    recovered_counts,
)

END = epoch(at(60))


def course_of(*events, as_of: float = END):
    course = patient_course(record_of(*events), as_of)
    assert course is not None
    return course


def test_a_patient_not_infused_by_the_instant_has_no_course() -> None:
    record = record_of(lab("IL6", 3, at(-2)), infusion(at(0)))
    assert patient_course(record, epoch(at(-1))) is None


def test_signs_and_markers_are_in_days_since_the_first_infusion() -> None:
    course = course_of(
        infusion(at(0)),
        infusion(at(10)),  # a second infusion moves nothing: t0 is the first
        observation("temperature_c", 39.2, at(1.5)),
        observation("systolic_bp_mmhg", 85, at(2)),
        observation("oxygen", {"device": "low_flow_cannula", "flow_lpm": 4}, at(2.25)),
        lab("IL6", 900, at(1)),
        lab("CRP", 12, at(1), unit="mg/dL"),  # converted on intake: 120 mg/L
    )
    assert course.signs["temperature_c"] == [(1.5, 39.2)]
    assert course.signs["systolic_bp_mmhg"] == [(2.0, 85.0)]
    assert course.oxygen == [(2.25, "low_flow_cannula", 4.0)]
    assert course.markers["IL6"] == [(1.0, 900.0)]
    assert course.markers["CRP"] == [(1.0, 120.0)]
    assert course.milestones == [(0.0, "infusion"), (10.0, "infusion")]
    assert course.day == 60.0


def test_the_course_keeps_the_week_before_infusion_as_baseline_and_nothing_after_the_instant():
    course = course_of(
        lab("IL6", 2, at(-8)),
        lab("IL6", 3, at(-6)),
        infusion(at(0)),
        lab("IL6", 400, at(2)),
        lab("IL6", 50, at(9)),
        as_of=epoch(at(5)),
    )
    assert course.markers["IL6"] == [(-6.0, 3.0), (2.0, 400.0)]


def test_the_reported_grade_is_the_worst_report_held_from_onset_to_resolution() -> None:
    course = course_of(
        infusion(at(0)),
        crs(2, at(2), ae_id="AE1"),
        crs(3, at(2), reported=at(3), ae_id="AE1", resolved=at(7)),  # worst grade of reports
        icans(1, at(5)),
    )
    assert course.reported_grades["CRS"] == [(0.0, 0.0), (2.0, 3.0), (7.0, 0.0), (60.0, 0.0)]
    assert course.reported_grades["ICANS"] == [(0.0, 0.0), (5.0, 1.0), (60.0, 1.0)]


def test_overlapping_events_show_the_higher_grade_while_both_are_open() -> None:
    course = course_of(
        infusion(at(0)),
        crs(1, at(1), ae_id="A", resolved=at(10)),
        crs(3, at(3), ae_id="B", resolved=at(5)),
    )
    assert course.reported_grades["CRS"] == [
        (0.0, 0.0),
        (1.0, 1.0),
        (3.0, 3.0),
        (5.0, 1.0),
        (10.0, 0.0),
        (60.0, 0.0),
    ]


def test_withdrawn_and_pre_infusion_events_are_not_in_the_course() -> None:
    course = course_of(
        crs(2, at(-3), ae_id="before"),
        infusion(at(0)),
        crs(3, at(2), ae_id="error"),
        crs(3, at(2), reported=at(4), ae_id="error", status="entered_in_error"),
    )
    assert course.episodes == []
    assert course.reported_grades["CRS"] == [(0.0, 0.0), (60.0, 0.0)]


def test_the_derived_crs_grade_rises_with_the_signs_and_falls_when_they_leave_the_window():
    course = course_of(
        infusion(at(0)),
        observation("temperature_c", 38.6, at(1)),
        observation("oxygen", {"device": "high_flow_cannula", "flow_lpm": 20}, at(1.5)),
        observation("temperature_c", 37.0, at(4)),
    )
    # Fever: grade 1; with a high-flow cannula within 24 h: grade 3. One second after the
    # fever leaves the 24 h window, hypoxia alone (no fever, no anti-cytokine) is no CRS.
    assert course.derived_grades["CRS"] == [
        (0.0, 0.0),
        (1.0, 1.0),
        (1.5, 3.0),
        (pytest.approx(2 + 1 / 86400), 0.0),
        (60.0, 0.0),
    ]


def test_the_derived_icans_grade_is_the_worst_domain_of_the_latest_observations_of_the_day():
    course = course_of(
        infusion(at(0)),
        observation("ice_score", 8, at(3)),
        observation("consciousness", "awakens_to_touch", at(3.5)),
        observation("consciousness", "awake", at(3.75)),
    )
    # ICE 8: grade 1; awakens to touch: 3; awake again: the ICE score of 8 stands (1) until
    # it is a day old, 1 s after day 4 (the window of the derived grades).
    assert course.derived_grades["ICANS"] == [
        (0.0, 0.0),
        (3.0, 1.0),
        (3.5, 3.0),
        (3.75, 1.0),
        (pytest.approx(4 + 1 / 86400), 0.0),
        (60.0, 0.0),
    ]
    assert course.consciousness == [(3.5, "awakens_to_touch"), (3.75, "awake")]


def test_responses_are_labelled_as_the_contract_derives_them() -> None:
    course = course_of(
        marrow_blasts(70, at(-5)),
        infusion(at(0)),
        marrow_blasts(2, at(28)),
        recovered_counts(at(30)),
        lab("MRD", 0.004, at(28)),
        marrow_blasts(1, at(40)),
        blood_blasts(4, at(50)),
        marrow_blasts(30, at(50)),
        disposition("death", at(58)),
    )
    findings = [(a.day, a.analyte, a.finding) for a in course.assessments]
    assert findings == [
        (-5.0, "BM_BLASTS", None),
        (28.0, "BM_BLASTS", "CR"),
        (28.0, "MRD", "MRD-negative"),
        (40.0, "BM_BLASTS", "CRi"),  # no recovered counts within 7 days of day 40
        (50.0, "BM_BLASTS", "relapse"),
        (50.0, "PB_BLASTS", "relapse"),
    ]
    assert course.milestones == [
        (0.0, "infusion"),
        (28.0, "remission (CR)"),
        (50.0, "relapse"),
        (58.0, "death"),
    ]


def test_on_a_simulated_trial_the_course_agrees_with_the_rules_and_the_outcomes() -> None:
    trial = simulate_trial(seed=3)
    result = replay(trial.lines(), trial.data_cut, RuleThresholds())
    as_of = trial.data_cut.timestamp()
    checked = 0
    for record in result.records.values():
        course = patient_course(record, as_of)
        if course is None:
            assert derive_outcome(record, as_of) is None
            continue
        checked += 1
        toxicities = counted_toxicities(record, course.t0, as_of)
        for term in ("CRS", "ICANS"):
            highest = max(g for _, g in course.reported_grades[term])
            assert highest == worst_grade(toxicities, term), (record.patient_id, term)
        observed = [(t, code, v) for code, rows in record.observations.items() for t, v in rows]
        after = [o for o in observed if o[0] >= course.t0]
        treated = min((t for t, c, v in after if c == "anti_cytokine_given" and v), default=None)
        assert max(g for _, g in course.derived_grades["CRS"]) == peak_crs_grade(after, treated)
        assert max(g for _, g in course.derived_grades["ICANS"]) == peak_icans_grade(after)
        responses = {a.finding for a in course.assessments} & {"CR", "CRi"}
        assert (course.outcome.remission_onset is not None) == bool(responses)
    assert checked > 80
