"""A batch's alerts go out when it is applied; a checkpoint is finished (and its input
offsets may be committed) only once every table changelog record it wrote is acknowledged
by the broker. Here the broker is replaced by futures the test resolves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cartwatch.alerts.pipeline import record_key
from cartwatch.models.record_codec import decode_record
from tests.unit.builders import at, crs, infusion, lab
from tests.unit.worker_doubles import events_of, process, processed, settle, worker_with_doubles


def test_a_batch_waits_for_its_alert_entry_then_its_record(tmp_path: Path):
    async def scenario() -> None:
        worker, records, alerts = worker_with_doubles(tmp_path)
        batch = events_of(worker, infusion(at(0)), crs(3, at(2)))

        task = asyncio.ensure_future(processed(worker, batch))
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

        task = asyncio.ensure_future(processed(worker, events_of(worker, infusion(at(0)))))
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


def test_a_checkpoint_writes_each_patient_touched_by_its_batches_once(tmp_path: Path):
    async def scenario() -> None:
        worker, records, alerts = worker_with_doubles(tmp_path)
        records.acks_at_once = alerts.acks_at_once = True
        first = events_of(worker, infusion(at(0)), crs(3, at(2)))
        second = events_of(worker, lab("CRP", 5.0, at(3)), lab("CRP", 6.0, at(4)))
        for n, message in enumerate(second, start=len(first)):
            message.offset = n
        await worker.processor.apply(first)
        # the first batch's alert is out at once; its record waits for the checkpoint
        assert [k for _, k, *_ in alerts.sent] == ["T1:P1:crs_grade:3"]
        assert _alerts_published(worker) == [b"P1"] and records.sent == []
        await worker.processor.apply(second)
        assert records.sent == []
        await worker.processor.checkpoint()
        [(_, key, value, _)] = records.sent  # one write for two batches
        assert key == record_key("T1", "P1") and decode_record(value).arrivals == 4
        await worker.processor.checkpoint()  # nothing new: nothing written
        assert len(records.sent) == 1

    asyncio.run(scenario())
