"""The DMC report's figures: the JSON report's over the cut records, lanes, listings, alerts."""

from __future__ import annotations

from cartwatch.models.alert_summary import alert_lines
from cartwatch.models.cohort import cohort_reports
from cartwatch.models.dmc import dmc_figures
from cartwatch.models.stopping import StoppingConfig
from tests.unit.builders import (
    adverse_event,
    at,
    crs,
    disposition,
    epoch,
    icans,
    infusion,
    marrow_blasts,
    records_of,
    recovered_counts,
)
from tests.unit.demo_trial import demo_replay, demo_trial


def _trial() -> list:
    return [
        infusion(at(0), patient="P1"),
        crs(3, at(2), patient="P1", resolved=at(6)),
        icans(4, at(4), patient="P1"),
        marrow_blasts(1.0, at(28), patient="P1"),
        recovered_counts(at(28), patient="P1"),
        marrow_blasts(20.0, at(120), patient="P1"),
        disposition("death", at(150), patient="P1"),
        infusion(at(10), patient="P2"),
        adverse_event("Febrile neutropenia", 3, at(12), patient="P2", ae_id="FN"),
        crs(1, at(11), patient="P2", resolved=at(13)),
        disposition("withdrawn", at(90), patient="P2"),
        marrow_blasts(40.0, at(-5), patient="P3"),  # never infused
    ]


def _figures(as_of: str = at(200), alerts: list | None = None):
    return dmc_figures("T1", records_of(_trial()), epoch(as_of), StoppingConfig(), alerts or [])


def test_the_figures_hold_the_json_report_of_the_same_cut():
    figures = _figures(at(100))
    assert figures is not None
    assert [figures.report] == cohort_reports(records_of(_trial()), epoch(at(100)))
    assert figures.n_patients == 3 and figures.report["n_infused"] == 2


def test_a_trial_without_data_at_the_cut_has_no_figures():
    assert _figures(at(-10)) is None
    assert _figures(at(-1)) is not None  # P3's marrow, five days before P1's infusion
    assert dmc_figures("T9", records_of(_trial()), epoch(at(200)), StoppingConfig()) is None


def test_each_infused_patient_has_a_lane_longest_follow_up_first():
    lanes = _figures().lanes
    assert [(lane.patient_id, lane.ending) for lane in lanes] == [
        ("P1", "death"),
        ("P2", "withdrawn"),
    ]
    p1 = lanes[0]
    assert p1.best_response == "CR" and p1.remission_at is not None and p1.relapse_at is not None
    assert [(e.term, e.grade, e.onset, e.end) for e in p1.episodes] == [
        ("CRS", 3, 2.0, 6.0),
        ("ICANS", 4, 4.0, None),
    ]


def test_the_listings_hold_every_grade_3_or_worse_event_and_every_death():
    figures = _figures()
    assert [(e.patient_id, e.term, e.grade, e.onset_day) for e in figures.severe] == [
        ("P1", "CRS", 3, 2.0),
        ("P1", "ICANS", 4, 4.0),
        ("P2", "Febrile neutropenia", 3, 2.0),
    ]
    assert [(d.patient_id, d.day, d.best_response, d.relapsed) for d in figures.deaths] == [
        ("P1", 150.0, "CR", True)
    ]


def test_alerts_count_by_rule_and_severity_with_the_waits_for_acknowledgement():
    def alert(rule: str, severity: str, acknowledged: str | None = None) -> dict:
        return {
            "rule": rule,
            "severity": severity,
            "detected_at": "2026-01-01T10:00:00+00:00",
            "acknowledged_at": acknowledged,
        }

    lines = alert_lines(
        [
            alert("icans_grade", "warning"),
            alert("crs_grade", "critical", "2026-01-01T10:30:00+00:00"),
            alert("crs_grade", "critical", "2026-01-01T11:30:00+00:00"),
            alert("crs_grade", "critical"),
        ]
    )
    assert [(a.rule, a.severity, a.raised, a.acknowledged) for a in lines] == [
        ("crs_grade", "critical", 3, 2),
        ("icans_grade", "warning", 1, 0),
    ]
    assert (lines[0].median_wait_min, lines[0].longest_wait_min) == (60.0, 90.0)
    assert lines[1].median_wait_min is None


def test_the_demo_trial_has_its_published_figures_and_intervals_around_the_medians():
    replayed = demo_replay()
    cut = demo_trial().data_cut.timestamp()
    figures = dmc_figures(demo_trial().trial_id, replayed.records.values(), cut, StoppingConfig())
    assert figures is not None
    efficacy = figures.report["efficacy"]
    assert (figures.report["n_infused"], efficacy["remission"]["n"]) == (94, 75)
    low, high = figures.follow_up_ci
    assert low is not None and high is not None
    assert low < efficacy["median_follow_up_months"] < high
    assert figures.dor_ci[0] is not None and figures.dor_ci[0] < efficacy["median_dor_months"]
    assert (
        len(figures.lanes) == 94 and len(figures.deaths) == figures.report["safety"]["deaths"]["n"]
    )
