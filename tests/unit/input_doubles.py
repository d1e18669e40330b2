"""Doubles for the input path's tests (tests/unit/test_input_consumer.py): what
`InputConsumer` uses of `AIOKafkaConsumer`, recording commits and seeks, and a sink that
records what ran."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from cartwatch.streams.kafka.input_consumer import InputConsumer


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
        self.high: dict[TopicPartition, int] = {}  # high watermarks; 0: nothing more
        self.positions: dict[TopicPartition, int] = {}  # next offset handed out
        self.settled = asyncio.Event()  # no rebalance in progress (aiokafka's reassignment)
        self.settled.set()

    def subscribe(self, topics, listener) -> None:
        self.listener = listener

    async def start(self) -> None: ...

    async def stop(self) -> None:
        self.log.append(("stop",))

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        await self.settled.wait()  # as aiokafka: no timeout while a rebalance is on
        if not self.owned:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        if not timeout_ms:  # what is there now
            batch = {} if self.batches.empty() else self.batches.get_nowait()
        else:
            try:
                batch = await asyncio.wait_for(self.batches.get(), timeout_ms / 1000)
            except TimeoutError:
                batch = {}
        for tp, records in batch.items():
            self.positions[tp] = records[-1].offset + 1
        return batch

    async def position(self, tp) -> int:
        if tp not in self.owned:
            raise IllegalStateError(f"{tp} is not assigned")
        return self.positions.get(tp, self.stored.get(tp, 0))

    def seek(self, tp, offset) -> None:
        self.log.append(("seek", tp, offset))
        self.positions[tp] = offset

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
        return self.high.get(tp, 0)

    def paused(self) -> set:
        return set()

    async def assign(self, *tps: TopicPartition) -> None:
        """A rebalance as aiokafka runs it: fetches wait from its start; the revocation;
        the new assignment, every partition from its committed offset; fetches go on (they
        may resume before the assignment callback runs); the callback."""
        self.settled.clear()
        await self.listener.on_partitions_revoked(set(self.owned))
        self.owned = set(tps)
        self.positions = {tp: self.stored.get(tp, 0) for tp in tps}
        self.settled.set()
        await asyncio.sleep(0)
        await self.listener.on_partitions_assigned(set(tps))


class Service:
    """An `InputConsumer` on the double, with itself as the sink; `calls` says what ran."""

    def __init__(
        self,
        consumer: Consumer,
        fail: int = 0,
        within: float = 0.0,
        fail_checkpoints: int = 0,
        checkpoint_events: int = 1000,
        checkpoint_interval_s: float = 60.0,
    ) -> None:
        self.calls: list[tuple] = []
        self.fail = fail  # how many batches fail before they succeed
        self.fail_checkpoints = fail_checkpoints
        self.gate: asyncio.Event | None = None  # set: applying waits for it
        self.consumer = consumer
        self.inputs = InputConsumer(
            ["labs"],
            {},
            self,
            self.on_assigned,
            self.on_revoked,
            100,
            within,
            checkpoint_events,
            checkpoint_interval_s,
        )
        self.inputs.consumer = consumer

    async def apply(self, batch: list[Record]) -> None:
        self.calls.append(("process", [(r.partition, r.offset) for r in batch]))
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker away")

    async def checkpoint(self) -> None:
        self.calls.append(("checkpoint", len(self.consumer.log)))
        if self.fail_checkpoints:
            self.fail_checkpoints -= 1
            raise ConnectionError("database away")

    def discard(self) -> None:
        self.calls.append(("discard",))

    async def on_assigned(self) -> None:
        self.calls.append(("assigned", len(self.consumer.log)))

    async def on_revoked(self) -> None:
        self.calls.append(("revoked", len(self.consumer.log)))

    def kinds(self) -> list[str]:
        return [call[0] for call in self.calls]


async def settle(until, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not until():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the input consumer did not get there")
        await asyncio.sleep(0.005)
