"""A batch that does not finish is never acknowledged, so its events are read again.

The agent's batches (`cartwatch.streams.worker.batches.take_ready`, as Faust's `Stream.take_events`)
acknowledge a batch's events in a `finally` when the generator goes on or closes, also when
the agent raised inside the batch (`yield batch` ... `finally: for event in batch: await
stream.ack(event)`). `Batches` below does the same with Faust's own `ConsumerMessage`, whose
final acknowledgement reaches the consumer; the consumer records it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from faust.types.tuples import ConsumerMessage

from cartwatch.streams.kafka.faust_patches import input_order
from tests.unit.builders import at, crs, infusion
from tests.unit.worker_doubles import Event, events_of, worker_with_doubles


class Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: ConsumerMessage) -> bool:
        self.acked.append(message.offset)
        return True


class Batches:
    """A stream that yields one batch and acknowledges it as `take_ready` does."""

    def __init__(self, events: list[Event], consumer: Consumer) -> None:
        self.events, self.consumer = events, consumer

    async def take_events(self, max_: int, within: float):
        try:
            yield self.events
        finally:
            for event in self.events:
                event.message.ack(self.consumer)


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
    asyncio.run(worker.process_patient_events(batches))


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
    assert not worker.trial.loaded  # reloaded from the records before the next batch
    # and they are handed out again, each partition from the batch's first event on
    first: dict = {}
    for e in events:
        first[e.message.tp] = min(first.get(e.message.tp, e.message.offset), e.message.offset)
    assert handed_out.take_rewinds() == first
