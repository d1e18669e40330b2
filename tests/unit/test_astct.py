"""ASTCT 2019 consensus grades derived from observations (Lee et al., BBMT 2019;25:625-638).

Every row cites the line of the consensus it checks: "T2" is Table 2 (CRS), "T5" Table 5
(ICANS, adults), "ICE" Table 4 (the ICE score).
"""

from __future__ import annotations

import pytest

from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.astct import (
    CrsSigns,
    crs_grade,
    hypotension_grade,
    hypoxia_grade,
    icans_domain_grade,
    is_fever,
    peak_crs_grade,
    peak_icans_grade,
)
from tests.unit.builders import alerts_of, at, infusion, observation

HOUR = 3600.0


@pytest.mark.parametrize(
    ("temperature", "fever", "source"),
    [
        (38.0, True, "T2: fever is a temperature >= 38 C"),
        (37.9, False, "T2: 37.9 C is below 38 C, no fever"),
        (40.5, True, "T2"),
    ],
)
def test_fever_starts_at_thirty_eight_degrees(temperature: float, fever: bool, source: str):
    assert is_fever(temperature) is fever, source


@pytest.mark.parametrize(
    ("systolic", "vasopressors", "grade", "source"),
    [
        (90.0, None, 0, "T2 note: hypotension is systolic < 90 mmHg; 90 is not"),
        (89.9, None, 2, "T2 grade 2: hypotension not requiring vasopressors"),
        (None, 0, 0, "T2: no vasopressor running"),
        (None, 1, 3, "T2 grade 3: requiring a vasopressor with or without vasopressin"),
        (None, 2, 4, "T2 grade 4: requiring multiple vasopressors (excluding vasopressin)"),
        (85.0, 1, 3, "T2: graded by treatment, one vasopressor is 3 whatever the pressure"),
    ],
)
def test_hypotension_is_graded_by_its_treatment(systolic, vasopressors, grade: int, source: str):
    assert hypotension_grade(systolic, vasopressors) == grade, source


def test_vasopressin_alone_is_not_a_second_vasopressor():
    # CONTRACT 1: the count excludes vasopressin, so norepinephrine + vasopressin is 1.
    assert hypotension_grade(vasopressors=1) == 3  # T2 grade 3, not 4


@pytest.mark.parametrize(
    ("device", "flow", "grade", "source"),
    [
        ("room_air", None, 0, "T2: no oxygen needed"),
        ("blow_by", None, 2, "T2 grade 2: blow-by"),
        ("low_flow_cannula", 6.0, 2, "T2 grade 2: low-flow cannula <= 6 L/min (exactly 6)"),
        ("low_flow_cannula", 6.5, 3, "T2 grade 3: > 6 L/min is high flow"),
        ("low_flow_cannula", None, 2, "T2: a low-flow cannula is <= 6 L/min by definition"),
        ("high_flow_cannula", 10.0, 3, "T2 grade 3: high-flow nasal cannula"),
        ("facemask", None, 3, "T2 grade 3: facemask"),
        ("nonrebreather", None, 3, "T2 grade 3: non-rebreather mask"),
        ("venturi", None, 3, "T2 grade 3: Venturi mask"),
        ("cpap", None, 4, "T2 grade 4: positive pressure (CPAP)"),
        ("bipap", None, 4, "T2 grade 4: positive pressure (BiPAP)"),
        ("mechanical_ventilation", None, 4, "T2 grade 4: intubation and mechanical ventilation"),
    ],
)
def test_hypoxia_is_graded_by_oxygen_support(device: str, flow, grade: int, source: str):
    assert hypoxia_grade(device, flow) == grade, source


def test_exactly_six_litres_per_minute_is_grade_two():
    assert hypoxia_grade("low_flow_cannula", 6) == 2


