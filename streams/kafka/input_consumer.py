"""The worker's input path: its own aiokafka consumer, batches, and explicit checkpoints.

Faust's consumer hands the agent one message at a time (a `wait_first` over four futures
per message, an `Event`, sensor calls and an acknowledgement each) and commits whatever
was acknowledged on its own timer; keeping that commit behind our writes took replacing
five of its methods. The inputs are read here instead, by an `AIOKafkaConsumer` in its
own consumer group (`input_group`), run as a service of the Faust app
(docs/ARCHITECTURE.md, "What Faust does here").

A batch is what the consumer has ready, up to `batch_max` records; an idle consumer
waits for the next records, then `batch_within_s` for a few more. Each batch ends in a
checkpoint (`Checkpoint`): the processor applies it and writes all it produced, in the
order that loses nothing (alerts and dead letters acknowledged by the broker, the alert
table's entries, the database rows, the patient records' changelog records;
streams/worker/batch.py), and only then are the input offsets committed. A crash
anywhere before the commit re-reads the batch from the last commit: `event_id` and
`alert_id` make the writes idempotent.

Rebalances: the revoke callback waits for the batch in hand to reach its checkpoint
(`lock`), so a partition never changes hands with events processed and not committed.
After an assignment, and before the next batch, `on_assigned`
brings the worker's state up to date (the tables read to their changelogs' ends: the
previous owner committed only what its records hold). A batch whose processing fails
(a send the broker refused, the database away) is read again: each of its partitions is
sought back to the batch's first offset there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

log = logging.getLogger(__name__)

# How long a batch that failed waits before it is read again (the broker or the database
# away: no busy loop meanwhile).
RETRY_AFTER_S = 0.5
# The longest one `getmany` waits for records before the loop looks at `should_stop`.
IDLE_POLL_MS = 250


def input_group(topic_prefix: str) -> str:
    """The consumer group of the input topics: apart from Faust's (`topic_prefix`, which
    reads the tables' changelogs), since the two use different assignment protocols."""
    return f"{topic_prefix}-inputs"


@dataclass
class Checkpoint:
    """The input offsets a batch covers: where each partition's records start and end."""

    first: dict[TopicPartition, int] = field(default_factory=dict)
    last: dict[TopicPartition, int] = field(default_factory=dict)

    @classmethod
    def of(cls, batch: Mapping[TopicPartition, list[Any]]) -> Checkpoint:
        checkpoint = cls()
        for tp, records in batch.items():
            if records:
                checkpoint.first[tp] = records[0].offset
                checkpoint.last[tp] = records[-1].offset
        return checkpoint

    def next_offsets(self) -> dict[TopicPartition, int]:
        """What to commit: the offset after the last record of each partition."""
        return {tp: offset + 1 for tp, offset in self.last.items()}


Process = Callable[[list[Any]], Awaitable[None]]


