"""Patient records in a Faust table, behind the mapping the processing core expects."""

from __future__ import annotations

import asyncio
import functools
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


class TableRecords(MutableMapping[str, PatientRecord]):
    """Patient records stored in a global table as bytes (models/record_codec.py), parsed once.

    A global table also reads back its own changelog, so for a moment it can hold an
    older version of a record this worker wrote since. The records this worker wrote are
    therefore kept in `owned` and win over the table until the next rebalance (when
    partitions may move and recovery brings the table up to date). Other records are
    parsed from the table's bytes and cached until the table holds other bytes for the
    key. Writes wait in `pending` until `commit`, which the agent calls once the alerts
    they caused are acknowledged; a committed record is `owned` once the broker has it.
    """

    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self.pending: dict[str, PatientRecord] = {}
        self.owned: dict[str, PatientRecord] = {}
        self._parsed: dict[str, tuple[bytes, PatientRecord]] = {}

    def forget_owned(self) -> None:
        """Drop the records this worker wrote (call when partitions are revoked)."""
        self.owned.clear()

    def __getitem__(self, key: str) -> PatientRecord:
        """The record to apply events to: a copy, so a batch that never commits (cancelled by
        a rebalance, a crash in the agent) leaves nothing behind that claims its events."""
        if key in self.pending:
            return self.pending[key]
        if key in self.owned:
            return PatientRecord.from_dict(self.owned[key].to_dict())
        data = self.table.data.get(key)
        if data is None:
            raise KeyError(key)
        return decode_record(data)

    def begin_batch(self) -> None:
        """Forget what an unfinished batch applied; its events will be delivered again."""
        self.pending.clear()

    def read(self, key: str) -> PatientRecord | None:
        """The stored record, for reading only (the API)."""
        if key in self.owned:
            return self.owned[key]
        data = self.table.data.get(key)
        return self._parse(key, data) if data is not None else None

    def _parse(self, key: str, data: bytes) -> PatientRecord:
        cached = self._parsed.get(key)
        if cached is not None and cached[0] is data:
            return cached[1]
        record = decode_record(data)
        self._parsed[key] = (data, record)
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
            record = self.pending.pop(key)
            own = functools.partial(self.owned.__setitem__, key, record)  # once acknowledged
            writes.append(table_write(self.table, key, encode_record(record), partition, own))
        return writes

    async def decode_all(self, per_turn: int) -> None:
        """Decode every stored record into the cache, giving the event loop a turn every
        `per_turn` records: `all` then reads them without decoding (those that change
        meanwhile excepted)."""
        for n, _ in enumerate(self.all(), start=1):
            if n % per_turn == 0:
                await asyncio.sleep(0)

    def all(self, trial_id: str | None = None) -> Iterator[PatientRecord]:
        """Every stored record, optionally of one trial."""
        for key, data in list(self.table.data.items()):
            if trial_id is None or trial_of_key(key) == trial_id:
                yield self.owned[key] if key in self.owned else self._parse(key, data)
