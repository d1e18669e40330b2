"""The engine evaluates a rule only after events that feed it; the alerts stay the same."""

from __future__ import annotations

import json

import pytest

from cartwatch.alerts import engine
from cartwatch.alerts.replay import replay
from cartwatch.alerts.rules import PATIENT_RULES, RULE_INPUTS, RuleThresholds, rules_for
from cartwatch.models.codec import decode_event
from cartwatch.streams.devtools.simulator import simulate_trial
from tests.unit.builders import alerts_of, at, infusion, observation


def test_every_patient_rule_declares_its_inputs():
    assert set(RULE_INPUTS) == set(PATIENT_RULES)


@pytest.mark.parametrize("seed", [2026, 7])
def test_skipping_rules_an_event_cannot_change_gives_the_same_alerts(seed, monkeypatch):
    trial = simulate_trial(seed=seed)
    lines = list(trial.lines())
    skipping = replay(lines, trial.data_cut, RuleThresholds())
    monkeypatch.setattr(engine, "rules_for", lambda event: list(PATIENT_RULES))
    every_rule = replay(lines, trial.data_cut, RuleThresholds())
    assert [a.alert_id for a in skipping.alerts] == [a.alert_id for a in every_rule.alerts]
    assert [a.source_event_id for a in skipping.alerts] == [
        a.source_event_id for a in every_rule.alerts
    ]
    assert len(skipping.alerts) > 100


# One observation of every code the contract knows (CONTRACT 1), each pointing to a grade.
EVERY_CODE = [
    ("temperature_c", 38.6),
    ("systolic_bp_mmhg", 82),
    ("vasopressors", 1),
    ("oxygen", {"device": "facemask", "flow_lpm": None}),
    ("anti_cytokine_given", True),
    ("ice_score", 5),
    ("consciousness", "awakens_to_voice"),
    ("seizure", "self_limiting"),
    ("motor_weakness", True),
    ("cerebral_edema", "diffuse"),
]


def test_every_observation_code_feeds_a_derived_rule():
    fed = {key.partition(":")[2] for inputs in RULE_INPUTS.values() for key in inputs}
    assert {code for code, _ in EVERY_CODE} <= fed


@pytest.mark.parametrize("rotation", range(len(EVERY_CODE)))
def test_observations_in_any_order_give_the_alerts_of_evaluating_every_rule(rotation, monkeypatch):
    # Each code arrives first, last and in between, also before the infusion it follows.
    codes = EVERY_CODE[rotation:] + EVERY_CODE[:rotation]
    events = [observation(code, value, at(1, 600 * i)) for i, (code, value) in enumerate(codes)]
    events.insert(rotation % 4, infusion(at(0)))
    skipping = alerts_of(events)
    monkeypatch.setattr(engine, "rules_for", lambda event: list(PATIENT_RULES))
    every_rule = alerts_of(events)
    assert [(a.alert_id, a.source_event_id) for a in skipping] == [
        (a.alert_id, a.source_event_id) for a in every_rule
    ]
    assert {a.rule for a in skipping} == {"crs_derived", "icans_derived"}


def test_treatment_reported_after_the_hypotension_raises_crs_derived_by_itself():
    # T2 footnote: after anti-cytokine therapy hypotension counts without fever; the
    # treatment's record arriving late is what completes grade 2.
    treatment = observation("anti_cytokine_given", True, at(1), event_id="late-treatment")
    events = [infusion(at(0)), observation("systolic_bp_mmhg", 80, at(1, 3600)), treatment]
    (alert,) = alerts_of(events)
    assert (alert.rule, alert.level, alert.source_event_id) == ("crs_derived", 2, "late-treatment")


# Observations within normal limits: no CRS sign (Table 2) and no ICANS domain (Table 5).
NO_SIGN = [
    ("temperature_c", 37.9),
    ("systolic_bp_mmhg", 90),
    ("vasopressors", 0),
    ("oxygen", {"device": "room_air", "flow_lpm": None}),
    ("anti_cytokine_given", False),
    ("ice_score", 10),
    ("consciousness", "awake"),
    ("seizure", "none"),
    ("motor_weakness", False),
    ("cerebral_edema", "none"),
]


def _decoded(message: dict):
    return decode_event(json.dumps(message))


@pytest.mark.parametrize(("code", "value"), NO_SIGN)
def test_an_observation_pointing_to_no_sign_evaluates_no_rule(code, value):
    assert rules_for(_decoded(observation(code, value, at(1)))) == ()


@pytest.mark.parametrize(("code", "value"), EVERY_CODE)
def test_an_observation_pointing_to_a_sign_evaluates_its_derived_rule(code, value):
    (rule,) = rules_for(_decoded(observation(code, value, at(1))))
    assert rule.__name__ in {"evaluate_crs_derived", "evaluate_icans_derived"}


def test_normal_observations_between_signs_give_the_alerts_of_evaluating_every_rule(monkeypatch):
    # A sign-free observation between two signs and after a treatment changes no grade.
    normal = [
        observation(c, v, at(1, 60 * i), event_id=f"n{i}") for i, (c, v) in enumerate(NO_SIGN)
    ]
    events = [infusion(at(0)), *normal[:5], observation("temperature_c", 39, at(1, 900))]
    events += [*normal[5:], observation("oxygen", {"device": "facemask", "flow_lpm": 8}, at(1))]
    skipping = alerts_of(events)
    monkeypatch.setattr(engine, "rules_for", lambda event: list(PATIENT_RULES))
    every_rule = alerts_of(events)
    assert [(a.alert_id, a.source_event_id) for a in skipping] == [
        (a.alert_id, a.source_event_id) for a in every_rule
    ]
    assert [a.level for a in skipping] == [3]
