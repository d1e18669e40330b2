"""A batch whose sends fail, or a worker that dies mid-batch, leaves nothing that would make
the events read again look processed: no record or alert entry this worker holds before the
broker acknowledged it, no boundary level remembered from a batch that did not finish, and
an alert raised again after a crash is stored (its row) but not sent twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.pipeline import record_key
from cartwatch.models.record_codec import decode_record
from tests.unit.builders import at, crs, infusion, lab
from tests.unit.worker_doubles import events_of, process, processed, worker_with_doubles

KEY = record_key("T1", "P1")


def _fail_batch(worker, changelogs, failing, *events: dict) -> None:
    """Run a batch whose records on the `failing` changelog are refused by the broker (the
    others acknowledged), and do what the input path does when a batch raises."""

    async def run() -> None:
        task = asyncio.ensure_future(processed(worker, events_of(worker, *events)))
        while not task.done():
            for changelog in changelogs:
                for *_, future in changelog.sent:
                    if not future.done() and changelog is failing:
                        future.set_exception(ConnectionError("broker gone"))
                    elif not future.done():
                        future.set_result(None)
            await asyncio.sleep(0)
        task.result()

    with pytest.raises(ConnectionError):
        asyncio.run(run())
    worker.processor.discard()  # InputConsumer._read_again


def test_a_record_the_broker_refused_is_written_again_when_its_events_come_again(tmp_path: Path):
    worker, records, alerts = worker_with_doubles(tmp_path)
    events = (infusion(at(0)), lab("CRP", 5.0, at(1)))
    _fail_batch(worker, [records, alerts], records, *events)
    assert KEY not in worker.patient_to_record.data and KEY not in worker.store.owned

    written, _ = process(worker, [records, alerts], *events)
    assert written == [KEY]
    assert decode_record(worker.patient_to_record.data[KEY]).arrivals == 2


def test_an_alert_entry_the_broker_refused_is_written_again(tmp_path: Path):
    worker, records, alerts = worker_with_doubles(tmp_path)
    events = (infusion(at(0)), crs(3, at(2)))
    _fail_batch(worker, [records, alerts], alerts, *events)
    assert "T1:P1:crs_grade:3" not in worker.alert_id_to_alert.data

    _, entries = process(worker, [records, alerts], *events)
    assert entries == ["T1:P1:crs_grade:3"]


# The toxicity boundary (Bayesian default, 4 DLTs among the first evaluable patients): the
# scenario of tests/unit/test_worker_restart.py.
SAFE, TOXIC = ("P1", "P2", "P3"), ("P4", "P5", "P6")
BEFORE = [
    *(infusion(at(0), patient=p) for p in SAFE),
    lab("CRP", 5.0, at(29), patient="P1"),
    *(infusion(at(30), patient=p) for p in TOXIC),
    infusion(at(0), patient="P7"),
]
AFTER = [crs(4, at(1), patient="P7"), crs(4, at(2), patient="P1")] + [
    crs(4, at(32 + i), patient=p) for i, p in enumerate(TOXIC)
]
BOUNDARY = "T1::toxicity_boundary:1"


class Rows:
    """Stands in for the storage writer: keeps what it is given; `fail` makes flush raise."""

    def __init__(self, fail: bool = False) -> None:
        self.items: list = []
        self.fail = fail

    async def put(self, item) -> None:
        self.items.append(item)

    async def flush(self, timeout: float | None = None) -> None:
        if self.fail:
            raise ConnectionError("database gone")


def _sent_alerts(worker) -> list[str]:
    producer = worker.app.producer.send.__self__  # the test's stand-in (worker_doubles)
    topic = worker.settings.alerts_topic
    return [value for t, _, _, value in producer.sent if t == topic]


def test_a_boundary_alert_lost_with_its_database_row_is_stored_after_a_restart(tmp_path):
    first, *first_changelogs = worker_with_doubles(tmp_path / "first")
    process(first, first_changelogs, *BEFORE)
    first.processor.writer = Rows(fail=True)  # the worker dies during the database step
    with pytest.raises(ConnectionError):
        process(first, first_changelogs, *AFTER)
    assert any(BOUNDARY.encode() in value for value in _sent_alerts(first))
    assert BOUNDARY in first.alert_id_to_alert.data  # on the broker, its entry written

    second, *second_changelogs = worker_with_doubles(tmp_path / "second")
    second.patient_to_record.data.update(first.patient_to_record.data)
    second.alert_id_to_alert.data.update(first.alert_id_to_alert.data)
    second.processor.writer = rows = Rows()
    process(second, second_changelogs, *AFTER)
    assert [a.alert_id for a in rows.items if isinstance(a, AlertRaised)].count(BOUNDARY) == 1
    assert not any(BOUNDARY.encode() in value for value in _sent_alerts(second))  # not twice


def test_a_batch_that_failed_leaves_no_boundary_level_behind(tmp_path, monkeypatch):
    worker, *changelogs = worker_with_doubles(tmp_path)
    process(worker, changelogs, *BEFORE)

    async def broker_gone(*args, **kwargs):
        raise ConnectionError("broker gone")

    with monkeypatch.context() as patch:  # the boundary was judged crossed, nothing sent
        patch.setattr(worker.app.producer, "send", broker_gone)
        with pytest.raises(ConnectionError):
            process(worker, changelogs, *AFTER)
    worker.processor.discard()  # as the input path does when a batch fails
    process(worker, changelogs, *AFTER)
    assert sum(BOUNDARY.encode() in value for value in _sent_alerts(worker)) == 1
