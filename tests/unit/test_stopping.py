"""The trial's toxicity stopping boundary (models/stopping.py, models/dlt.py) and its alert.

The published worked example: the `stoppingrule` R package (M. J. Martens,
github.com/mjmartens/stoppingrule, README), N = 30 patients monitored after each one,
p0 = 0.20, alpha = 0.10. "BB" is the Bayesian beta-binomial rule of Geller et al. (2003)
with a Beta(0.6, 2.4) prior (README of commit 09f9988, `calc.rule.bin(ns=1:30, p0=0.20,
alpha=0.10, type="BB", param=c(0.6,2.4))`, printed cval 0.9630823, a rounded bisection
point); "Pocock" the Pocock-type rule of Ivanova, Qaqish & Schell (Biometrics 2005)
(earlier README, `type="Pocock"`, cval 0.03766345). Each row of the tables below is the
row "N evaluable / Reject bdry" of the README's printout.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartwatch.alerts import engine
from cartwatch.alerts.engine import raise_alert
from cartwatch.alerts.pipeline import Pipeline
from cartwatch.alerts.pipeline import decode as decode_line
from cartwatch.alerts.replay import replay
from cartwatch.alerts.rules import RuleThresholds, evaluate_toxicity_boundary
from cartwatch.models.dlt import dlt_course, toxicity_status
from cartwatch.models.stopping import (
    StoppingConfig,
    boundary_table,
    compute_boundary,
    crossing_probability,
)
from tests.unit.builders import (
    adverse_event,
    at,
    crs,
    disposition,
    icans,
    infusion,
    lab,
    record_of,
)

BB = StoppingConfig(method="bayes", max_patients=30, p0=0.20, alpha=0.10, prior_a=0.6, prior_b=2.4)
POCOCK = StoppingConfig(method="pocock", max_patients=30, p0=0.20, alpha=0.10)

# stoppingrule README, bb_rule$Rule: boundary for N evaluable = 1..30.
BB_TABLE = [
    2,
    3,
    3,
    3,
    4,
    4,
    5,
    5,
    5,
    5,
    6,
    6,
    6,
    7,
    7,
    7,
    7,
    8,
    8,
    8,
    9,
    9,
    9,
    9,
    10,
    10,
    10,
    10,
    11,
    11,
]
# stoppingrule README (Pocock version), poc_rule$Rule: boundary for N evaluable = 1..30.
POCOCK_TABLE = [
    2,
    3,
    3,
    3,
    4,
    4,
    4,
    5,
    5,
    5,
    6,
    6,
    6,
    7,
    7,
    7,
    8,
    8,
    8,
    8,
    9,
    9,
    9,
    9,
    10,
    10,
    10,
    11,
    11,
    11,
]
# The READMEs' OC.rule.bin(rule, ps=seq(0.2, 0.4, 0.05)), column "Reject Prob".
BB_REJECT = [0.09957367, 0.23832301, 0.43615256, 0.64555222, 0.81491087]
POCOCK_REJECT = [0.09915263, 0.23312769, 0.42603085, 0.63398556, 0.80576733]
PS = [0.20, 0.25, 0.30, 0.35, 0.40]


@pytest.mark.parametrize("n", range(1, 31))
def test_the_bayesian_boundary_reproduces_the_stoppingrule_readme_row(n: int):
    assert compute_boundary(BB).reject_at[n - 1] == BB_TABLE[n - 1]  # README row n


@pytest.mark.parametrize("n", range(1, 31))
def test_the_pocock_boundary_reproduces_the_stoppingrule_readme_row(n: int):
    assert compute_boundary(POCOCK).reject_at[n - 1] == POCOCK_TABLE[n - 1]  # README row n


@pytest.mark.parametrize(("config", "expected"), [(BB, BB_REJECT), (POCOCK, POCOCK_REJECT)])
def test_the_operating_characteristics_match_the_readme(config, expected):
    reject_at = compute_boundary(config).reject_at
    assert [crossing_probability(reject_at, p) for p in PS] == pytest.approx(expected, abs=5e-9)


def test_the_calibrated_constants_bracket_the_published_ones():
    # Any cutoff between the last posterior that does not stop and the first that does
    # gives the same table; the package's rounded 0.9630823 lies in that interval.
    assert 0.9630823 < compute_boundary(BB).constant < 0.9632
    # Pocock: any nominal level in [0.03617, next tail) gives it; the package printed 0.0377.
    assert compute_boundary(POCOCK).constant == pytest.approx(0.036175, abs=1e-6)


def test_the_type_one_error_is_at_most_alpha():
    assert compute_boundary(StoppingConfig()).crossing_probability <= 0.10


def test_the_table_marks_sizes_at_which_the_trial_cannot_stop():
    rows = boundary_table(BB)
    assert rows[:3] == [
        {"n_evaluable": 1, "stop_at_dlt": None},
        {"n_evaluable": 2, "stop_at_dlt": None},
        {"n_evaluable": 3, "stop_at_dlt": 3},
    ]


# --- dose-limiting toxicities and the trial-level alert ----------------------------------


def patient(pid: str, *events: dict) -> list[dict]:
    return [infusion(at(0), patient=pid), *events]


def test_a_grade_four_crs_within_28_days_is_dose_limiting():
    course = dlt_course(record_of(patient("A", crs(4, at(27)))), BB)
    assert course.dlt_at is not None


@pytest.mark.parametrize(
    ("report", "dlt"),
    [
        (crs(3, at(5)), False),  # grade 3 is below the default DLT grade
        (icans(4, at(5)), True),
        (crs(4, at(28, seconds=1)), False),  # onset after the 28-day window
        (crs(5, at(2)), True),
    ],
)
def test_which_toxicities_are_dose_limiting(report: dict, dlt: bool):
    assert (dlt_course(record_of(patient("A", report)), BB).dlt_at is not None) is dlt


def test_without_a_dlt_a_patient_is_evaluable_only_after_28_days():
    course = dlt_course(record_of(patient("A")), BB)
    assert toxicity_status([course], BB, as_of=course.t0 + 27 * 86400).n_evaluable == 0
    assert toxicity_status([course], BB, as_of=course.t0 + 28 * 86400).n_evaluable == 1


def test_three_dlts_in_the_first_three_patients_cross_the_boundary():
    records = [record_of(patient(p, crs(4, at(3), patient=p))) for p in "ABC"]
    crossing = evaluate_toxicity_boundary(records, BB, already_fired_level=0)
    assert (crossing.rule, crossing.level, crossing.value, crossing.threshold) == (
        "toxicity_boundary",
        1,
        3,
        3,
    )
    assert evaluate_toxicity_boundary(records, BB, already_fired_level=1) is None


def test_two_dlts_in_two_patients_do_not():
    records = [record_of(patient(p, crs(4, at(3), patient=p))) for p in "AB"]
    assert evaluate_toxicity_boundary(records, BB, already_fired_level=0) is None


def test_a_stream_with_too_many_dlts_fires_exactly_one_toxicity_boundary_alert():
    events = []
    for i in range(8):  # eight patients, five with a grade-4 CRS on day 3, two more later
        pid = f"P{i}"
        events.append(infusion(at(i), patient=pid))
        if i < 7:
            events.append(crs(4, at(i + 3), patient=pid, ae_id=f"{pid}-crs"))
    lines = [json.dumps(e).encode() for e in events]
    thresholds = RuleThresholds(toxicity=BB)
    result = replay(lines, datetime.fromisoformat(at(60)), thresholds)
    (alert,) = [a for a in result.alerts if a.rule == "toxicity_boundary"]
    assert alert.patient_id is None
    assert alert.alert_id == "T1::toxicity_boundary:1"
    assert (alert.level, alert.severity, alert.value, alert.threshold) == (1, "critical", 3, 3)


# --- the trial monitor re-checks the boundary only when it can have changed ----------------


@st.composite
def trial_streams(draw) -> list[dict]:
    """Events of up to 12 patients in any order: infusions over two months, grade 3-5
    CRS/ICANS inside or outside the 28-day window, reported before or after their onset
    and sometimes corrected (another grade or onset, or withdrawn), dispositions, and labs
    that move the trial's clock."""
    events = []
    for i in range(draw(st.integers(1, 12))):
        pid, day = f"P{i}", draw(st.integers(0, 60))
        events.append(infusion(at(day), patient=pid))
        for k in range(draw(st.integers(0, 2))):
            for _ in range(draw(st.integers(1, 2))):  # a report, maybe its correction
                status = draw(st.sampled_from(["reported", "reported", "entered_in_error"]))
                events.append(
                    adverse_event(
                        draw(st.sampled_from(["CRS", "ICANS"])),
                        draw(st.sampled_from([3, 4, 5])),
                        at(day + draw(st.integers(0, 35))),
                        reported=at(day + draw(st.integers(0, 40))),
                        ae_id=f"{pid}-{k}",
                        status=status,
                        patient=pid,
                    )
                )
        if draw(st.booleans()):
            status = draw(st.sampled_from(["death", "withdrawn", "lost_to_follow_up"]))
            events.append(disposition(status, at(day + draw(st.integers(1, 40))), patient=pid))
        events.append(lab("CRP", 5.0, at(day + draw(st.integers(0, 90))), patient=pid))
    return draw(st.permutations(events))


