"""Patient records in a Faust table, behind the mapping the processing core expects."""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import faust

from cartwatch.alerts.pipeline import trial_of_key
from cartwatch.models.patient import PatientRecord
from cartwatch.models.record_codec import decode_record, encode_record
from cartwatch.streams.kafka.sends import Outgoing, outgoing


def table_write(
    table: faust.Table,
    key: str,
    value: Any,
    partition: int,
    acknowledged: Callable[[], None] | None = None,
) -> Outgoing:
    """A table key to set, its changelog record sent to `partition` explicitly (with
    `kafka.sends.send_all`, which waits for the broker's acknowledgement). The key is set
    in this worker's copy of the table (then `acknowledged` runs) only once the broker has
    the record: after a failed send the batch is read again, and a copy that already held
    the value would make its events look processed and the write would never be repeated.

    The partition is that of the input message that changed the key, so the table stays
    co-partitioned with the inputs even when writes happen after a batch of events
    (Faust's own `table[key] = value` needs the current event for that). The key and value
    are serialized as Faust's `send_changelog` would; what that also does on an
    acknowledgement (`set_persisted_offset`) does nothing in a memory store.

    Wait for the acknowledgement before the input events are acknowledged: Faust commits
    acknowledged offsets after `producer.flush()`, but that flush gives up on its buffer
    after 0.1 s without a send, so a commit could overtake the changelog record and a crash
    then loses the update.
    """
    topic = table.changelog_topic
    key_bytes, _ = topic.prepare_key(key, table.key_serializer)
    value_bytes, _ = topic.prepare_value(value, table.value_serializer)

    def set_key() -> None:
        table.data[key] = value
        if acknowledged is not None:
            acknowledged()

    name = topic.get_topic_name()
    producer = table.app.producer
    return outgoing(producer, name, partition, key_bytes, value_bytes, acknowledged=set_key)


# Parsed records kept for reading (the API's single-patient reads, the desk): a record
# parses to ~28 KB of objects against ~1.7 KB stored, so only the most recent are kept.
PARSED_CACHE_SIZE = 256


class TableRecords(MutableMapping[str, PatientRecord]):
    """Patient records stored in a global table as bytes (models/record_codec.py).

    A global table also reads back its own changelog, so for a moment it can hold an
    older version of a record this worker wrote since. The records this worker wrote are
    therefore kept in `owned` (as the bytes written, the very object the table was given)
    and win over the table until the input partitions are revoked (the next assignment reads
    the table to its changelog's end first). Only the bytes are held per patient: a record is parsed
    when read, and the last `cache_size` parsed for reading are kept (`read`, `all`) until
    their key holds other bytes. Writes wait in `pending` until `commit`, which the
    checkpoint calls once the alerts they caused are acknowledged; a committed record is
    `owned` once the broker has it.
    """

    def __init__(self, table: faust.Table, cache_size: int = PARSED_CACHE_SIZE) -> None:
        self.table = table
        self.cache_size = cache_size
        self.pending: dict[str, PatientRecord] = {}
        self.owned: dict[str, bytes] = {}
        self._parsed: OrderedDict[str, tuple[bytes, PatientRecord]] = OrderedDict()

    def forget_owned(self) -> None:
        """Drop the records this worker wrote (call when partitions are revoked)."""
        self.owned.clear()

    def stored(self, key: str) -> bytes | None:
        """The bytes of the key's current record: this worker's own, else the table's."""
        own = self.owned.get(key)
        data = self.table.data.get(key)
        if own is None:
            return data
        if data is not None and data is not own and data == own:
            self.owned[key] = own = data  # the table read our write back: hold one copy
        return own

    def items_stored(self) -> Iterator[tuple[str, bytes]]:
        """(key, current bytes) of every record, as `stored` gives them."""
        owned = self.owned
        for key, data in list(self.table.data.items()):
            yield key, (self.stored(key) if key in owned else data)

    def __getitem__(self, key: str) -> PatientRecord:
        """The record to apply events to: a copy, so batches that never reach their checkpoint
        (a failed send, a crash) leave nothing behind that claims their events."""
        if key in self.pending:
            return self.pending[key]
        data = self.stored(key)
        if data is None:
            raise KeyError(key)
        return decode_record(data)

    def discard_pending(self) -> None:
        """Forget what the batches since the last checkpoint applied; their events will be
        delivered again."""
        self.pending.clear()

    def read(self, key: str) -> PatientRecord | None:
        """The stored record, for reading only (the API)."""
        data = self.stored(key)
        return self._parse(key, data) if data is not None else None

    def _parse(self, key: str, data: bytes) -> PatientRecord:
        parsed = self._parsed
        cached = parsed.get(key)
        if cached is not None and cached[0] is data:
            parsed.move_to_end(key)
            return cached[1]
        record = decode_record(data)
        parsed[key] = (data, record)
        parsed.move_to_end(key)
        while len(parsed) > self.cache_size:
            parsed.popitem(last=False)
        return record

    def __setitem__(self, key: str, record: PatientRecord) -> None:
        self.pending[key] = record

    def __delitem__(self, key: str) -> None:
        raise TypeError("patient records are never deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.data.keys())

    def __len__(self) -> int:
        return len(self.table.data)

    def commit(self, partitions: dict[str, int]) -> list[Outgoing]:
        """The pending records as table writes, each changelog record to the given
        partition (send them with `send_all` before the events are acknowledged; a record
        is this worker's, in `owned`, once the broker has acknowledged it)."""
        writes = []
        for key, partition in partitions.items():
            data = encode_record(self.pending.pop(key))
            own = functools.partial(self.owned.__setitem__, key, data)  # once acknowledged
            writes.append(table_write(self.table, key, data, partition, own))
        return writes

    async def decode_all(self, per_turn: int) -> None:
        """Decode every stored record once, giving the event loop a turn every `per_turn`
        records (a check that every stored record reads; none is kept beyond the cache)."""
        for n, _ in enumerate(self.all(), start=1):
            if n % per_turn == 0:
                await asyncio.sleep(0)

    def trial_ids(self) -> list[str]:
        """The trials of the stored records, sorted, from their keys (none is parsed)."""
        return sorted({trial_of_key(key) for key in list(self.table.data.keys())})

    def stored_of(self, trial_id: str | None = None) -> list[bytes]:
        """The current bytes of every record, optionally of one trial: a cheap copy taken in
        the event loop, to parse (`decode_record`) in a thread."""
        return [
            d for k, d in self.items_stored() if trial_id is None or trial_of_key(k) == trial_id
        ]

    def all(self, trial_id: str | None = None) -> Iterator[PatientRecord]:
        """Every stored record, optionally of one trial (parsed as read)."""
        for key, data in self.items_stored():
            if trial_id is None or trial_of_key(key) == trial_id:
                yield self._parse(key, data)
