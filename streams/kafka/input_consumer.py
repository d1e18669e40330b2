"""The worker's input path: its own aiokafka consumer, batches, and explicit checkpoints.

Faust's consumer hands an agent one message at a time (a `wait_first` over four futures
per message, an `Event`, sensor calls and an acknowledgement each) and commits whatever
was acknowledged on its own timer; keeping that commit behind our writes took replacing
five of its methods. The inputs are read here instead, by an `AIOKafkaConsumer` in its
own consumer group (`input_group`), run as a service of the Faust app
(docs/ARCHITECTURE.md, "What Faust does here").

A batch is what the consumer has ready, up to `batch_max` records; an idle consumer
waits for the next records, then `batch_within_s` for a few more. Each batch is applied
at once and its alerts and dead letters published (`Sink.apply`), so an alert waits for
no checkpoint. A checkpoint (`Sink.checkpoint`, then the commit) writes what the batches
since the last one changed: the database rows, then each touched patient's record once;
only then are the input offsets committed. It comes when the partitions read are read to
their high watermarks and no more records are ready (an idle or keeping-up worker
checkpoints every batch), or under a backlog after `checkpoint_events` records or
`checkpoint_interval_s`, whichever first: a patient touched by many batches of a backlog
is written once per checkpoint, not once per batch. A crash
anywhere before the commit re-reads from the last commit: `event_id` and `alert_id` make
the writes idempotent (streams/worker/batch.py has the order that loses nothing).

Rebalances: the revoke callback waits for the batch being applied, then takes the
checkpoint (`lock`), so a partition never changes hands with events applied and not
committed. Fetches run outside the lock (from the start of a rebalance aiokafka's
`getmany` waits for the new assignment); a batch fetched before a rebalance is dropped
where the rebalance started its partition again at the committed offset (`_current`), and
fetched again where the worker cannot apply it yet (`_seek_back`).
After an assignment, and before the next batch, `on_assigned`
brings the worker's state up to date (the tables read to their changelogs' ends: the
previous owner committed only what its records hold). When a batch or a checkpoint fails
(a send the broker refused, the database away) everything since the last commit is read
again: each partition is sought back to its first offset after that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from mode import Service

log = logging.getLogger(__name__)

# How long a batch that failed waits before it is read again (the broker or the database
# away: no busy loop meanwhile).
RETRY_AFTER_S = 0.5
# The longest one `getmany` waits for records before the loop looks at `should_stop`.
IDLE_POLL_MS = 250
# Behind the high watermark with records applied: how long to wait for the next fetch
# before the checkpoint is taken anyway.
BACKLOG_WAIT_MS = 100


def input_group(topic_prefix: str) -> str:
    """The consumer group of the input topics: apart from Faust's (`topic_prefix`, which
    reads the tables' changelogs), since the two use different assignment protocols."""
    return f"{topic_prefix}-inputs"


