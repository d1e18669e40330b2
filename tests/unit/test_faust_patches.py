"""The input order around Faust's fetch iterator and its seeks (kafka/faust_patches.py).

Faust's own fetch, seek and revocation are replaced by fakes; what wraps them is real.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace

import pytest
from aiokafka.errors import IllegalStateError
from faust.types import TP
from intervaltree import IntervalTree

from cartwatch.streams.kafka import faust_patches
from cartwatch.streams.kafka.input_order import HOLE_GRACE_S

LABS, DISPOSITIONS, CHANGELOG = TP("labs", 0), TP("dispositions", 0), TP("records-changelog", 0)


class FakeConsumer:
    """What the wrappers read and ask of Faust's consumer, recorded."""

    def __init__(self, committed: dict[TP, int | None], broker: dict[TP, int | None]) -> None:
        self.records: list[tuple[TP, int]] = []
        self._committed_offset = dict(committed)
        self._read_offset: dict[TP, int | None] = {}
        self.broker = broker  # what Faust's seek to the committed offsets reads
        self.sought: list[dict[TP, int]] = []
        self.revoked_meanwhile = False
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=self._acking))

    def _acking(self, topic: str) -> bool:
        return not topic.endswith("-changelog")  # Faust does not ack changelog records

    def assignment(self) -> set[TP]:
        return {LABS, DISPOSITIONS, CHANGELOG}

    async def seek_wait(self, offsets: dict[TP, int]) -> None:
        if self.revoked_meanwhile:
            raise IllegalStateError(f"Partitions {set(offsets)} are not assigned")
        self.sought.append(offsets)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: 3 for tp in tps}


@pytest.fixture
def faust(monkeypatch):
    async def getmany(consumer: FakeConsumer, timeout: float):
        for tp, offset in consumer.records:
            yield tp, SimpleNamespace(offset=offset)

    async def perform_seek(consumer: FakeConsumer) -> None:
        for _ in range(3):  # the broker's answers, partition by partition
            await asyncio.sleep(0)
        consumer._committed_offset.update(consumer.broker)
        consumer._read_offset.update(consumer.broker)  # Faust reads from there on

    async def on_partitions_revoked(consumer: FakeConsumer, revoked: set[TP]) -> None:
        for tp in revoked:
            consumer._committed_offset.pop(tp, None)

    monkeypatch.setattr(faust_patches, "_original_getmany", getmany)
    monkeypatch.setattr(faust_patches, "_original_perform_seek", perform_seek)
    monkeypatch.setattr(faust_patches, "_original_on_partitions_revoked", on_partitions_revoked)


def _consumer(broker: dict[TP, int | None] | None = None) -> FakeConsumer:
    return FakeConsumer({}, broker if broker is not None else {LABS: 151, DISPOSITIONS: 40})


def _drain(consumer: FakeConsumer, *records: tuple[TP, int]) -> list[tuple[TP, int]]:
    """What Faust's drain loop gets from one fetch of these records."""
    consumer.records = list(records)

    async def go() -> list[tuple[TP, int]]:
        return [(tp, m.offset) async for tp, m in faust_patches._getmany(consumer, 1.0)]

    return asyncio.run(go())


def _seek_to_committed(consumer: FakeConsumer) -> None:
    asyncio.run(faust_patches._perform_seek(consumer))


def test_before_the_seek_to_the_committed_offsets_only_changelog_records_are_handed_out(faust):
    consumer = _consumer()
    assert _drain(consumer, (LABS, 2608), (CHANGELOG, 17)) == [(CHANGELOG, 17)]


def test_after_it_each_input_partition_starts_at_its_committed_offset(faust):
    consumer = _consumer()
    _seek_to_committed(consumer)
    got = _drain(consumer, (LABS, 150), (LABS, 151), (DISPOSITIONS, 40), (LABS, 152))
    assert got == [(LABS, 151), (DISPOSITIONS, 40), (LABS, 152)]
    assert consumer.sought == []


def test_a_jump_ahead_is_sought_back_once_the_fetch_is_handed_out(faust):
    consumer = _consumer()
    _seek_to_committed(consumer)
    got = _drain(consumer, (LABS, 151), (LABS, 2608), (CHANGELOG, 17), (LABS, 2609))
    assert got == [(LABS, 151), (CHANGELOG, 17)]
    assert consumer.sought == [{LABS: 152}]
    assert _drain(consumer, (LABS, 152), (LABS, 153)) == [(LABS, 152), (LABS, 153)]


