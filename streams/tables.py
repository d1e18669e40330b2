"""Patient records in a Faust table, behind the mapping the processing core expects."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust

from models.patient import PatientRecord
from models.record_codec import decode_record, encode_record
from streams.pipeline import trial_of_key
from streams.sends import Outgoing, outgoing


def table_write(
    table: faust.Table, key: str, value: Any, partition: int, set_on_send: bool = True
) -> Outgoing:
    """A table key to set, its changelog record sent to `partition` explicitly (with
    `streams.sends.send_all`, which waits for the broker's acknowledgement). The key is set
    in the table's data as the record is sent, or (`set_on_send` False) by the caller.

    The partition is that of the input message that changed the key, so the table stays
    co-partitioned with the inputs even when writes happen after a batch of events
    (Faust's own `table[key] = value` needs the current event for that). The key and value
    are serialized as Faust's `send_changelog` would; what that also does on an
    acknowledgement (`set_persisted_offset`) does nothing in a memory store.

    Wait for the acknowledgement before the input events are acknowledged: Faust commits
    acknowledged offsets after `producer.flush()`, but that flush gives up on its buffer
    after 0.1 s without a send, so a commit could overtake the changelog record and a crash
    then loses the update (seen with the embedded broker).
    """
    topic = table.changelog_topic
    key_bytes, _ = topic.prepare_key(key, table.key_serializer)
    value_bytes, _ = topic.prepare_value(value, table.value_serializer)

    def set_key() -> None:
        table.data[key] = value

    name = topic.get_topic_name()
    before = set_key if set_on_send else None
    return outgoing(table.app.producer, name, partition, key_bytes, value_bytes, before=before)


class TableRecords(MutableMapping[str, PatientRecord]):
    """Patient records stored in a global table as bytes (models/record_codec.py), parsed once.

    A global table also reads back its own changelog, so for a moment it can hold an
    older version of a record this worker wrote since. The records this worker wrote are
    therefore kept in `owned` and win over the table until the next rebalance (when
    partitions may move and recovery brings the table up to date). Other records are
    parsed from the table's bytes and cached until the table holds other bytes for the
    key.

    Writes wait in `pending` until `commit`, which the agent calls once the alerts they
    caused are acknowledged: the records become `owned` (the next batch builds on them) and
    their changelog records are returned to send. A commit stays unconfirmed until its
    records are acknowledged by the broker (`confirm`, oldest first: only then does the
    table's own data hold them); `roll_back` undoes every unconfirmed commit, so after a
    failure no record claims events whose changelog record may be missing.
    """

    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self.pending: dict[str, PatientRecord] = {}
        self.owned: dict[str, PatientRecord] = {}
        self._parsed: dict[str, tuple[bytes, PatientRecord]] = {}
        # per unconfirmed commit, oldest first: {key: (bytes sent, record owned before it)}
        self._unconfirmed: list[dict[str, tuple[bytes, PatientRecord | None]]] = []

    def forget_owned(self) -> None:
        """Drop the records this worker wrote (call when partitions are revoked, once every
        commit is confirmed)."""
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
        data, owned = self.table.data, self.owned
        yield from list(data.keys())
        yield from [key for key in owned if key not in data]  # written, not yet confirmed

    def __len__(self) -> int:
        data = self.table.data
        return len(data) + sum(1 for key in self.owned if key not in data)

    def commit(self, partitions: dict[str, int]) -> list[Outgoing]:
        """The pending records as table writes, each changelog record to the given
        partition (send them before the events are acknowledged, then `confirm`)."""
        writes, undo = [], {}
        for key, partition in partitions.items():
            record = self.pending.pop(key)
            data = encode_record(record)
            writes.append(table_write(self.table, key, data, partition, set_on_send=False))
            undo[key] = (data, self.owned.get(key))
            self.owned[key] = record
        self._unconfirmed.append(undo)
        return writes

    def confirm(self) -> None:
        """The oldest unconfirmed commit's records are acknowledged by the broker."""
        for key, (data, _) in self._unconfirmed.pop(0).items():
            self.table.data[key] = data

    def roll_back(self) -> None:
        """Undo every unconfirmed commit, newest first (its events will be read again)."""
        while self._unconfirmed:
            for key, (_, before) in self._unconfirmed.pop().items():
                if before is None:
                    self.owned.pop(key, None)
                else:
                    self.owned[key] = before
        self.pending.clear()

    async def decode_all(self, per_turn: int) -> None:
        """Decode every stored record into the cache, giving the event loop a turn every
        `per_turn` records: `all` then reads them without decoding (those that change
        meanwhile excepted)."""
        for n, _ in enumerate(self.all(), start=1):
            if n % per_turn == 0:
                await asyncio.sleep(0)

    def all(self, trial_id: str | None = None) -> Iterator[PatientRecord]:
        """Every stored record (those committed and not yet confirmed too), optionally of
        one trial."""
        data, owned = self.table.data, self.owned
        for key, value in list(data.items()):
            if trial_id is None or trial_of_key(key) == trial_id:
                yield owned[key] if key in owned else self._parse(key, value)
        for key, record in [item for item in owned.items() if item[0] not in data]:
            if trial_id is None or trial_of_key(key) == trial_id:
                yield record