def _every_event_rechecked(lines: list[bytes], thresholds: RuleThresholds) -> list:
    """The reference: the boundary evaluated over the whole trial after every event."""
    records: dict = {}
    pipeline, fired, alerts = Pipeline(records, thresholds), 0, []
    for raw in lines:
        event = decode_line(raw)
        if pipeline.apply(event).outcome != "accepted":
            continue
        infused = [r for r in records.values() if r.infusions]
        crossing = evaluate_toxicity_boundary(infused, thresholds.toxicity, fired)
        if crossing is not None:
            fired = crossing.level
            alerts.append(raise_alert("T1", None, crossing, event))
    return alerts


@settings(max_examples=300, deadline=None)
@given(trial_streams())
def test_the_monitor_raises_what_a_recheck_after_every_event_raises(events: list[dict]):
    lines = [json.dumps(e).encode() for e in events]
    thresholds = RuleThresholds(toxicity=BB)
    monitored = [
        a for a in replay(lines, datetime.fromisoformat(at(200)), thresholds).alerts
        if a.rule == "toxicity_boundary"
    ]  # fmt: skip
    wanted = _every_event_rechecked(lines, thresholds)
    key = ("alert_id", "source_event_id", "value", "threshold", "message")
    assert [a.model_dump(include=set(key)) for a in monitored] == [
        a.model_dump(include=set(key)) for a in wanted
    ]


