"""The input path's checkpoints (streams/kafka/input_consumer.py), with a consumer double
that records what the service asks of aiokafka: commits, seeks, and the order of both
around processing and rebalances. The real consumer runs in tests/integration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from cartwatch.streams.kafka import input_consumer
from cartwatch.streams.kafka.input_consumer import Checkpoint, InputConsumer

LABS0, LABS1, LABS2 = (TopicPartition("labs", n) for n in range(3))


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


def records(tp: TopicPartition, *offsets: int) -> list[Record]:
    return [Record(tp.topic, tp.partition, offset) for offset in offsets]


class Consumer:
    """What the service uses of `AIOKafkaConsumer`, with batches the test queues."""

    def __init__(self, committed: dict[TopicPartition, int] | None = None) -> None:
        self.batches: asyncio.Queue[dict] = asyncio.Queue()
        self.owned: set[TopicPartition] = set()
        self.stored = dict(committed or {})
        self.log: list[tuple] = []  # ("commit", offsets), ("seek", tp, offset)
        self.listener = None

    def subscribe(self, topics, listener) -> None:
        self.listener = listener

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.log.append(("stop",))

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        if not timeout_ms:  # what is there now
            return {} if self.batches.empty() else self.batches.get_nowait()
        try:
            return await asyncio.wait_for(self.batches.get(), timeout_ms / 1000)
        except TimeoutError:
            return {}

    def seek(self, tp, offset) -> None:
        self.log.append(("seek", tp, offset))

    async def commit(self, offsets) -> None:
        self.log.append(("commit", dict(offsets)))
        self.stored.update(offsets)

    async def committed(self, tp) -> int | None:
        return self.stored.get(tp)

    async def beginning_offsets(self, tps) -> dict:
        return {tp: 0 for tp in tps}

    def assignment(self) -> set:
        return set(self.owned)

    def highwater(self, tp) -> int:
        return 100

    def paused(self) -> set:
        return set()

    async def assign(self, *tps: TopicPartition) -> None:
        """A rebalance as aiokafka runs it: the revocation, then the assignment."""
        await self.listener.on_partitions_revoked(set(self.owned))
        self.owned = set(tps)
        await self.listener.on_partitions_assigned(set(tps))


class Service:
    """An `InputConsumer` on the double; `calls` says what ran, in order."""

    def __init__(self, consumer: Consumer, fail: int = 0, within: float = 0.0) -> None:
        self.calls: list[tuple] = []
        self.fail = fail  # how many batches fail before they succeed
        self.gate: asyncio.Event | None = None  # set: processing waits for it
        self.consumer = consumer
        self.inputs = InputConsumer(
            ["labs"], {}, self.process, self.on_assigned, self.on_revoked, 100, within
        )
        self.inputs.consumer = consumer

    async def process(self, batch: list[Record]) -> None:
        self.calls.append(("process", [(r.partition, r.offset) for r in batch]))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker away")

    async def on_assigned(self) -> None:
        self.calls.append(("assigned", len(self.consumer.log)))

    async def on_revoked(self) -> None:
        self.calls.append(("revoked", len(self.consumer.log)))


async def settle(until, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not until():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the input consumer did not get there")
        await asyncio.sleep(0.005)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(input_consumer, "RETRY_AFTER_S", 0.01)
    monkeypatch.setattr(input_consumer, "IDLE_POLL_MS", 20)


def test_a_checkpoint_commits_the_offset_after_each_partitions_last_record():
    checkpoint = Checkpoint.of(
        {LABS0: records(LABS0, 5, 6, 7), LABS1: records(LABS1, 2), LABS2: []}
    )
    assert checkpoint.first == {LABS0: 5, LABS1: 2}
    assert checkpoint.next_offsets() == {LABS0: 8, LABS1: 3}


def test_a_batch_is_committed_once_processed_and_only_then():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer({LABS0: 5})
        service = Service(consumer)
        await service.inputs.on_start()
        await consumer.assign(LABS0, LABS1)
        service.gate = asyncio.Event()
        await consumer.batches.put({LABS0: records(LABS0, 5, 6), LABS1: records(LABS1, 0)})
        await settle(lambda: ("process", [(0, 5), (0, 6), (1, 0)]) in service.calls)
        assert not [entry for entry in consumer.log if entry[0] == "commit"]  # processing
        service.gate.set()
        await settle(lambda: any(entry[0] == "commit" for entry in consumer.log))
        assert service.inputs.lag() == {LABS0: 93, LABS1: 99}
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert consumer.log == [("commit", {LABS0: 7, LABS1: 1}), ("stop",)]
    # the assignment's state came first: the tables read to their ends before any batch
    assert [call[0] for call in service.calls] == ["revoked", "assigned", "process"]
    assert service.inputs.committed == {LABS0: 7, LABS1: 1}


def test_a_batch_that_fails_is_read_again_from_its_first_offsets_and_not_committed():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer, fail=1)
        await service.inputs.on_start()
        await consumer.assign(LABS0, LABS1)
        await consumer.batches.put({LABS0: records(LABS0, 3, 4), LABS1: records(LABS1, 8)})
        await settle(lambda: any(entry[0] == "seek" for entry in consumer.log))
        # what the consumer gives after the seeks back: the same records
        await consumer.batches.put({LABS0: records(LABS0, 3, 4), LABS1: records(LABS1, 8)})
        await settle(lambda: any(entry[0] == "commit" for entry in consumer.log))
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    seeks = {entry[1]: entry[2] for entry in consumer.log if entry[0] == "seek"}
    assert seeks == {LABS0: 3, LABS1: 8}
    commits = [entry[1] for entry in consumer.log if entry[0] == "commit"]
    assert commits == [{LABS0: 5, LABS1: 9}]  # once, after the second attempt
    assert service.inputs.failed_batches == 1
    assert [call[0] for call in service.calls].count("process") == 2


def test_a_revocation_waits_until_the_batch_in_hand_is_committed():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        service.gate = asyncio.Event()
        await consumer.batches.put({LABS0: records(LABS0, 0, 1, 2)})
        await settle(lambda: any(call[0] == "process" for call in service.calls))
        rebalance = asyncio.ensure_future(consumer.assign(LABS1))
        await asyncio.sleep(0.05)
        assert not rebalance.done()  # the revocation waits for the checkpoint
        assert [call[0] for call in service.calls].count("revoked") == 1  # the first join's
        service.gate.set()
        await rebalance
        await consumer.batches.put({LABS1: records(LABS1, 4)})
        await settle(lambda: len([e for e in consumer.log if e[0] == "commit"]) == 2)
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert [e for e in consumer.log if e[0] == "commit"] == [
        ("commit", {LABS0: 3}),
        ("commit", {LABS1: 5}),
    ]
    # revoked after the commit (the log had one entry then), assigned before the next batch
    kinds = [call[0] for call in service.calls]
    assert kinds == ["revoked", "assigned", "process", "revoked", "assigned", "process"]
    assert service.calls[3] == ("revoked", 1)


def test_an_idle_consumer_gathers_a_few_more_records_before_the_batch():
    async def scenario() -> Service:
        consumer = Consumer()
        service = Service(consumer, within=0.05)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await consumer.batches.put({LABS0: records(LABS0, 0)})
        await asyncio.sleep(0.01)
        await consumer.batches.put({LABS0: records(LABS0, 1, 2)})
        await settle(lambda: any(entry[0] == "commit" for entry in consumer.log))
        await service.inputs.on_stop()
        return service

    service = asyncio.run(scenario())
    assert [call for call in service.calls if call[0] == "process"] == [
        ("process", [(0, 0), (0, 1), (0, 2)])
    ]


def test_nothing_is_processed_before_an_assignment_is_ready():
    async def scenario() -> Service:
        consumer = Consumer()
        service = Service(consumer)
        await service.inputs.on_start()
        await asyncio.sleep(0.05)
        assert not service.inputs.ready and service.calls == []
        await consumer.assign(LABS0)
        await settle(lambda: service.inputs.ready)
        await service.inputs.on_stop()
        return service

    service = asyncio.run(scenario())
    assert service.inputs.committed == {LABS0: 0}  # nothing committed: the first offset
    assert "input ready True" in service.inputs.describe()
