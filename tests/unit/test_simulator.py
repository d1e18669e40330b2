"""The trial simulator: calibrated headline figures, determinism, and the messy parts."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest

from cartwatch.alerts.engine import process_event
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.codec import decode_event
from cartwatch.models.cohort import cohort_reports
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.outcomes import derive_outcome, worst_grade
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.devtools.simulator import BREAKAGES, SimulatedTrial, simulate_trial

DAY = 86400.0


def _records(trial: SimulatedTrial) -> dict[str, PatientRecord]:
    """Every line in arrival order through the real codec; invalid lines skipped."""
    records: dict[str, PatientRecord] = {}
    for line in trial.lines():
        try:
            event = decode_event(line)
        except InvalidEvent:
            continue
        record = records.setdefault(
            event.patient_id, PatientRecord(event.trial_id, event.patient_id)
        )
        record.apply(event)
    return records


def _report(trial: SimulatedTrial) -> dict:
    (report,) = cohort_reports(_records(trial).values(), trial.data_cut.timestamp())
    return report


@pytest.fixture(scope="module")
def trial() -> SimulatedTrial:
    return simulate_trial()


@pytest.fixture(scope="module")
def records(trial: SimulatedTrial) -> dict[str, PatientRecord]:
    return _records(trial)


@pytest.fixture(scope="module")
def report(trial: SimulatedTrial, records: dict[str, PatientRecord]) -> dict:
    (report,) = cohort_reports(records.values(), trial.data_cut.timestamp())
    return report


def test_the_data_cut_is_an_aware_utc_instant_after_every_event(trial: SimulatedTrial) -> None:
    assert trial.data_cut.utcoffset().total_seconds() == 0
    latest = max(datetime.fromisoformat(e["occurred_at"]) for e in trial.events)
    assert latest <= trial.data_cut


def test_94_of_98_screened_patients_are_infused(report: dict, trial: SimulatedTrial) -> None:
    assert report["trial_id"] == "CART19-ALL-01"
    assert report["n_infused"] == 94
    never_infused = [p for p in trial.plans if p.t0 is None]
    assert len(never_infused) == 4
    assert sum(p.screen_withdrawal for p in never_infused) == 1


def test_75_patients_reach_remission_with_the_published_exact_interval(report: dict) -> None:
    remission = report["efficacy"]["remission"]
    assert remission["n"] == 75
    assert round(remission["rate"], 3) == 0.798
    assert [round(x, 3) for x in remission["ci95"]] == [0.702, 0.874]


def test_48_responders_are_still_in_remission(report: dict) -> None:
    in_remission = report["efficacy"]["in_remission"]
    assert in_remission == {"n": 48, "fraction_of_remission": 0.64}


def test_median_duration_of_remission_is_17_8_months(report: dict) -> None:
    assert report["efficacy"]["median_dor_months"] == pytest.approx(17.8, abs=0.1)


def test_median_follow_up_is_12_9_months(report: dict) -> None:
    assert report["efficacy"]["median_follow_up_months"] == pytest.approx(12.9, abs=0.1)


def test_crs_has_the_published_shape(report: dict) -> None:
    crs = report["safety"]["crs"]
    assert 0.85 <= crs["any"]["rate"] <= 0.95
    assert 0.20 <= crs["grade3plus"]["rate"] <= 0.30
    assert 4.5 <= crs["median_onset_day"] <= 5.5
    assert 7.0 <= crs["median_duration_days"] <= 9.0
    assert crs["by_grade"]["5"] == 0


def test_icans_has_the_published_shape(report: dict) -> None:
    icans = report["safety"]["icans"]
    assert 0.55 <= icans["any"]["rate"] <= 0.65
    assert 0.20 <= icans["grade3plus"]["rate"] <= 0.30
    assert icans["by_grade"]["5"] == 0


def test_every_toxicity_resolved_before_the_data_cut(
    trial: SimulatedTrial, records: dict[str, PatientRecord]
) -> None:
    cut = trial.data_cut.timestamp()
    outcomes = [o for o in (derive_outcome(r, cut) for r in records.values()) if o]
    toxicities = [t for o in outcomes for t in o.toxicities]
    assert toxicities
    assert all(t.resolved is not None and t.onset < t.resolved <= cut for t in toxicities)


def test_deaths_come_from_the_disease_only(trial: SimulatedTrial, report: dict) -> None:
    deaths = [e for e in trial.events if e["type"] == "disposition" and e["status"] == "death"]
    assert len({e["patient_id"] for e in deaths}) == report["safety"]["deaths"]["n"] == 18
    assert all(e["cause"].startswith("progressive disease") for e in deaths)
    assert all(e["grade"] < 5 for e in trial.events if e["type"] == "adverse_event")


def test_the_same_seed_gives_the_same_bytes() -> None:
    assert list(simulate_trial(7).lines()) == list(simulate_trial(7).lines())


def test_another_seed_gives_another_trial(trial: SimulatedTrial) -> None:
    assert list(simulate_trial(7).lines()) != list(trial.lines())


@pytest.mark.parametrize("seed", [1, 99])
def test_other_seeds_keep_the_headline_figures(seed: int) -> None:
    efficacy = _report(simulate_trial(seed))["efficacy"]
    assert (efficacy["remission"]["n"], efficacy["in_remission"]["n"]) == (75, 48)
    assert efficacy["median_dor_months"] == pytest.approx(17.8, abs=0.1)
    assert efficacy["median_follow_up_months"] == pytest.approx(12.9, abs=0.1)


def test_every_valid_message_decodes(trial: SimulatedTrial) -> None:
    for event in trial.events:
        decode_event(json.dumps(event))


def test_each_invalid_line_is_rejected(trial: SimulatedTrial) -> None:
    assert len(trial.invalid) == len(BREAKAGES)
    for line in trial.invalid:
        with pytest.raises(InvalidEvent):
            decode_event(line)


def test_lines_carry_every_message_once_in_arrival_order(trial: SimulatedTrial) -> None:
    lines = list(trial.lines())
    assert len(lines) == len(trial.events) + len(trial.invalid)
    assert all(b"\n" not in line for line in lines)


def test_exact_and_conflicting_duplicates_are_present(trial: SimulatedTrial) -> None:
    by_id: dict[str, list[dict]] = {}
    for event in trial.events:
        by_id.setdefault(event["event_id"], []).append(event)
    repeated = [copies for copies in by_id.values() if len(copies) > 1]
    exact = [c for c in repeated if all(e == c[0] for e in c)]
    conflicting = [c for c in repeated if any(e != c[0] for e in c)]
    assert len(exact) >= 3
    assert len(conflicting) >= 2


def test_arrival_is_mostly_in_time_order_with_a_few_late_reports(trial: SimulatedTrial) -> None:
    latest, late = float("-inf"), 0
    for event in trial.events:
        at = datetime.fromisoformat(event["occurred_at"]).timestamp()
        late += at < latest - DAY
        latest = max(latest, at)
    assert 5 <= late <= 0.02 * len(trial.events)


def test_each_complete_remission_has_recovered_counts_within_seven_days(
    trial: SimulatedTrial, records: dict[str, PatientRecord]
) -> None:
    cut = trial.data_cut.timestamp()
    responders = [p for p in trial.plans if p.response is not None]
    assert Counter(p.response for p in responders) == {"CR": 52, "CRi": 23}
    for plan in responders:
        record = records[plan.patient_id]
        outcome = derive_outcome(record, cut)
        assert outcome is not None and outcome.best_response == plan.response
        onset = outcome.remission_onset
        near = [
            (a, v) for a in ("ANC", "PLT") for t, v in record.labs[a] if abs(t - onset) <= 7 * DAY
        ]
        recovered = any(a == "ANC" and v >= 1 for a, v in near) and any(
            a == "PLT" and v >= 100 for a, v in near
        )
        assert recovered == (plan.response == "CR")


def test_crp_arrives_in_both_units(trial: SimulatedTrial) -> None:
    units = {e["unit"] for e in trial.events if e["type"] == "lab" and e["analyte"] == "CRP"}
    assert units == {"mg/L", "mg/dL"}


def test_the_report_entered_in_error_counts_for_nothing(
    trial: SimulatedTrial, records: dict[str, PatientRecord]
) -> None:
    (plan,) = [p for p in trial.plans if p.erroneous_report]
    outcome = derive_outcome(records[plan.patient_id], trial.data_cut.timestamp())
    assert outcome is not None and plan.icans is None
    assert worst_grade(outcome.toxicities, "ICANS") == 0
    assert f"{plan.patient_id}-AE9" in records[plan.patient_id].adverse_events


def test_crs_escalates_one_grade_at_a_time_so_every_level_alerts(trial: SimulatedTrial) -> None:
    records: dict[str, PatientRecord] = {}
    levels: Counter[int] = Counter()
    for event in (decode_event(json.dumps(e)) for e in trial.events):
        record = records.setdefault(
            event.patient_id, PatientRecord(event.trial_id, event.patient_id)
        )
        processed = process_event(record, event, RuleThresholds())
        levels.update(a.level for a in processed.alerts if a.rule == "crs_grade")
    grades = Counter(p.crs.grade for p in trial.plans if p.crs is not None)
    expected = {level: sum(n for g, n in grades.items() if g >= level) for level in (2, 3, 4)}
    assert dict(levels) == expected
