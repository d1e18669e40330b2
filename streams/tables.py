"""Patient records in a Faust table, behind the mapping the processing core expects."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping

import faust

from models.patient import PatientRecord


class TableRecords(MutableMapping[str, PatientRecord]):
    """Reads records from the table; writes wait in `pending` until `commit(key)`.

    The agent commits a record only once the alerts it caused are acknowledged, so a
    crash never leaves a record that claims an alert the broker never received.
    """

    def __init__(self, table: faust.Table) -> None:
        self.table = table
        self.pending: dict[str, PatientRecord] = {}

    def __getitem__(self, key: str) -> PatientRecord:
        if key in self.pending:
            return self.pending[key]
        data = self.table.get(key)
        if data is None:
            raise KeyError(key)
        return PatientRecord.from_dict(data)

    def __setitem__(self, key: str, record: PatientRecord) -> None:
        self.pending[key] = record

    def __delitem__(self, key: str) -> None:
        raise TypeError("patient records are never deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self.table.keys())

    def __len__(self) -> int:
        return len(self.table)

    def commit(self, key: str) -> None:
        """Write the pending record of `key` to the table (and its changelog)."""
        self.table[key] = self.pending.pop(key).to_dict()

    def all(self, trial_id: str | None = None) -> Iterator[PatientRecord]:
        """Every stored record, optionally of one trial."""
        for key, data in list(self.table.items()):
            if trial_id is None or json.loads(key)[0] == trial_id:
                yield PatientRecord.from_dict(data)
