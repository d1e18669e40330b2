"""A batch of the worker is finished (and its events may be acknowledged, then committed)
only once every table changelog record it wrote is acknowledged by the broker.

Faust commits acknowledged offsets after `producer.flush()`, which stops waiting for its
buffer after 0.1 s without a send; a worker killed after such a commit lost the table
updates still in the buffer. Here the broker is replaced by futures the test resolves.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from streams.app import Worker
from streams.pipeline import record_key
from streams.settings import Settings
from tests.unit.builders import at, crs, infusion


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp: float = 0.0


@dataclass
class Event:
    value: bytes
    message: Message


class Changelog:
    """Stands in for a table's changelog topic: records each send, acks on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, object, asyncio.Future]] = []

    def send(self, partition: int, key: str, value: object) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.sent.append((partition, key, value, future))
        return future

    def ack_all(self) -> None:
        for *_, future in self.sent:
            if not future.done():
                future.set_result(None)


async def _sent(*args, **kwargs) -> asyncio.Future:
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def _worker(data_dir: Path) -> tuple[Worker, Changelog, Changelog]:
    """A worker whose producer is the test: alerts and dead letters are acknowledged at
    once, the two tables' changelog records when the test says."""
    worker = Worker(Settings(embedded_broker=False, data_dir=str(data_dir)))
    worker.alerts_topic.send = _sent
    worker.dead_letter_topic.send = _sent
    records, alerts = Changelog(), Changelog()
    worker.patient_to_record.send_changelog = records.send
    worker.alert_id_to_alert.send_changelog = alerts.send
    return worker, records, alerts


def _events(worker: Worker, *events: dict) -> list[Event]:
    topic_of = {kind: topic for topic, kind in worker.type_by_topic.items()}
    return [
        Event(
            json.dumps(e).encode(),
            Message(topic_of[e["type"]], 3, offset, e["patient_id"].encode(), b""),
        )
        for offset, e in enumerate(events)
    ]


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_batch_waits_for_its_record_and_alert_changelog_records(tmp_path: Path):
    async def scenario() -> None:
        worker, records, alerts = _worker(tmp_path)
        batch = _events(worker, infusion(at(0)), crs(3, at(2)))

        task = asyncio.ensure_future(worker._process_batch(batch))
        await _settle()

        # one record, on the partition of the input
        assert [(p, k) for p, k, *_ in records.sent] == [(3, record_key("T1", "P1"))]
        assert [(p, k) for p, k, *_ in alerts.sent] == [(3, "T1:P1:crs_grade:3")]
        assert not task.done()  # neither is on the broker yet
        records.ack_all()
        await _settle()
        assert not task.done()  # the alert's is not
        alerts.ack_all()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(scenario())


def test_a_batch_without_alerts_waits_for_its_record(tmp_path: Path):
    async def scenario() -> None:
        worker, records, alerts = _worker(tmp_path)

        task = asyncio.ensure_future(worker._process_batch(_events(worker, infusion(at(0)))))
        await _settle()

        assert len(records.sent) == 1 and alerts.sent == []
        assert not task.done()
        records.ack_all()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(scenario())
