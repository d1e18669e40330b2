"""A batch is acknowledged once everything it caused is written, and a batch that does not
finish never is: its events, and those of the batch after it, are read again.

The agent acknowledges each event itself (`stream.ack(event)`) once the batch's rows, alert
entries and records are written, which can be after it has applied the next batch and sent
that batch's alerts. `Batches` below stands in for the stream with Faust's own
`ConsumerMessage`, whose final acknowledgement reaches the consumer; the consumer records it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from faust.types.tuples import ConsumerMessage

from models.record_codec import decode_record
from streams.faust_patches import input_order
from streams.pipeline import record_key
from tests.unit.builders import at, crs, infusion
from tests.unit.worker_doubles import Event, events_of, settle, worker_with_doubles


class Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: ConsumerMessage) -> bool:
        self.acked.append(message.offset)
        return True


class Batches:
    """A stream that yields the given batches (`take_ready` never acknowledges)."""

    def __init__(self, events: list[Event], consumer: Consumer, *more: list[Event]) -> None:
        self.batches, self.consumer = [events, *more], consumer
        self.taken = 0

    async def take_events(self, max_: int, within: float):
        for batch in self.batches:
            self.taken += 1
            yield batch

    async def ack(self, event: Event) -> bool:
        return event.message.ack(self.consumer)


def consumer_events(events: list[Event]) -> list[Event]:
    """The same events carried by Faust's `ConsumerMessage`."""
    return [
        Event(
            e.value,
            ConsumerMessage(m.topic, m.partition, m.offset, 0.0, 0, None, m.key, e.value, None),
        )
        for e in events
        for m in [e.message]
    ]


def run(worker, events: list[Event], consumer: Consumer) -> None:
    agent(worker, Batches(consumer_events(events), consumer))


def agent(worker, batches: Batches) -> None:
    """The worker's agent over `batches` (in place of `take_ready` over a Faust stream)."""
    worker.take_batches = lambda stream, max_, within, _: stream.take_events(max_, within)
    asyncio.run(worker._process_patient_events(batches))


def test_a_finished_batch_is_acknowledged(tmp_path: Path):
    worker, records, alerts = worker_with_doubles(tmp_path)
    records.acks_at_once = alerts.acks_at_once = True
    consumer = Consumer()
    run(worker, events_of(worker, infusion(at(0)), crs(3, at(2))), consumer)
    assert consumer.acked == [0, 1]


def test_a_batch_whose_alert_could_not_be_sent_is_not_acknowledged(tmp_path: Path):
    worker, records, alerts = worker_with_doubles(tmp_path)
    records.acks_at_once = alerts.acks_at_once = True
    sent = worker.app.producer.send

    async def refuse_alerts(topic, *args):
        if topic == worker.settings.alerts_topic:
            raise ConnectionError("broker gone")
        return await sent(topic, *args)

    worker.app.producer.send = refuse_alerts
    consumer = Consumer()
    events = consumer_events(events_of(worker, infusion(at(0)), crs(3, at(2))))
    handed_out = input_order(worker.app.consumer)
    handed_out.restart({e.message.tp: e.message.offset + 5 for e in events})
    with pytest.raises(ConnectionError):
        agent(worker, Batches(events, consumer))
    assert consumer.acked == []
    assert records.sent == []  # nothing claims them in the table
    # and they are handed out again, each partition from the batch's first event on
    first: dict = {}
    for e in events:
        first[e.message.tp] = min(first.get(e.message.tp, e.message.offset), e.message.offset)
    assert handed_out.take_rewinds() == first


def _two_batches(worker) -> tuple[list[Event], list[Event]]:
    """P1's infusion, then P1's and P2's CRS grade 3 (one alert each) with P2's infusion."""
    events = consumer_events(
        events_of(
            worker,
            infusion(at(0)),
            infusion(at(0), patient="P2"),
            crs(3, at(2)),
            crs(3, at(2), patient="P2"),
        )
    )
    return events[:1], events[1:]


def test_the_next_batch_is_applied_and_alerted_while_the_last_one_is_written(tmp_path: Path):
    async def scenario() -> None:
        worker, records, alerts = worker_with_doubles(tmp_path)
        alerts.acks_at_once = True  # the records' changelog acknowledges when told
        consumer = Consumer()
        first, second = _two_batches(worker)
        batches = Batches(first, consumer, second)
        worker.take_batches = lambda stream, max_, within, _: stream.take_events(max_, within)
        task = asyncio.ensure_future(worker._process_patient_events(batches))
        await settle()

        # the first batch's record is on its way, unacknowledged; meanwhile the second batch
        # was applied and its two alerts sent, and its records wait for the first's
        assert [k for _, k, *_ in records.sent] == [record_key("T1", "P1")]
        producer = worker.app.producer.send.__self__  # worker_doubles.Producer
        alerts_topic = worker.settings.alerts_topic
        assert sorted(key for topic, _, key, _ in producer.sent if topic == alerts_topic) == [
            b"P1",
            b"P2",
        ]
        assert batches.taken == 2 and consumer.acked == []
        # P1's alert came from the second batch, applied on the first batch's record
        assert worker.store.read(record_key("T1", "P1")) is not None

        records.ack_all()
        await settle()
        assert consumer.acked == [0]  # the first batch, once its record is acknowledged
        assert [k for _, k, *_ in records.sent[1:]] == [record_key("T1", k) for k in ("P2", "P1")]
        records.ack_all()
        await asyncio.wait_for(task, timeout=1)
        assert consumer.acked == [0, 1, 2, 3]
        p1 = decode_record(records.sent[-1][2])
        assert len(p1.seen) == 2  # both batches' events of P1

    asyncio.run(scenario())


@pytest.mark.parametrize("failing", ["the first batch's record", "the second batch's alert"])
def test_a_failure_undoes_every_unacknowledged_batch_and_reads_them_again(
    tmp_path: Path, failing: str
):
    async def scenario() -> None:
        worker, records, alerts = worker_with_doubles(tmp_path)
        alerts.acks_at_once = True
        consumer = Consumer()
        first, second = _two_batches(worker)
        handed_out = input_order(worker.app.consumer)
        handed_out.restart({first[0].message.tp: 10})
        sent = worker.app.producer.send

        async def refuse_second_alerts(topic, key, *args):
            if topic == worker.settings.alerts_topic:
                raise ConnectionError("broker gone")
            return await sent(topic, key, *args)

        if failing == "the second batch's alert":
            worker.app.producer.send = refuse_second_alerts
        batches = Batches(first, consumer, second)
        worker.take_batches = lambda stream, max_, within, _: stream.take_events(max_, within)
        task = asyncio.ensure_future(worker._process_patient_events(batches))
        await settle()
        if failing == "the first batch's record":
            assert batches.taken == 2
            records.sent[0][3].set_exception(ConnectionError("broker gone"))
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(task, timeout=1)

        assert consumer.acked == []
        # nothing in memory claims the events: P1's record as before the first batch
        assert worker.store.read(record_key("T1", "P1")) is None
        assert worker.store.read(record_key("T1", "P2")) is None
        assert list(worker.store.all()) == []
        # every event handed out again, from the first batch's first
        assert handed_out.take_rewinds() == {first[0].message.tp: 0}

    asyncio.run(scenario())