class InputConsumer(Service):
    """Reads the input topics in batches; each batch processed, then its offsets committed.

    `process` gets a batch's records (aiokafka `ConsumerRecord`s, each partition's in
    offset order) and returns once everything they produced is written. `on_assigned`
    runs after each assignment, before the next batch; `on_revoked` when partitions go,
    after the batch in hand reached its checkpoint.
    """

    def __init__(
        self,
        topics: list[str],
        consumer_options: dict[str, Any],
        process: Process,
        on_assigned: Callable[[], Awaitable[None]],
        on_revoked: Callable[[], Awaitable[None]],
        batch_max: int,
        batch_within_s: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topics = topics
        self.consumer_options = consumer_options
        self.process = process
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.batch_max = batch_max
        self.batch_within_s = batch_within_s
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()  # a batch from processing to commit; a revocation
        self.generation = 0  # counts assignments (`_after_assignment` spans none)
        self.ready = False  # assigned, and `on_assigned` done since
        self.committed: dict[TopicPartition, int] = {}  # next offset, per owned partition
        self.failed_batches = 0
        self._task: asyncio.Task | None = None

    async def on_start(self) -> None:
        if self.consumer is None:  # a test may give its own
            self.consumer = AIOKafkaConsumer(enable_auto_commit=False, **self.consumer_options)
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name="cartwatch-input")

    async def on_stop(self) -> None:
        if self._task is not None:
            async with self.lock:  # the batch in hand reaches its checkpoint first
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.consumer is not None:
            await self.consumer.stop()  # leaves the group: the others take over at once

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    def lag(self) -> dict[TopicPartition, int]:
        """High watermark minus committed offset of each owned partition with both known."""
        lag = {}
        for tp in self.assignment():
            highwater = self.consumer.highwater(tp)
            committed = self.committed.get(tp)
            if highwater is not None and committed is not None:
                lag[tp] = max(0, highwater - committed)
        return lag

    def describe(self) -> str:
        """The input partitions' state, for a stalled worker's dump (no record's content)."""
        if self.consumer is None:
            return "input consumer not started"
        paused = sorted(f"{tp.topic}:{tp.partition}" for tp in self.consumer.paused())
        owned = {
            f"{tp.topic}:{tp.partition}": (self.committed.get(tp), self.consumer.highwater(tp))
            for tp in sorted(self.assignment())
        }
        return (
            f"input ready {self.ready}, assignments {self.generation}, failed batches "
            f"{self.failed_batches}, paused {paused}, (committed, highwater) {owned}"
        )

    async def _run(self) -> None:
        while True:
            # Fetched, processed and committed under the lock: a revocation waits for the
            # checkpoint, so no batch straddles a rebalance (the lock is fair: a waiting
            # revocation goes before the next batch).
            async with self.lock:
                if not self.ready and self.assignment():
                    try:
                        await self._after_assignment()
                    except Exception as exc:  # the broker away: try again, nothing read yet
                        log.warning("input partitions not ready (%s: %s)", type(exc).__name__, exc)
                        await asyncio.sleep(RETRY_AFTER_S)
                        continue
                batch = await self._next_batch()
                if batch:
                    await self._checkpoint(batch)

    async def _next_batch(self) -> dict[TopicPartition, list[Any]]:
        consumer = self.consumer
        batch = await consumer.getmany(timeout_ms=IDLE_POLL_MS, max_records=self.batch_max)
        count = sum(map(len, batch.values()))
        if 0 < count < self.batch_max and self.batch_within_s:
            await asyncio.sleep(self.batch_within_s)  # idle until now: gather the next few
            more = await consumer.getmany(timeout_ms=0, max_records=self.batch_max - count)
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
        return batch

    async def _after_assignment(self) -> None:
        started, generation = time.monotonic(), self.generation
        await self.on_assigned()
        owned = self.assignment()
        committed = await asyncio.gather(*(self.consumer.committed(tp) for tp in owned))
        self.committed = {
            tp: offset if offset is not None else await self._first_offset(tp)
            for tp, offset in zip(owned, committed, strict=True)
        }
        self.ready = generation == self.generation  # else assigned again meanwhile
        log.info(
            "input partitions %s ready in %.2f s", sorted(map(tuple, owned)),
            time.monotonic() - started,
        )  # fmt: skip

    async def _first_offset(self, tp: TopicPartition) -> int:
        return (await self.consumer.beginning_offsets([tp]))[tp]

    async def _checkpoint(self, batch: dict[TopicPartition, list[Any]]) -> None:
        checkpoint = Checkpoint.of(batch)
        records = [record for tp_records in batch.values() for record in tp_records]
        try:
            await self.process(records)
        except Exception as exc:  # read the batch again; nothing of it was committed
            self.failed_batches += 1
            log.warning(
                "batch of %d input records failed (%s: %s); read again in %.1f s",
                len(records), type(exc).__name__, exc, RETRY_AFTER_S,
            )  # fmt: skip
            for tp, offset in checkpoint.first.items():
                self.consumer.seek(tp, offset)
            await asyncio.sleep(RETRY_AFTER_S)
            return
        offsets = checkpoint.next_offsets()
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:  # the next owner reads them again
            log.warning("input offsets not committed (%s)", type(exc).__name__)
            return
        self.committed.update(offsets)

    async def partitions_revoked(self) -> None:
        async with self.lock:
            self.generation += 1
            self.ready = False
            self.committed = {}
            await self.on_revoked()

    def partitions_assigned(self) -> None:
        self.generation += 1
        self.ready = False  # `on_assigned` runs before the next batch


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: InputConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.partitions_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owner.partitions_assigned()