def test_the_boundary_is_crossed_when_the_clock_reaches_a_dlt_reported_ahead_of_its_onset():
    """Onsets after the report's time (as the contract allows) count once the trial's clock
    reaches them: here the lab on day 5 brings the three DLTs into the count."""
    events = [infusion(at(0), patient=p) for p in "ABC"]
    events += [crs(4, at(3), reported=at(1), patient=p, ae_id=f"{p}-crs") for p in "ABC"]
    events += [lab("CRP", 5.0, at(2), patient="A"), lab("CRP", 5.0, at(5), patient="B")]
    lines = [json.dumps(e).encode() for e in events]
    result = replay(lines, datetime.fromisoformat(at(60)), RuleThresholds(toxicity=BB))

    (alert,) = [a for a in result.alerts if a.rule == "toxicity_boundary"]
    assert alert.source_event_id == events[-1]["event_id"]
    assert (
        _every_event_rechecked(lines, RuleThresholds(toxicity=BB))[0].source_event_id
        == (events[-1]["event_id"])
    )


def test_events_that_cannot_move_the_boundary_do_not_walk_the_trial(monkeypatch):
    """Infusions whose 28 days are ahead and labs before anyone is evaluable leave the
    boundary as it was: the monitor does not re-walk the trial for them."""
    walks = []
    real = engine.evaluate_toxicity_boundary
    monkeypatch.setattr(
        engine, "evaluate_toxicity_boundary", lambda *a: walks.append(1) or real(*a)
    )
    events = [infusion(at(i), patient=f"P{i}") for i in range(20)]
    events += [lab("CRP", 5.0, at(21), patient=f"P{i}") for i in range(20)]
    replay([json.dumps(e).encode() for e in events], datetime.fromisoformat(at(60)),
           RuleThresholds(toxicity=BB))  # fmt: skip
    assert walks == []

    events.append(lab("CRP", 5.0, at(28), patient="P0"))  # P0 becomes evaluable
    events.append(crs(4, at(22), reported=at(29), patient="P5"))  # a DLT in the past
    replay([json.dumps(e).encode() for e in events], datetime.fromisoformat(at(60)),
           RuleThresholds(toxicity=BB))  # fmt: skip
    assert len(walks) == 2
