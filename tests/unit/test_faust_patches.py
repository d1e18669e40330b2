"""The fence between Faust's fetch iterator and its seeks (streams.faust_patches).

Faust's own fetch and seek are replaced by fakes; the fence around them is the real one.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import NamedTuple

import pytest

from streams import faust_patches


class TP(NamedTuple):
    topic: str
    partition: int


class FakeConsumer:
    """Records what the fence asks of Faust: the seeks to the committed offsets, and the
    seeks of single partitions."""

    def __init__(self, records: list, committed: dict | None = None) -> None:
        self.records = records
        self.seeks = 0
        self.sought: list[tuple[str, int]] = []
        committed = committed if committed is not None else {"labs": 151}
        self._committed_offset = {TP(t, 0): offset for t, offset in committed.items()}
        self.app = SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=self._acking))

    def _acking(self, topic: str) -> bool:
        return not topic.endswith("-changelog")  # Faust does not ack changelog records

    def assignment(self) -> set:
        return set(self._committed_offset)

    async def seek(self, tp, offset: int) -> None:
        self.sought.append((tp.topic, offset))


@pytest.fixture
def faust(monkeypatch):
    async def getmany(consumer: FakeConsumer, timeout: float):
        for record in consumer.records:
            topic, offset = record if isinstance(record, tuple) else ("labs", record)
            yield TP(topic, 0), offset

    async def perform_seek(consumer: FakeConsumer) -> None:
        consumer.seeks += 1

    monkeypatch.setattr(faust_patches, "_original_getmany", getmany)
    monkeypatch.setattr(faust_patches, "_original_perform_seek", perform_seek)
    # the fence calls `self.perform_seek()`: the patched method, as on Faust's Consumer
    monkeypatch.setattr(FakeConsumer, "perform_seek", faust_patches._perform_seek, raising=False)


def _drain(consumer: FakeConsumer, seek_after: int | None = None) -> list[int]:
    """What Faust's drain loop gets; a seek (as at the end of a rebalance) after the
    record at index `seek_after` has been handed out."""

    async def go() -> list[int]:
        got = []
        async for _, offset in faust_patches._getmany(consumer, 1.0):
            got.append(offset)
            if seek_after is not None and len(got) == seek_after + 1:
                await consumer.perform_seek()
        return got

    return asyncio.run(go())


def test_without_a_seek_every_fetched_record_is_handed_out(faust):
    consumer = FakeConsumer([5, 6, 7])
    assert _drain(consumer) == [5, 6, 7]
    assert consumer.seeks == 0


def test_records_fetched_before_a_seek_are_not_handed_out_after_it(faust):
    consumer = FakeConsumer([405, 406, 407, 408])
    assert _drain(consumer, seek_after=1) == [405, 406]
    # the seek itself, and one more once the record in flight is done: its read offset
    # must not stand in for the committed one
    assert consumer.seeks == 2


def test_a_seek_during_the_last_record_is_followed_by_another(faust):
    consumer = FakeConsumer([405, 406])
    assert _drain(consumer, seek_after=1) == [405, 406]
    assert consumer.seeks == 2


def test_the_next_fetch_after_a_fenced_one_is_handed_out_whole(faust):
    consumer = FakeConsumer([405, 406, 407])
    _drain(consumer, seek_after=0)
    consumer.records = [151, 152, 153]  # read again from the committed offset
    assert _drain(consumer) == [151, 152, 153]
    assert consumer.seeks == 2


def test_an_input_partition_with_nothing_committed_is_read_again_from_its_start(faust):
    consumer = FakeConsumer(
        [405, 406], committed={"labs": 151, "dispositions": None, "records-changelog": None}
    )
    _drain(consumer, seek_after=0)
    assert consumer.seeks == 2
    assert consumer.sought == [("dispositions", 0)]  # not labs (committed), not a changelog


def test_table_changelog_records_fetched_before_a_seek_are_still_handed_out(faust):
    consumer = FakeConsumer([405, ("records-changelog", 17), 406, ("records-changelog", 18)])
    assert _drain(consumer, seek_after=0) == [405, 17, 18]  # the seek does not move them
    assert consumer.seeks == 2


def test_without_a_seek_no_partition_is_moved(faust):
    consumer = FakeConsumer([1, 2], committed={"dispositions": None})
    _drain(consumer)
    assert consumer.sought == []


def test_install_puts_the_fence_on_fausts_consumer():
    from faust.transport.consumer import Consumer

    faust_patches.install()
    faust_patches.install()  # idempotent
    assert Consumer.getmany is faust_patches._getmany
    assert Consumer.perform_seek is faust_patches._perform_seek
