"""The records a batch applies events to, and the trial monitor over every worker's patients.

Trial-level rules (the toxicity stopping boundary) see every patient of a trial: this
worker's through `TrialMonitor.observe` as a batch applies events, the other workers'
through the global table, reloaded on every gauge refresh and before the first batch after
a start, a rebalance or a failed batch (`ensure_loaded`). A monitor that saw only the
patients of new events would judge the boundary on part of the trial.

Per patient only the table's bytes and small summaries are held (the monitor's DLT course,
the cohort summary of `models/cohort_state.py`), each derived once per version of the
record: a record is parsed when it changes and dropped once its summaries are derived.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator

from cartwatch.alerts.engine import TrialMonitor
from cartwatch.alerts.pipeline import Pipeline, record_key
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.cohort_state import CohortFigures, summarize
from cartwatch.models.digest_owners import malloc_trim
from cartwatch.models.patient import PatientRecord
from cartwatch.models.record_codec import decode_record
from cartwatch.streams.worker.tables import TableRecords

# Records read between two turns of the event loop when the whole table is first read
# (~0.35 ms each: parsed, their DLT course and cohort summary derived, then dropped).
RECORDS_PER_TURN = 50


class TrialState:
    """The pipeline over the table's records and the trial monitor kept in step with them,
    and the cohort figures (`figures`) kept from the same versions of the records."""

    def __init__(self, store: TableRecords, thresholds: RuleThresholds) -> None:
        self.store = store
        self.thresholds = thresholds
        self.pipeline = Pipeline(store, thresholds)
        self.monitor = TrialMonitor(thresholds)
        self.figures = CohortFigures()  # the summary of each record version last loaded
        self.loaded = False  # the monitor holds every record of the table
        self.first_read = 0  # records read by the current `ensure_loaded` so far
        self._generation = 0  # of `invalidate` calls

    def invalidate(self) -> None:
        """The monitor observed events that will come again (a failed batch, a rebalance)."""
        self.loaded = False
        self._generation += 1

    async def ensure_loaded(self) -> None:
        """The monitor rebuilt from every record, unless it is current; the records are read
        `RECORDS_PER_TURN` at a time, with a turn of the event loop between (invalidated
        meanwhile, it starts over)."""
        while not self.loaded:
            generation = self._generation
            self._start_over()
            self.first_read = 0
            keys = [key for key, _ in self.store.items_stored()]
            if not keys:
                self.monitor.load([])
            for start in range(0, len(keys), RECORDS_PER_TURN):
                if start:
                    await asyncio.sleep(0)
                chunk = keys[start : start + RECORDS_PER_TURN]
                records = [r for key in chunk if (r := self._read(key)) is not None]
                self._load(records, every=True)
                self.first_read += len(records)
            self.loaded = generation == self._generation
            malloc_trim()  # the parsed records' freed blocks back to the system

    def _start_over(self) -> None:
        """A new monitor; a failed batch's claims go with its records."""
        self.pipeline.owners.clear()
        self.monitor = TrialMonitor(self.thresholds)

    def _read(self, key: str) -> PatientRecord | None:
        data = self.store.stored(key)
        return decode_record(data) if data is not None else None

    def changed(self) -> Iterator[str]:
        """Keys whose stored bytes are not those last loaded."""
        get = self.figures.get
        for key, data in self.store.items_stored():
            summary = get(key)
            if summary is None:
                yield key
            elif summary.data is not data:
                if summary.data == data:  # the same version read back from the changelog
                    summary.data = data
                else:
                    yield key

    def read_changed(self, keys: Iterable[str]) -> list[PatientRecord]:
        """The current records of `keys` (to `reload` in the same step)."""
        return [r for key in keys if (r := self._read(key)) is not None]

    def reload(self, records: Iterable[PatientRecord] | None = None) -> None:
        """Courses of the patients (all workers') whose record changed since the last reload,
        those records' event ids as seen (an id another worker used is then refused here
        too) and their cohort summaries; without `records`, of every patient, with a new
        monitor (in one step: `ensure_loaded` does it with turns of the event loop).

        `records` are the current versions (`read_changed`), read in the same step. A new
        monitor drops a failed batch's courses and boundary levels: a boundary alert raised
        again is recognised by its entry in the alert table and its database row written
        again (an idempotent upsert).
        """
        if records is None:
            self._start_over()
            records = self.read_changed(key for key, _ in self.store.items_stored())
            self._load(records, every=True)
            self.loaded = True
            return
        self._load(list(records), every=False)

    def _load(self, records: list[PatientRecord], every: bool) -> None:
        figures, stored = self.figures, self.store.stored
        changed = []
        for record in records:
            key = sys.intern(record_key(record.trial_id, record.patient_id))  # the owners' key
            data = stored(key)
            summary = figures.get(key)
            if summary is None or summary.data is not data:
                figures.put(key, summarize(record, data))
                changed.append(record)
            elif every:
                changed.append(record)
            self.pipeline.claim(record)
        self.monitor.load(changed)
