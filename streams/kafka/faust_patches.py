"""Input records reach the agent in offset order from the committed offset; the fetch wait.

Faust (faust-streaming, the range pinned in pyproject.toml) hands out whatever its client
returns, and its client's position moves when records are pulled, not when they are
handed out. After a SIGKILL, a takeover or a restart (more often with a short fetch wait,
when a fetch from the advanced position is nearly always buffered):

- records pulled and then dropped by Faust (a rebalance beginning, paused partitions, a
  seek meanwhile) leave the position ahead; the next record handed out is far above the
  last, and Faust either counts the range between as acknowledged (a gap: a crash then
  commits events never processed) or, with no read offset yet, starts there and its
  commit never passes the range;
- a seek to the committed offsets that read them before a commit landed sets Faust's
  committed offset back; the records in between are acknowledged a second time, and the
  duplicates hold its commit to one offset per interval.

So every input record goes through `input_order.InputOrder` before Faust sees it,
each owned partition starting at its committed offset (its first offset when nothing is
committed) once Faust has sought there; skipped records are read again by a seek back. That
seek and restart never overlap the handing out of a fetch's records (`handing_out`).
Faust's committed offset of a partition it keeps never goes back, and never passes an input
offset not acknowledged (`_new_offset`). Table changelog records
are handed out as before: the tables need every one. Broker-independent: applied on
Apache Kafka too.

Also here, because Faust has no setting for it: the consumer's fetch wait, which Faust
fixes at 1,500 ms (`set_fetch_wait`; `Settings.fetch_wait_ms` says why we change it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from weakref import WeakKeyDictionary

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Transport
from faust.types import TP

from cartwatch.streams.kafka.input_order import InputOrder

log = logging.getLogger(__name__)

_original_getmany = Consumer.getmany
_original_perform_seek = Consumer.perform_seek
_original_on_partitions_revoked = Consumer.on_partitions_revoked
_original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
_original_new_offset = Consumer._new_offset
_fetch_wait_ms: WeakKeyDictionary[faust.App, int] = WeakKeyDictionary()


def input_order(consumer: Consumer) -> InputOrder:
    """The consumer's `InputOrder` (created on first use)."""
    order = getattr(consumer, "_cartwatch_order", None)
    if order is None:
        order = consumer._cartwatch_order = InputOrder()
    return order


def read_again(consumer: Consumer, offsets: Mapping[TP, int]) -> None:
    """Hand these input partitions out again from these offsets (a batch that failed)."""
    order = input_order(consumer)
    for tp, offset in offsets.items():
        order.read_again(tp, offset)


def handing_out(consumer: Consumer) -> asyncio.Lock:
    """Held while a fetch's records are handed out (and its seeks back made), and while the
    input partitions are sought to their committed offsets (`_perform_seek`): never both."""
    lock = getattr(consumer, "_cartwatch_handing_out", None)
    if lock is None:
        lock = consumer._cartwatch_handing_out = asyncio.Lock()
    return lock


async def _getmany(self: Consumer, timeout: float) -> AsyncIterator:
    order, is_input = input_order(self), self.app.topics.acks_enabled_for
    lock, held = handing_out(self), False
    try:
        # Taken once the fetch is in (not while it waits: Faust's own seek runs from this
        # loop when the flow stops, and a seek waiting for the flow would wait for ever).
        async for tp, message in _original_getmany(self, timeout):
            if not held:
                await lock.acquire()
                held = True
            if not is_input(tp.topic) or order.accept(tp, message.offset):
                yield tp, message
        if not held:
            await lock.acquire()
            held = True
        for tp, offset in order.take_rewinds().items():
            try:
                await self.seek_wait({tp: offset})
            except (TimeoutError, KafkaError) as exc:  # revoked meanwhile, or the broker away
                log.warning("input %s:%s: seek back to %s failed (%r)", *tp, offset, exc)
                order.rewind_again(tp, offset)
                continue
            order.seek_done(tp, offset)
            # As Faust's own `seek` does: its fetch loop drops a record below the read offset
            # as read already, and `seek_wait` leaves the read offset where it was.
            self._read_offset[tp] = offset if offset else None
            log.info(
                "input %s:%s: records pulled but not handed out, read again from %s", *tp, offset
            )
    finally:
        if held:
            lock.release()


