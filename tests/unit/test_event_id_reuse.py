"""An event_id is unique per event across trials and patients (CONTRACT 1), and "a second
event with an event_id already seen is ignored, whatever it holds" (CONTRACT 2): also when
it names another patient or another trial. Offline (replay) and in the worker, also after a
restart, a failed batch, and for ids another worker's patients used."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cartwatch.alerts.replay import replay
from cartwatch.alerts.rules import RuleThresholds
from tests.unit.builders import at, crs, infusion
from tests.unit.worker_doubles import process, worker_with_doubles

AS_OF_FAR = datetime(2030, 1, 1, tzinfo=UTC)


def _lines(*events: dict) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def test_an_id_reused_for_another_patient_or_trial_is_ignored_offline():
    events = [
        infusion(at(0), patient="A", event_id="d1"),
        infusion(at(1), patient="B", event_id="d1"),  # another patient: ignored
        infusion(at(0), patient="C", trial="T2", event_id="d2"),
        infusion(at(0), patient="C", trial="T3", event_id="d2"),  # another trial: ignored
        crs(3, at(2), patient="A", event_id="d3"),
        crs(4, at(2), patient="C", trial="T2", event_id="d3"),  # its alerts too
    ]
    result = replay(_lines(*events), AS_OF_FAR, RuleThresholds())
    assert (result.accepted, result.duplicates) == (3, 3)
    assert {t["trial_id"]: t["n_infused"] for t in result.report["trials"]} == {"T1": 1, "T2": 1}
    assert [a.alert_id for a in result.alerts] == ["T1:A:crs_grade:3"]


def test_the_first_use_wins_whatever_the_later_one_holds():
    first = infusion(at(5), patient="B", event_id="same")
    later = infusion(at(0), patient="A", event_id="same")
    result = replay(_lines(first, later), AS_OF_FAR, RuleThresholds())
    (trial,) = result.report["trials"]
    assert trial["n_infused"] == 1 and set(result.records) == {"2:T1:B"}


def _run(worker, changelogs, *events: dict) -> list[str]:
    """One batch, its changelog records acknowledged; the keys of the records it stored."""
    return process(worker, changelogs, *events)[0]


def test_a_worker_ignores_an_id_reused_for_another_patient(tmp_path: Path):
    worker, *changelogs = worker_with_doubles(tmp_path)
    stored = _run(
        worker,
        changelogs,
        infusion(at(0), patient="A", event_id="d1"),
        infusion(at(0), patient="B", event_id="d1"),
    )
    assert stored == ["2:T1:A"]


def test_a_restarted_worker_knows_the_ids_its_table_holds(tmp_path: Path):
    first, *first_changelogs = worker_with_doubles(tmp_path / "first")
    _run(first, first_changelogs, infusion(at(0), patient="A", event_id="d1"))
    second, *second_changelogs = worker_with_doubles(tmp_path / "second")
    second.patient_to_record.data.update(first.patient_to_record.data)
    reused = infusion(at(0), patient="B", event_id="d1")
    assert _run(second, second_changelogs, reused, infusion(at(0), patient="C")) == ["2:T1:C"]


def test_the_ids_of_another_workers_patients_are_known_after_a_refresh(tmp_path: Path):
    other, *other_changelogs = worker_with_doubles(tmp_path / "other")
    worker, *changelogs = worker_with_doubles(tmp_path / "this")
    _run(worker, changelogs, infusion(at(0), patient="X"))  # this worker is running
    _run(other, other_changelogs, infusion(at(0), patient="A", event_id="d1"))
    worker.patient_to_record.data.update(other.patient_to_record.data)  # its table copy
    asyncio.run(worker.gauges.refresh_trials())
    assert _run(worker, changelogs, infusion(at(0), patient="B", event_id="d1")) == []


def test_a_failed_batch_leaves_no_claim_on_its_ids(tmp_path: Path, monkeypatch):
    worker, *changelogs = worker_with_doubles(tmp_path)
    _run(worker, changelogs, infusion(at(0), patient="X"))

    async def broker_gone(*args, **kwargs):
        raise ConnectionError("broker gone")

    with monkeypatch.context() as patch:  # the batch is applied, then its sends fail
        patch.setattr(worker.app.producer, "send", broker_gone)
        with pytest.raises(ConnectionError):
            _run(worker, changelogs, infusion(at(0), patient="A", event_id="d1"))
    worker.processor.discard()  # as the input path does when a batch fails
    # The failed batch stored nothing: the id's first use is the one that comes now.
    assert _run(worker, changelogs, infusion(at(0), patient="B", event_id="d1")) == ["2:T1:B"]
