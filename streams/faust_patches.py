"""A fence between Faust's fetcher and its seeks to the committed offsets.

Faust (faust-streaming, the range pinned in pyproject.toml) seeks every input partition
to its committed offset when a rebalance or a restart completes (`Consumer.perform_seek`),
while its fetcher may still be handing out records fetched before that seek. Seen here
after a SIGKILL and restart:

- a stale record far ahead of the committed offset arrives right after the seek; Faust
  takes the jump for a gap (compacted or transaction-marker offsets), counts the whole
  range as acknowledged, and then acknowledges each offset a second time when the seek
  delivers it for real. The duplicates make its commit advance by one offset per commit
  interval, and a crash in between would have committed events never processed;
- or the stale record's read offset overwrites the seek's, and every record re-read
  below it is dropped as already seen: never processed, never acknowledged, the commit
  stuck for good (the "stalled" worker of the two-worker and crash tests).

The fence: `perform_seek` counts seeks; the fetch iterator hands out no input record
after a seek that began since the fetch, and once through it seeks again (so the read
offsets are the committed ones, whatever a stale record in flight wrote; an input
partition with nothing committed goes back to its start). The input records it drops
are read again from the committed offsets: at-least-once, and the stream's `event_id`
makes the repeats harmless. Table changelog records are handed out as before: the seek
does not move them, and the tables need every one. Broker-independent: applied on
Apache Kafka too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from faust.transport.consumer import Consumer

_original_getmany = Consumer.getmany
_original_perform_seek = Consumer.perform_seek


def _seeks(consumer: Consumer) -> int:
    return getattr(consumer, "_cartwatch_seeks", 0)


async def _perform_seek(self: Consumer) -> None:
    self._cartwatch_seeks = _seeks(self) + 1
    await _original_perform_seek(self)


async def _getmany(self: Consumer, timeout: float) -> AsyncIterator:
    seeks = _seeks(self)
    is_input = self.app.topics.acks_enabled_for
    async for tp, message in _original_getmany(self, timeout):
        if _seeks(self) != seeks and is_input(tp.topic):
            continue  # read again below; a changelog record (not acked, not sought) goes on
        yield tp, message
    # Also when the last record was handed out before the seek and finished after it.
    if _seeks(self) != seeks:
        await _read_again(self)


async def _read_again(self: Consumer) -> None:
    """Back to the committed offsets, whatever a record fetched before the seek wrote; an
    input partition with nothing committed yet goes back to its start (Faust's seek leaves
    it where the dropped records had taken it)."""
    await self.perform_seek()
    for tp in self.assignment():
        if self.app.topics.acks_enabled_for(tp.topic) and self._committed_offset.get(tp) is None:
            await self.seek(tp, 0)


def install() -> None:
    """Put the fence in place (idempotent)."""
    if Consumer.getmany is not _getmany:
        Consumer.getmany = _getmany
        Consumer.perform_seek = _perform_seek
