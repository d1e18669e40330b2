"""Stand-ins for the broker around a `Worker`, so its batches run in a unit
test: input messages, changelog topics that acknowledge when the test says, and a
producer that acknowledges alerts and dead letters at once."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from cartwatch.streams.worker.app import Worker
from cartwatch.streams.worker.settings import Settings


@dataclass
class Record:
    """An input record as aiokafka's consumer gives it."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp: int = 0  # milliseconds


class Changelog:
    """Stands in for a table's changelog topic: records each send, acks on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str, bytes, asyncio.Future]] = []
        self.acks_at_once = False

    def send(self, partition: int, key: bytes, value: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.sent.append((partition, json.loads(key), value, future))
        if self.acks_at_once:
            future.set_result(None)
        return future

    def ack_all(self) -> None:
        for *_, future in self.sent:
            if not future.done():
                future.set_result(None)


class Producer:
    """Stands in for the send of Faust's producer: the tables' changelog records go to their
    `Changelog`, every other record (alerts, dead letters) is acknowledged at once."""

    def __init__(self, changelogs: dict[str, Changelog]) -> None:
        self.changelogs = changelogs
        self.sent: list[tuple[str, int, bytes | None, bytes]] = []
        self.headers: list[list[tuple[str, bytes]] | None] = []  # of each record in `sent`

    async def send(self, topic, key, value, partition, timestamp, headers) -> asyncio.Future:
        if topic in self.changelogs:
            return self.changelogs[topic].send(partition, key, value)
        self.sent.append((topic, partition, key, value))
        self.headers.append(headers)
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def worker_with_doubles(data_dir: Path) -> tuple[Worker, Changelog, Changelog]:
    """A worker whose producer is the test: alerts and dead letters are acknowledged at
    once, the two tables' changelog records when the test says."""
    worker = Worker(Settings(embedded_broker=False, data_dir=str(data_dir)))
    records, alerts = Changelog(), Changelog()
    name = {
        t: t.changelog_topic.get_topic_name()
        for t in (worker.patient_to_record, worker.alert_id_to_alert)
    }
    producer = Producer(
        {name[worker.patient_to_record]: records, name[worker.alert_id_to_alert]: alerts}
    )
    worker.app.producer.send = producer.send
    return worker, records, alerts


def events_of(worker: Worker, *events: dict) -> list[Record]:
    topic_of = {kind: topic for topic, kind in worker.settings.input_topics.items()}
    return [
        Record(topic_of[e["type"]], 3, offset, e["patient_id"].encode(), json.dumps(e).encode())
        for offset, e in enumerate(events)
    ]


def process(worker: Worker, changelogs: list[Changelog], *events: dict) -> list[list[str]]:
    """Run one batch of `events` to its end, acknowledging every changelog record as it is
    sent; the keys each changelog received meanwhile (one list per changelog)."""
    before = [len(changelog.sent) for changelog in changelogs]

    async def run() -> None:
        task = asyncio.ensure_future(processed(worker, events_of(worker, *events)))
        while not task.done():
            for changelog in changelogs:
                changelog.ack_all()
            await asyncio.sleep(0)
        task.result()

    asyncio.run(run())
    return [[key for _, key, *_ in c.sent[n:]] for c, n in zip(changelogs, before, strict=True)]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def processed(worker: Worker, messages: list[Record]) -> None:
    """One batch applied and its own checkpoint taken, as the input path does for a batch
    when no more records are ready (streams/kafka/input_consumer.py)."""
    await worker.processor.apply(messages)
    await worker.processor.checkpoint()
