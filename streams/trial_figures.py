"""Every trial's gauge figures from one listing of the records, computed off the event loop.

At 3,300 patients of one trial the report, the toxicity boundary and the on-study counts
each held the event loop for 14-59 ms in one step (90-250 ms at 10,000), and every event
waited behind them. The worker computes them in a thread (`asyncio.to_thread`) over a
listing: records are replaced, never changed in place, once listed (streams/tables.py), so
a batch may go on meanwhile. Only the gauges are set back in the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.cohort import add_outcomes, trial_report
from models.dlt import boundary_report
from models.outcomes import PatientOutcome
from models.patient import PatientRecord
from models.stopping import StoppingConfig
from streams.metrics import Metrics, on_study_by_days


@dataclass(frozen=True)
class TrialFigures:
    """What the trial gauges show, as of one listing of the records."""

    reports: list[dict]  # one trial report per trial (models.cohort.trial_report)
    boundaries: dict[str, dict]  # trial -> toxicity boundary status (models.dlt)
    on_study: dict[str, dict[str, int]]  # trial -> days bucket -> patients on study

    def show(self, metrics: Metrics) -> None:
        """Set the trial gauges."""
        for report in self.reports:
            metrics.observe_report(report)
        for trial, status in self.boundaries.items():
            metrics.observe_boundary(trial, status)
        metrics.observe_trial_operations(self.on_study)


def trial_figures(
    records: Sequence[PatientRecord], now: float, toxicity: StoppingConfig
) -> TrialFigures:
    """Every trial's report, boundary status and on-study counts as of `now`."""
    outcomes: dict[str, list[PatientOutcome]] = {}
    add_outcomes(outcomes, records, now)
    by_trial: dict[str, list[PatientRecord]] = {}
    for record in records:
        by_trial.setdefault(record.trial_id, []).append(record)
    trials = sorted(by_trial)
    return TrialFigures(
        reports=[trial_report(trial, outcomes[trial]) for trial in trials],
        boundaries={t: boundary_report(by_trial[t], toxicity, now)["status"] for t in trials},
        on_study=on_study_by_days(records, now),
    )