@pytest.mark.parametrize(
    ("signs", "grade", "source"),
    [
        (CrsSigns(False, False, 0, 0), 0, "T2: no fever, no CRS"),
        (CrsSigns(True, False, 0, 0), 1, "T2 grade 1: fever alone"),
        (CrsSigns(False, False, 3, 4), 0, "T2: fever is required before treatment"),
        (CrsSigns(False, True, 3, 0), 3, "T2 note: after anti-cytokine therapy no fever needed"),
        (CrsSigns(False, True, 0, 0), 0, "T2: treated, nothing left to grade"),
        (CrsSigns(True, False, 2, 3), 3, "T2: the more severe of hypotension and hypoxia"),
        (CrsSigns(True, False, 4, 2), 4, "T2: the more severe of hypotension and hypoxia"),
    ],
)
def test_the_crs_grade_follows_table_two(signs: CrsSigns, grade: int, source: str):
    assert crs_grade(signs) == grade, source


@pytest.mark.parametrize(
    ("code", "value", "grade", "source"),
    [
        ("ice_score", 10, 0, "ICE: 10 is normal"),
        ("ice_score", 9, 1, "T5 grade 1: ICE 7-9"),
        ("ice_score", 7, 1, "T5 grade 1: ICE 7-9 (lower edge)"),
        ("ice_score", 6, 2, "T5 grade 2: ICE 3-6 (upper edge)"),
        ("ice_score", 3, 2, "T5 grade 2: ICE 3-6 (lower edge)"),
        ("ice_score", 2, 3, "T5 grade 3: ICE 0-2"),
        ("ice_score", 0, 3, "T5 grade 3: ICE 0 while arousable (4 needs unarousable)"),
        ("consciousness", "awake", 0, "T5: awake"),
        ("consciousness", "awakens_to_voice", 2, "T5 grade 2: awakens to voice"),
        ("consciousness", "awakens_to_touch", 3, "T5 grade 3: awakens only to tactile stimulus"),
        ("consciousness", "unarousable", 4, "T5 grade 4: unarousable"),
        ("seizure", "none", 0, "T5: no seizure"),
        ("seizure", "self_limiting", 3, "T5 grade 3: clinical seizure that resolves rapidly"),
        ("seizure", "prolonged", 4, "T5 grade 4: prolonged (> 5 min) or repetitive seizures"),
        ("motor_weakness", True, 4, "T5 grade 4: deep focal motor weakness"),
        ("motor_weakness", False, 0, "T5"),
        ("cerebral_edema", "none", 0, "T5"),
        ("cerebral_edema", "focal", 3, "T5 grade 3: focal/local edema on neuroimaging"),
        ("cerebral_edema", "diffuse", 4, "T5 grade 4: diffuse cerebral edema"),
    ],
)
def test_each_icans_domain_follows_table_five(code: str, value, grade: int, source: str):
    assert icans_domain_grade(code, value) == grade, source


def test_the_icans_grade_is_the_most_severe_domain():
    observed = [
        (0, "ice_score", 8),
        (1, "consciousness", "awakens_to_touch"),
        (2, "seizure", "none"),
    ]
    assert peak_icans_grade(observed) == 3  # T5: the most severe domain


# --- CRS signs over time: the window ------------------------------------------------


def test_fever_and_hypoxia_within_the_window_make_grade_two():
    observed = [(0, "temperature_c", 38.5), (23 * HOUR, "oxygen", ("low_flow_cannula", 3))]
    assert peak_crs_grade(observed, None) == 2


def test_signs_exactly_a_window_apart_still_count_together():
    observed = [(0, "temperature_c", 38.5), (24 * HOUR, "vasopressors", 1)]
    assert peak_crs_grade(observed, None) == 3


def test_signs_further_apart_than_the_window_do_not():
    observed = [(0, "temperature_c", 38.5), (24 * HOUR + 1, "vasopressors", 1)]
    assert peak_crs_grade(observed, None) == 1