def test_a_jump_still_there_after_the_seek_back_is_handed_out_as_a_gap(faust):
    consumer = _consumer()
    _seek_to_committed(consumer)
    _drain(consumer, (LABS, 151), (LABS, 160))
    assert _drain(consumer, (LABS, 160)) == [(LABS, 160)]


def test_a_seek_back_that_fails_is_asked_again_at_the_next_fetch(faust):
    consumer = _consumer()
    _seek_to_committed(consumer)
    consumer.revoked_meanwhile = True
    assert _drain(consumer, (LABS, 151), (LABS, 160)) == [(LABS, 151)]  # the fetch goes on
    consumer.revoked_meanwhile = False
    assert _drain(consumer) == []  # nothing fetched: the seek back is asked again
    assert consumer.sought == [{LABS: 152}]
    assert _drain(consumer, (LABS, 160)) == [(LABS, 160)]  # after it, a real gap


def test_a_partition_with_nothing_committed_starts_at_its_first_offset(faust):
    consumer = _consumer({LABS: 151, DISPOSITIONS: None})
    _seek_to_committed(consumer)
    assert consumer.sought == [{DISPOSITIONS: 3}]  # not labs (committed), not a changelog
    assert _drain(consumer, (DISPOSITIONS, 9)) == []  # where the client's position had moved
    assert _drain(consumer, (DISPOSITIONS, 3)) == [(DISPOSITIONS, 3)]


def test_a_committed_offset_read_before_a_commit_landed_does_not_take_it_back(faust):
    consumer = _consumer()
    _seek_to_committed(consumer)
    _drain(consumer, (LABS, 151))
    consumer._committed_offset[LABS] = 152  # this worker committed 152
    consumer.broker = {LABS: 140, DISPOSITIONS: 40}  # the broker's answer predates it
    _seek_to_committed(consumer)
    assert consumer._committed_offset[LABS] == 152  # Faust acknowledges nothing below it
    assert _drain(consumer, (LABS, 140), (LABS, 151), (LABS, 152)) == [(LABS, 152)]


def test_a_committed_offset_of_a_partition_not_handed_out_is_the_brokers(faust):
    consumer = _consumer({LABS: 140, DISPOSITIONS: 40})
    consumer._committed_offset = {LABS: 151}  # left from before a revocation
    _seek_to_committed(consumer)
    assert consumer._committed_offset[LABS] == 140
    assert _drain(consumer, (LABS, 140)) == [(LABS, 140)]


def test_a_revoked_partition_is_not_handed_out_until_sought_again(faust):
    consumer = _consumer()
    _seek_to_committed(consumer)
    asyncio.run(faust_patches._on_partitions_revoked(consumer, {LABS}))
    assert LABS not in consumer._committed_offset  # Faust's own revocation ran
    assert _drain(consumer, (LABS, 151), (DISPOSITIONS, 40)) == [(DISPOSITIONS, 40)]


async def _faust_drain(consumer: FakeConsumer, delivering=None) -> list[tuple[TP, int]]:
    """Faust's drain loop (`Consumer._drain_messages`) over one fetch: a record below its
    partition's read offset is dropped as read already; the read offset is set once the
    record is delivered (`delivering`, awaited, stands for the delivery)."""
    delivered = []
    async for tp, message in faust_patches._getmany(consumer, 1.0):
        read = consumer._read_offset.get(tp)
        if read is None or message.offset >= read:
            if delivering is not None:
                await delivering(tp, message.offset)
            delivered.append((tp, message.offset))
            consumer._read_offset[tp] = message.offset
    return delivered


def test_the_seek_to_the_committed_offsets_waits_for_the_records_being_handed_out(faust):
    # Faust's recovery seeks with the flow on, from its own task. Seen after a takeover:
    # 120 was being delivered when the seek set 119 as the start; its delivery then set
    # Faust's read offset to 120, the fetch from 119 had 119 dropped as read already,
    # and the commit waited at 119 for good (its first acknowledgement committed
    # meanwhile, the broker's answer older than that commit).
    consumer = _consumer({LABS: 119, DISPOSITIONS: 40})
    _seek_to_committed(consumer)

    async def go() -> list[tuple[TP, int]]:
        seeks = []

        async def delivering(tp: TP, offset: int) -> None:
            if offset == 120:
                seeks.append(asyncio.ensure_future(faust_patches._perform_seek(consumer)))
                for _ in range(10):
                    await asyncio.sleep(0)

        consumer.records = [(LABS, 119), (LABS, 120)]
        assert await _faust_drain(consumer, delivering) == [(LABS, 119), (LABS, 120)]
        await asyncio.gather(*seeks)
        consumer.records = [(LABS, 119), (LABS, 120), (LABS, 121)]
        return await _faust_drain(consumer)

    assert asyncio.run(go()) == [(LABS, 119), (LABS, 120), (LABS, 121)]


