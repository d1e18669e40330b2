"""The simulated demo trial (seed 2026) as of its data cut, replayed once per test session."""

from __future__ import annotations

from functools import cache

from cartwatch.alerts.replay import ReplayResult, replay
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.outcomes import PatientOutcome, derive_outcome
from cartwatch.streams.devtools.simulator import SimulatedTrial, simulate_trial


@cache
def demo_trial() -> SimulatedTrial:
    """simulate_trial(seed=2026): the published table at its data cut."""
    return simulate_trial(seed=2026)


@cache
def demo_replay() -> ReplayResult:
    """The demo trial through the replay core as of its data cut, accepted events kept."""
    trial = demo_trial()
    return replay(trial.lines(), trial.data_cut, RuleThresholds(), keep_events=True)


def demo_outcomes() -> list[PatientOutcome]:
    """The infused patients' outcomes as of the data cut."""
    as_of = demo_trial().data_cut.timestamp()
    found = (derive_outcome(r, as_of) for r in demo_replay().records.values())
    return [o for o in found if o is not None]
