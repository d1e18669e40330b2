"""The engine evaluates a rule only after events that feed it; the alerts stay the same."""

from __future__ import annotations

import pytest

from alerts import engine
from alerts.rules import PATIENT_RULES, RULE_INPUTS, RuleThresholds
from streams.replay import replay
from streams.simulator import simulate_trial


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
