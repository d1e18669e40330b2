"""A batch's records, sent by Faust's producer directly, so that on the embedded broker each
partition's last produce batch holds one record.

Directly: a record sent through a Faust topic (`Topic.send`, a table's `send_changelog`)
cost 160-225 µs of CPU here, against 29-36 µs through the producer it ends in (5,000
records of 400 bytes, normal batches; 170-250 µs either way with one record per batch),
and the worker sends a record per alert, per alert's table entry and per patient touched.

The embedded broker (Tansu) answers ListOffsets "latest" with the first offset of a
partition's last produce batch plus one when that batch holds several records, so a reader
that stops at "latest" (a table restored from its changelog, our bulk changelog reader)
stops short. Sending every record alone (a producer batch size of one byte) kept "latest"
right at one broker round trip per record, which capped the worker on the event-to-alert
stream (docs/BENCHMARKS.md). Here the records of a batch go out in normal produce batches,
and each partition's last record follows alone once the others are acknowledged: two
round trips per batch. Within a worker only its input path sends to these partitions, one batch
at a time, so nothing of its own joins a last record's produce batch. Not guaranteed: a
crash between the two sends leaves a several-record batch last (its records belong to
events not yet acknowledged, processed and sent again), and so can a worker that lost its
partitions while still sending. The global tables read on past a wrong "latest" after
recovery, so either costs a table a short delay, not data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from faust.types import ProducerT


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One record to send: its topic and partition, and the call that sends it and returns
    what to await for the broker's acknowledgement."""

    topic: str
    partition: int
    send: Callable[[], Awaitable[Awaitable[object]]]
    acknowledged: Callable[[], None] | None = None


def outgoing(
    producer: ProducerT,
    topic: str,
    partition: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
    acknowledged: Callable[[], None] | None = None,
) -> Outgoing:
    """A record for `producer` to send; `send_all` runs `acknowledged` once the broker has
    acknowledged it (and every other record of that call), never when a send failed."""

    async def send() -> Awaitable[object]:
        return await producer.send(topic, key, value, partition, None, headers)

    return Outgoing(topic, partition, send, acknowledged)


async def send_all(records: Sequence[Outgoing], last_alone: bool) -> None:
    """Send every record and wait until the broker has acknowledged each one; with
    `last_alone`, each partition's last record only once the others are acknowledged.
    Then the records' `acknowledged` callbacks run, in order."""
    last: dict[tuple[str, int], int] = {}
    for index, record in enumerate(records):
        last[record.topic, record.partition] = index
    alone = set(last.values()) if last_alone else set()
    first = [await r.send() for i, r in enumerate(records) if i not in alone]
    await asyncio.gather(*first)
    await asyncio.gather(*[await records[i].send() for i in sorted(alone)])
    for record in records:
        if record.acknowledged is not None:
            record.acknowledged()