async def _perform_seek(self: Consumer) -> None:
    """Faust's seek to the committed offsets; then where each owned input partition starts.

    Not while records are handed out (`handing_out`): Faust's recovery seeks with the flow
    resumed, from its own task. A record being delivered meanwhile then set Faust's read
    offset of its partition back above the start after the seek, and Faust's fetch loop
    dropped the records below it as read already: the start itself never reached the agent
    while those after it were acknowledged, and `_new_offset` held the commit there for good
    (a takeover's worker stalled with its lag at 55). Records pulled meanwhile from where
    the seek had put a partition were dropped without a seek back, its starts not set yet.
    """
    async with handing_out(self):
        await _seek_to_committed(self)


async def _seek_to_committed(self: Consumer) -> None:
    order = input_order(self)
    kept = {tp: offset for tp, offset in self._committed_offset.items() if tp in order.next}
    await _original_perform_seek(self)
    starts: dict[TP, int] = {}
    nothing_committed = []
    for tp in self.assignment():
        if not self.app.topics.acks_enabled_for(tp.topic):
            continue
        committed = self._committed_offset.get(tp)
        if kept.get(tp) is not None and (committed is None or committed < kept[tp]):
            committed = self._committed_offset[tp] = kept[tp]  # read before a commit landed
        if committed is None:
            nothing_committed.append(tp)
        else:
            starts[tp] = committed
    if nothing_committed:  # Faust's seek leaves them where the client's position has moved
        first = await self.earliest_offsets(*nothing_committed)
        await self.seek_wait({tp: first[tp] for tp in nothing_committed})
        starts.update({tp: first[tp] for tp in nothing_committed})
    order.restart(starts)
    log.debug("input partitions start at %s", starts)


async def _on_partitions_revoked(self: Consumer, revoked: set[TP]) -> None:
    input_order(self).forget(revoked)
    await _original_on_partitions_revoked(self, revoked)


def _new_offset(self: Consumer, tp: TP) -> int | None:
    """Faust's offset to commit, but never while the input offset it would start from is
    unacknowledged: Faust passes a one-offset hole (committed 50, acknowledged 51 and 52:
    it commits 53) and any hole when nothing is committed yet. Such holes come after a
    failed batch, whose events are read again while events read before them (queued in
    the stream) are processed and acknowledged: a crash then lost the held-back event.
    A hole Faust knows as a gap (offsets that do not exist) is passed as before."""
    acked = self._acked[tp]
    if acked and self.app.topics.acks_enabled_for(tp.topic):
        start = self._committed_offset.get(tp)
        if start is None:
            start = input_order(self).first.get(tp)
        if start is not None and min(acked) > start and not self._gap[tp].at(start):
            if input_order(self).held_back(tp, start, time.monotonic()):
                log.warning("input %s:%s: offset %s never acknowledged; read again", *tp, start)
            return None
    return _original_new_offset(self, tp)


def set_fetch_wait(app: faust.App, ms: int) -> None:
    """The longest a fetch of `app`'s consumer waits on the broker for records (Faust fixes
    1,500 ms and has no setting for it; `Settings.fetch_wait_ms` says why we change it)."""
    _fetch_wait_ms[app] = ms


def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Transport) -> AIOKafkaConsumer:
    consumer = _original_create_worker_consumer(self, transport)
    wait = _fetch_wait_ms.get(self.app)
    if wait is not None:
        consumer._fetch_max_wait_ms = wait  # read by its fetcher, created when it starts
    return consumer


def install() -> None:
    """Put the input order and the fetch wait in place (idempotent)."""
    if Consumer.getmany is not _getmany:
        Consumer.getmany = _getmany
        Consumer.perform_seek = _perform_seek
        Consumer.on_partitions_revoked = _on_partitions_revoked
        Consumer._new_offset = _new_offset
        AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer
