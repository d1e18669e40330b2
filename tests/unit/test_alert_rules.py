"""CONTRACT section 4: the crs_grade and icans_grade rules and the alert they emit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cartwatch.alerts.engine import process_event
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.patient import PatientRecord
from tests.unit.builders import (
    adverse_event,
    alerts_of,
    at,
    crs,
    decode,
    icans,
    infusion,
    lab,
    observation,
)

ALERT_FIELDS = {
    "alert_id",
    "rule",
    "severity",
    "trial_id",
    "patient_id",
    "level",
    "value",
    "threshold",
    "triggered_at",
    "detected_at",
    "source_event_id",
    "message",
}


def levels(events: list[dict], rule: str = "crs_grade") -> list[int]:
    return [a.level for a in alerts_of(events) if a.rule == rule]


# --- crs_grade ---------------------------------------------------------------------


def test_crs_grade_one_raises_no_alert() -> None:
    assert alerts_of([infusion(at(0)), crs(1, at(1))]) == []


def test_crs_grade_two_raises_a_warning() -> None:
    (alert,) = alerts_of([infusion(at(0)), crs(2, at(1))])
    assert (alert.rule, alert.level, alert.severity) == ("crs_grade", 2, "warning")


@pytest.mark.parametrize("grade", [3, 4, 5])
def test_crs_grade_three_to_five_is_critical(grade: int) -> None:
    (alert,) = alerts_of([infusion(at(0)), crs(grade, at(1))])
    assert (alert.level, alert.severity) == (grade, "critical")


def test_a_jump_from_one_to_three_raises_one_alert_at_level_three() -> None:
    events = [infusion(at(0)), crs(1, at(1)), crs(3, at(1), reported=at(2))]
    (alert,) = alerts_of(events)
    assert (alert.level, alert.severity) == (3, "critical")


def test_grade_two_then_three_raises_two_alerts() -> None:
    events = [infusion(at(0)), crs(2, at(1)), crs(3, at(1), reported=at(2))]
    assert levels(events) == [2, 3]


def test_grade_three_then_two_raises_one_alert() -> None:
    events = [infusion(at(0)), crs(3, at(1), reported=at(2)), crs(2, at(1))]
    assert levels(events) == [3]


def test_a_second_event_at_the_same_grade_raises_no_new_alert() -> None:
    events = [infusion(at(0)), crs(2, at(1), ae_id="A"), crs(2, at(9), ae_id="B")]
    assert levels(events) == [2]


def test_the_level_is_the_worst_grade_over_all_the_patients_crs_events() -> None:
    events = [infusion(at(0)), crs(3, at(1), ae_id="A"), crs(4, at(9), ae_id="B")]
    assert levels(events) == [3, 4]


def test_other_terms_raise_no_grade_alert() -> None:
    events = [infusion(at(0)), adverse_event("Febrile neutropenia", 4, at(2), ae_id="FN")]
    assert alerts_of(events) == []


# --- icans_grade -------------------------------------------------------------------


def test_icans_grade_one_raises_a_warning() -> None:
    (alert,) = alerts_of([infusion(at(0)), icans(1, at(5))])
    assert (alert.rule, alert.level, alert.severity) == ("icans_grade", 1, "warning")


def test_icans_grade_two_is_a_warning_and_three_is_critical() -> None:
    events = [infusion(at(0)), icans(2, at(5)), icans(3, at(5), reported=at(6))]
    assert [(a.level, a.severity) for a in alerts_of(events)] == [(2, "warning"), (3, "critical")]


def test_crs_and_icans_alert_independently() -> None:
    events = [infusion(at(0)), crs(2, at(1)), icans(2, at(4))]
    assert [(a.rule, a.level) for a in alerts_of(events)] == [("crs_grade", 2), ("icans_grade", 2)]


# --- the alert message -------------------------------------------------------------


def test_an_alert_carries_every_field_of_the_contract() -> None:
    report = crs(2, at(1), reported=at(1, seconds=600), event_id="ae-report-1")
    record = PatientRecord("T1", "P1")
    process_event(record, decode(infusion(at(0))), RuleThresholds())
    detected = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    (alert,) = process_event(record, decode(report), RuleThresholds(), detected).alerts
    assert set(alert.model_dump()) == ALERT_FIELDS
    assert alert.alert_id == "T1:P1:crs_grade:2"
    assert (alert.trial_id, alert.patient_id, alert.source_event_id) == ("T1", "P1", "ae-report-1")
    assert (alert.value, alert.threshold) == (2, 2)
    assert datetime.fromisoformat(alert.triggered_at) == datetime.fromisoformat(at(1, 600))
    assert datetime.fromisoformat(alert.detected_at) == detected
    assert isinstance(alert.message, str) and alert.message


def test_the_alert_id_is_trial_patient_rule_level() -> None:
    events = [
        infusion(at(0), trial="CART19-ALL-01", patient="S01-0007"),
        icans(3, at(4), trial="CART19-ALL-01", patient="S01-0007"),
    ]
    (alert,) = alerts_of(events)
    assert alert.alert_id == "CART19-ALL-01:S01-0007:icans_grade:3"


def test_the_message_names_the_term_and_the_grade() -> None:
    (alert,) = alerts_of([infusion(at(0)), crs(4, at(1))])
    assert "CRS" in alert.message and "4" in alert.message


# --- idempotency and arrival order ----------------------------------------------------


def test_reprocessing_the_same_event_raises_no_alert() -> None:
    record = PatientRecord("T1", "P1")
    report = decode(crs(3, at(1)))
    process_event(record, decode(infusion(at(0))), RuleThresholds())
    first = process_event(record, report, RuleThresholds())
    again = process_event(record, report, RuleThresholds())
    assert (first.outcome, len(first.alerts)) == ("accepted", 1)
    assert (again.outcome, again.alerts) == ("duplicate", [])


def test_a_duplicate_event_id_with_a_higher_grade_raises_no_alert() -> None:
    events = [infusion(at(0)), crs(2, at(1), event_id="r1"), crs(4, at(1), event_id="r1")]
    assert levels(events) == [2]


def test_an_adverse_event_before_infusion_fires_when_the_infusion_arrives() -> None:
    events = [crs(3, at(2)), lab("CRP", 120, at(2)), infusion(at(0), event_id="inf-1")]
    (alert,) = alerts_of(events)
    assert (alert.level, alert.source_event_id) == (3, "inf-1")
    assert datetime.fromisoformat(alert.triggered_at) == datetime.fromisoformat(at(0))


def test_an_adverse_event_with_onset_before_t0_never_fires() -> None:
    events = [infusion(at(0)), crs(4, at(-1), reported=at(1)), observation("ice_score", 10, at(3))]
    assert alerts_of(events) == []


def test_an_earlier_infusion_arriving_later_can_make_an_event_fire() -> None:
    events = [infusion(at(5)), crs(3, at(2)), infusion(at(0), event_id="inf-early")]
    (alert,) = alerts_of(events)
    assert alert.source_event_id == "inf-early"


def test_a_patient_never_infused_raises_no_alert() -> None:
    assert alerts_of([crs(4, at(1)), icans(4, at(2))]) == []


def test_each_patient_has_alerts_of_their_own() -> None:
    events = [
        infusion(at(0), patient="A"),
        infusion(at(0), patient="B"),
        crs(2, at(1), patient="A"),
        crs(2, at(1), patient="B"),
    ]
    assert [a.alert_id for a in alerts_of(events)] == ["T1:A:crs_grade:2", "T1:B:crs_grade:2"]


# --- withdrawn grades ----------------------------------------------------------------


def test_a_grade_entered_in_error_raises_no_alert() -> None:
    events = [infusion(at(0)), crs(4, at(1), status="entered_in_error")]
    assert alerts_of(events) == []


def test_a_withdrawn_report_suppresses_a_later_report_of_the_same_event() -> None:
    events = [
        infusion(at(0)),
        crs(2, at(1), status="entered_in_error"),
        crs(4, at(1), reported=at(3)),
    ]
    assert alerts_of(events) == []


def test_after_a_withdrawal_a_new_higher_grade_fires() -> None:
    events = [
        infusion(at(0)),
        crs(2, at(1), ae_id="A"),
        crs(2, at(1), ae_id="A", reported=at(2), status="entered_in_error"),
        crs(3, at(4), ae_id="B"),
    ]
    assert levels(events) == [2, 3]


def test_after_a_withdrawal_reaching_the_same_level_again_gives_no_second_alert() -> None:
    events = [
        infusion(at(0)),
        crs(2, at(1), ae_id="A"),
        crs(2, at(1), ae_id="A", reported=at(2), status="entered_in_error"),
        crs(2, at(4), ae_id="B"),
    ]
    assert levels(events) == [2]


# --- thresholds are configurable ---------------------------------------------------------


def test_a_raised_crs_threshold_silences_grade_two() -> None:
    events = [infusion(at(0)), crs(2, at(1)), crs(3, at(1), reported=at(2))]
    (alert,) = alerts_of(events, RuleThresholds(crs_grade_min=3))
    assert (alert.level, alert.threshold, alert.severity) == (3, 3, "critical")


def test_a_raised_icans_threshold_silences_grade_one() -> None:
    events = [infusion(at(0)), icans(1, at(5))]
    assert alerts_of(events, RuleThresholds(icans_grade_min=2)) == []


def test_the_default_thresholds_are_the_contracts() -> None:
    assert (RuleThresholds().crs_grade_min, RuleThresholds().icans_grade_min) == (2, 1)