def test_the_window_is_configurable():
    observed = [(0, "temperature_c", 38.5), (30 * HOUR, "vasopressors", 2)]
    assert peak_crs_grade(observed, None, window_s=36 * HOUR) == 4


def test_hypotension_after_anti_cytokine_therapy_needs_no_fever():
    observed = [(5 * HOUR, "systolic_bp_mmhg", 80)]
    assert peak_crs_grade(observed, anti_cytokine_from=4 * HOUR) == 2
    assert peak_crs_grade(observed, anti_cytokine_from=6 * HOUR) == 0  # before treatment


def test_the_peak_does_not_depend_on_the_order_of_observations():
    observed = [
        (0, "temperature_c", 39.0),
        (2 * HOUR, "oxygen", ("facemask", None)),
        (50 * HOUR, "vasopressors", 2),
        (60 * HOUR, "temperature_c", 37.0),
    ]
    assert peak_crs_grade(observed, None) == peak_crs_grade(observed[::-1], None) == 3


# --- the rules -------------------------------------------------------------------------


def rules_fired(events: list[dict], thresholds: RuleThresholds | None = None) -> list[tuple]:
    derived = ("crs_derived", "icans_derived")
    return [(a.rule, a.level) for a in alerts_of(events, thresholds) if a.rule in derived]


def test_crs_derived_fires_at_grade_two_then_at_each_new_level():
    events = [
        infusion(at(0)),
        observation("temperature_c", 38.4, at(1)),  # grade 1: below the default of 2
        observation("oxygen", {"device": "low_flow_cannula", "flow_lpm": 6}, at(1, 600)),
        observation("oxygen", {"device": "high_flow_cannula", "flow_lpm": 20}, at(1, 1200)),
    ]
    assert rules_fired(events) == [("crs_derived", 2), ("crs_derived", 3)]


def test_crs_derived_uses_the_alert_id_scheme():
    events = [infusion(at(0)), observation("temperature_c", 39, at(1))]
    events.append(observation("vasopressors", 2, at(1, 60)))
    (alert,) = [a for a in alerts_of(events) if a.rule == "crs_derived"]
    assert (alert.alert_id, alert.severity) == ("T1:P1:crs_derived:4", "critical")


def test_icans_derived_fires_from_grade_one_with_warning_then_critical():
    events = [
        infusion(at(0)),
        observation("ice_score", 7, at(4)),
        observation("ice_score", 6, at(5)),
        observation("cerebral_edema", "focal", at(6)),
    ]
    alerts = [a for a in alerts_of(events) if a.rule == "icans_derived"]
    assert [(a.level, a.severity) for a in alerts] == [
        (1, "warning"),
        (2, "warning"),
        (3, "critical"),
    ]


def test_observations_before_the_infusion_are_not_graded():
    events = [observation("ice_score", 2, at(-1)), infusion(at(0))]
    assert rules_fired(events) == []


def test_derived_thresholds_are_configurable():
    events = [infusion(at(0)), observation("ice_score", 8, at(3))]
    assert rules_fired(events, RuleThresholds(icans_derived_min=2)) == []


# --- the record keeps the observations (compactly, JSON round trip) ------------------------


def test_a_record_with_observations_survives_a_json_round_trip_exactly():
    import json

    from cartwatch.models.patient import PatientRecord
    from tests.unit.builders import record_of

    record = record_of(
        infusion(at(0)),
        observation("oxygen", {"device": "low_flow_cannula", "flow_lpm": 4}, at(1)),
        observation("seizure", "none", at(1)),
        observation("motor_weakness", False, at(1)),
    )
    assert PatientRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert record.observations["oxygen"][0][1] == ("low_flow_cannula", 4)


def test_a_record_stored_before_observations_were_kept_still_loads():
    from cartwatch.models.patient import PatientRecord
    from tests.unit.builders import record_of

    stored = record_of(infusion(at(0))).to_dict()
    del stored["o"]
    assert PatientRecord.from_dict(stored).observations == {}