@dataclass
class Checkpoint:
    """The input records applied since the last commit: where each partition's start and
    end, how many, and since when."""

    first: dict[TopicPartition, int] = field(default_factory=dict)
    last: dict[TopicPartition, int] = field(default_factory=dict)
    records: int = 0
    started: float = 0.0  # time.monotonic() of the first batch

    def add(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        if not self.records:
            self.started = time.monotonic()
        for tp, records in batch.items():
            if records:
                self.first.setdefault(tp, records[0].offset)
                self.last[tp] = records[-1].offset
                self.records += len(records)

    def next_offsets(self) -> dict[TopicPartition, int]:
        """What to commit: the offset after the last record of each partition."""
        return {tp: offset + 1 for tp, offset in self.last.items()}


class Sink(Protocol):
    """What the input path hands its records to (streams/worker/batch.py)."""

    async def apply(self, records: list[Any]) -> None:
        """Apply a batch (aiokafka `ConsumerRecord`s, each partition's in offset order)."""

    async def checkpoint(self) -> None:
        """Write what the batches since the last checkpoint changed."""

    def discard(self) -> None:
        """Forget what the batches since the last checkpoint applied (read again)."""


class InputConsumer(Service):
    """Reads the input topics in batches into `sink`, with checkpoints, then commits.

    `on_assigned` runs after each assignment, before the next batch; `on_revoked` when
    partitions go, after the checkpoint of what was applied.
    """

    def __init__(
        self,
        topics: list[str],
        consumer_options: dict[str, Any],
        sink: Sink,
        on_assigned: Callable[[], Awaitable[None]],
        on_revoked: Callable[[], Awaitable[None]],
        batch_max: int,
        batch_within_s: float,
        checkpoint_events: int,
        checkpoint_interval_s: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.topics = topics
        self.consumer_options = consumer_options
        self.sink = sink
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.batch_max = batch_max
        self.batch_within_s = batch_within_s
        self.checkpoint_events = checkpoint_events
        self.checkpoint_interval_s = checkpoint_interval_s
        self.pending = Checkpoint()  # applied since the last commit
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()  # a batch applied and checkpointed; a revocation
        self.generation = 0  # counts assignments (`_after_assignment` spans none)
        self.assigned = False  # between an assignment and the next revocation
        self.ready = False  # assigned, and `on_assigned` done since
        self.committed: dict[TopicPartition, int] = {}  # next offset, per owned partition
        self.failed_batches = 0  # batches or checkpoints that failed and were read again
        self._task: asyncio.Task | None = None

    async def on_start(self) -> None:
        if self.consumer is None:  # a test may give its own
            self.consumer = AIOKafkaConsumer(enable_auto_commit=False, **self.consumer_options)
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name="cartwatch-input")

    async def on_stop(self) -> None:
        if self._task is not None:
            async with self.lock:  # after the batch in hand, and its checkpoint
                self._task.cancel()
                await self._checkpoint()
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
            try:
                await self._step()
            except Exception as exc:  # the broker away, say: never a dead input path
                log.warning("input path: %s: %s; again in %.1f s", type(exc).__name__, exc,
                            RETRY_AFTER_S)  # fmt: skip
                await asyncio.sleep(RETRY_AFTER_S)

    async def _step(self) -> None:
        # With records applied and not committed: caught up, only what is ready now (none
        # ready, the checkpoint comes at once); behind, the next fetch.
        if not self.pending.records:
            timeout = IDLE_POLL_MS
        else:
            timeout = 0 if self._caught_up() else BACKLOG_WAIT_MS
        # Fetched outside the lock: from the start of a rebalance `getmany` waits for the
        # new assignment, which waits for the revocation, which takes the lock.
        batch = await self._next_batch(timeout)
        # Applied, and checkpointed when due, under the lock: a revocation waits for it (the
        # lock is fair: a waiting revocation goes before the next batch).
        async with self.lock:
            batch = await self._current(batch)
            try:
                if self.assigned and not self.ready:
                    await self._after_assignment()
            finally:
                if not self.ready:  # not owned yet, or not caught up: fetched again
                    self._seek_back(batch)
            if not self.ready:
                return
            if batch and not await self._apply(batch):
                return
            pending = self.pending
            if pending.records and (
                not batch
                or pending.records >= self.checkpoint_events
                or time.monotonic() - pending.started >= self.checkpoint_interval_s
            ):
                await self._checkpoint()

    async def _current(
        self, batch: dict[TopicPartition, list[Any]]
    ) -> dict[TopicPartition, list[Any]]:
        """The partitions of `batch` whose records are the last the consumer handed out: a
        rebalance since the fetch starts a partition again at its committed offset (its
        position is then behind the batch's end, or being reset), or took it away. A
        partition whose position the consumer holds answers at once; only one being reset
        waits, and may fail: not current either way."""
        current = {}
        for tp, records in batch.items():
            if not records:
                continue
            try:
                position = await self.consumer.position(tp)
            except (IllegalStateError, KafkaError):  # no longer assigned, or being reset
                continue
            if position > records[-1].offset:
                current[tp] = records
        return current

    def _seek_back(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Hand these partitions' records out again (fetched, not applied)."""
        for tp, records in batch.items():
            self.consumer.seek(tp, records[0].offset)

    def _caught_up(self) -> bool:
        """Each partition read since the last commit is read to its high watermark (as the
        last fetch gave it): nothing more is on the broker for it."""
        for tp, last in self.pending.last.items():
            highwater = self.consumer.highwater(tp)
            if highwater is None or last + 1 < highwater:
                return False
        return True

    async def _next_batch(self, timeout_ms: int) -> dict[TopicPartition, list[Any]]:
        consumer = self.consumer
        batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=self.batch_max)
        count = sum(map(len, batch.values()))
        if timeout_ms and 0 < count < self.batch_max and self.batch_within_s:
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

    async def _apply(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Apply a batch; False, and everything since the last commit read again, if it
        failed."""
        self.pending.add(batch)
        records = [record for tp_records in batch.values() for record in tp_records]
        try:
            await self.sink.apply(records)
        except Exception as exc:
            await self._read_again("batch", exc)
            return False
        return True

    async def _checkpoint(self) -> None:
        """Write what was applied since the last commit, then commit the offsets."""
        if not self.pending.records:
            return
        try:
            await self.sink.checkpoint()
        except Exception as exc:
            await self._read_again("checkpoint", exc)
            return
        offsets, self.pending = self.pending.next_offsets(), Checkpoint()
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:  # the next owner reads them again
            log.warning("input offsets not committed (%s)", type(exc).__name__)
            return
        self.committed.update(offsets)

    async def _read_again(self, what: str, exc: Exception) -> None:
        """Seek back to the last commit and forget what was applied since."""
        self.failed_batches += 1
        pending, self.pending = self.pending, Checkpoint()
        log.warning(
            "%s of %d input records failed (%s: %s); read again in %.1f s",
            what, pending.records, type(exc).__name__, exc, RETRY_AFTER_S,
        )  # fmt: skip
        self.sink.discard()
        owned = self.assignment()
        for tp, offset in pending.first.items():
            if tp in owned:
                self.consumer.seek(tp, offset)
        await asyncio.sleep(RETRY_AFTER_S)

    async def partitions_revoked(self) -> None:
        async with self.lock:
            # What was applied, committed while the partitions are still owned (a failure
            # forgets it: the next owner reads it again).
            await self._checkpoint()
            self.generation += 1
            self.assigned = self.ready = False
            self.committed = {}
            await self.on_revoked()

    def partitions_assigned(self) -> None:
        self.generation += 1
        self.assigned = True
        self.ready = False  # `on_assigned` runs before the next batch


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: InputConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner.partitions_revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.owner.partitions_assigned()
