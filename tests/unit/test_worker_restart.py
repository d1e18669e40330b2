"""A restarted worker judges the trial's stopping boundary on the whole trial.

The trial monitor (cartwatch.alerts.engine.TrialMonitor) is the worker's memory of every patient's
DLT course. After a restart (or a rebalance) the patient table is recovered before any
event comes, but a monitor that learnt only from the events processed since would see the
patients of those events alone: three DLTs among them read as "3 of the first 3 evaluable"
and crossed the boundary that the whole trial ("3 of 6") does not (seen after a SIGKILL).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from cartwatch.alerts.replay import replay
from tests.unit.builders import at, crs, infusion, lab
from tests.unit.worker_doubles import process, worker_with_doubles

SAFE = ("P1", "P2", "P3")  # infused on day 0, no DLT: evaluable on day 28
TOXIC = ("P4", "P5", "P6")  # infused on day 30, grade 4 CRS on days 32-34


def _before_the_restart() -> list[dict]:
    events = [infusion(at(0), patient=p) for p in SAFE]
    events.append(lab("CRP", 5.0, at(29), patient="P1"))  # the trial's clock passes day 28
    events += [infusion(at(30), patient=p) for p in TOXIC]
    return events


def _after_the_restart() -> list[dict]:
    return [crs(4, at(32 + i), patient=p) for i, p in enumerate(TOXIC)]


def _processed(worker, events: list[dict], changelogs) -> list[str]:
    """Run one batch and acknowledge its changelog records; the ids of the alerts raised."""
    return process(worker, changelogs, *events)[1]


def test_a_restarted_worker_raises_the_alerts_of_an_uninterrupted_run(tmp_path: Path):
    first, *first_changelogs = worker_with_doubles(tmp_path / "first")
    assert _processed(first, _before_the_restart(), first_changelogs) == []

    # the restart: a new worker whose table holds what the first one wrote
    second, *second_changelogs = worker_with_doubles(tmp_path / "second")
    second.patient_to_record.data.update(first.patient_to_record.data)
    raised = _processed(second, _after_the_restart(), second_changelogs)

    events = _before_the_restart() + _after_the_restart()
    lines = [json.dumps(e).encode() for e in events]
    as_of = max(datetime.fromisoformat(e["occurred_at"]) for e in events)
    uninterrupted = replay(lines, as_of, second.settings.thresholds)
    assert raised == [a.alert_id for a in uninterrupted.alerts]
    assert "T1::toxicity_boundary:1" not in raised  # 3 DLTs of 6 evaluable stay inside it
    report = second.view.toxicity_boundary("T1")["status"]
    assert (report["n_evaluable"], report["n_dlt"], report["crossed"]) == (6, 3, False)


def test_the_restarted_worker_still_fires_when_the_whole_trial_crosses(tmp_path: Path):
    """The same restart with a fourth DLT patient among the first four evaluable."""
    first, *first_changelogs = worker_with_doubles(tmp_path / "first")
    before = [*_before_the_restart(), infusion(at(0), patient="P7")]
    _processed(first, before, first_changelogs)
    second, *second_changelogs = worker_with_doubles(tmp_path / "second")
    second.patient_to_record.data.update(first.patient_to_record.data)

    after = [crs(4, at(1), patient="P7"), crs(4, at(2), patient="P1"), *_after_the_restart()]
    raised = _processed(second, after, second_changelogs)

    assert [k for k in raised if "toxicity_boundary" in k] == ["T1::toxicity_boundary:1"]