def test_records_fetched_while_the_seek_runs_are_handed_out_once_it_is_done(faust):
    consumer = _consumer({LABS: 151, DISPOSITIONS: 40})

    async def go() -> list[tuple[TP, int]]:
        seek = asyncio.ensure_future(faust_patches._perform_seek(consumer))
        await asyncio.sleep(0)  # the seek has begun: the client reads from 151 already
        consumer.records = [(LABS, 151), (LABS, 152)]  # all there is: none come again
        drained = await _faust_drain(consumer)
        await seek
        return drained

    assert asyncio.run(go()) == [(LABS, 151), (LABS, 152)]


def test_install_puts_the_wrappers_on_fausts_consumer():
    from faust.transport.consumer import Consumer

    faust_patches.install()
    faust_patches.install()  # idempotent
    assert Consumer.getmany is faust_patches._getmany
    assert Consumer.perform_seek is faust_patches._perform_seek
    assert Consumer.on_partitions_revoked is faust_patches._on_partitions_revoked
    assert Consumer._new_offset is faust_patches._new_offset


def _committer(committed: int | None, acked: list[int], gap: tuple[int, int] | None = None):
    """What Faust's `_new_offset` reads of its consumer, for one input partition (labs)."""
    consumer = _consumer()
    consumer._committed_offset = {LABS: committed}
    consumer._acked = defaultdict(list, {LABS: list(acked)})
    consumer._acked_index = defaultdict(set, {LABS: set(acked)})
    consumer._gap = defaultdict(IntervalTree)
    if gap is not None:
        consumer._gap[LABS].addi(*gap)
    return consumer


def test_faust_alone_commits_past_a_one_offset_hole():
    # the defect the wrapper is there for: offset 50 never acknowledged, 53 committed
    assert faust_patches._original_new_offset(_committer(50, [51, 52]), LABS) == 53


def test_no_commit_passes_an_input_offset_held_back():
    # 50 was a failed batch's, to be read again; 51 and 52 were queued and processed
    assert faust_patches._new_offset(_committer(50, [51, 52]), LABS) is None
    assert faust_patches._new_offset(_committer(50, [50, 51, 52]), LABS) == 53


def test_with_nothing_committed_the_partitions_first_offset_is_awaited(faust):
    consumer = _committer(None, [4, 5])
    consumer.broker = {LABS: None, DISPOSITIONS: 40}
    _seek_to_committed(consumer)  # labs starts at its first offset, 3
    consumer._committed_offset[LABS] = None
    assert faust_patches._new_offset(consumer, LABS) is None
    consumer._acked[LABS].insert(0, 3)
    assert faust_patches._new_offset(consumer, LABS) == 6


def test_offsets_that_do_not_exist_are_passed_as_before():
    # a gap Faust recorded (compacted away, transaction markers): nothing to wait for
    assert faust_patches._new_offset(_committer(50, [52, 53], gap=(50, 52)), LABS) == 54


def test_a_seek_back_sets_fausts_read_offset_so_the_records_are_not_dropped_as_read(faust):
    consumer = _consumer()
    _seek_to_committed(consumer)
    consumer._read_offset[LABS] = 2608  # as Faust's loop leaves it after these records
    _drain(consumer, (LABS, 151), (LABS, 2608))
    assert consumer.sought == [{LABS: 152}]
    assert consumer._read_offset[LABS] == 152  # Faust's loop hands out 152 again


def test_an_offset_handed_out_and_never_acknowledged_is_read_again_after_a_grace(
    faust, monkeypatch
):
    consumer = _committer(50, [51, 52])
    order = faust_patches.input_order(consumer)
    order.restart({LABS: 50})
    order.next[LABS] = 53  # 50 to 52 handed out; 50 lost on its way (never acknowledged)
    clock = iter([100.0, 105.0, 100.0 + HOLE_GRACE_S])
    monkeypatch.setattr(faust_patches.time, "monotonic", lambda: next(clock))
    assert faust_patches._new_offset(consumer, LABS) is None  # waits
    assert faust_patches._new_offset(consumer, LABS) is None  # still within the grace
    assert order.take_rewinds() == {}
    assert faust_patches._new_offset(consumer, LABS) is None  # read again, not committed
    assert order.take_rewinds() == {LABS: 50} and order.next[LABS] == 50
