"""A batch of the worker is finished (and its events may be acknowledged, then committed)
only once every table changelog record it wrote is acknowledged by the broker.

Faust commits acknowledged offsets after `producer.flush()`, which stops waiting for its
buffer after 0.1 s without a send; a worker killed after such a commit lost the table
updates still in the buffer. Here the broker is replaced by futures the test resolves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cartwatch.alerts.pipeline import record_key
from tests.unit.builders import at, crs, infusion
from tests.unit.worker_doubles import events_of, process, settle, worker_with_doubles


def test_a_batch_waits_for_its_alert_entry_then_its_record(tmp_path: Path):
    async def scenario() -> None:
        worker, records, alerts = worker_with_doubles(tmp_path)
        batch = events_of(worker, infusion(at(0)), crs(3, at(2)))

        task = asyncio.ensure_future(worker.processor.process(batch))
        await settle()

        # the alert's table entry first, on the partition of the input; the record waits
        # (a record on the broker without its alert's entry would skip the entry for good)
        assert [(p, k) for p, k, *_ in alerts.sent] == [(3, "T1:P1:crs_grade:3")]
        assert records.sent == []
        alerts.ack_all()
        await settle()
        assert [(p, k) for p, k, *_ in records.sent] == [(3, record_key("T1", "P1"))]
        assert not task.done()  # the record is not on the broker yet
        records.ack_all()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(scenario())


def test_a_batch_without_alerts_waits_for_its_record(tmp_path: Path):
    async def scenario() -> None:
        worker, records, alerts = worker_with_doubles(tmp_path)

        task = asyncio.ensure_future(worker.processor.process(events_of(worker, infusion(at(0)))))
        await settle()

        assert len(records.sent) == 1 and alerts.sent == []
        assert not task.done()
        records.ack_all()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(scenario())


def _alerts_published(worker) -> list[bytes | None]:
    producer = worker.app.producer.send.__self__  # the test's stand-in (worker_doubles)
    return [key for topic, _, key, _ in producer.sent if topic == worker.settings.alerts_topic]


def test_an_alert_read_again_after_a_crash_is_not_sent_twice(tmp_path: Path):
    """A crash after the alert's table entry, before the patient's record (or the offsets):
    the restarted worker reads the events again and raises the alert again."""
    events = (infusion(at(0)), crs(3, at(2)))
    first, *first_changelogs = worker_with_doubles(tmp_path / "first")
    process(first, first_changelogs, *events)
    assert _alerts_published(first) == [b"P1"]

    second, *second_changelogs = worker_with_doubles(tmp_path / "second")
    second.alert_id_to_alert.data.update(first.alert_id_to_alert.data)  # the record was lost
    process(second, second_changelogs, *events)
    assert _alerts_published(second) == []
    assert [k for _, k, *_ in second_changelogs[0].sent] == [record_key("T1", "P1")]

    third, *third_changelogs = worker_with_doubles(tmp_path / "third")  # no entry: sent
    process(third, third_changelogs, *events)
    assert _alerts_published(third) == [b"P1"]
