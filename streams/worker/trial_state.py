"""The records a batch applies events to, and the trial monitor over every worker's patients.

Trial-level rules (the toxicity stopping boundary) see every patient of a trial: this
worker's through `TrialMonitor.observe` as a batch applies events, the other workers'
through the global table, reloaded on every gauge refresh and before the first batch after
a start, a rebalance or a failed batch (`ensure_loaded`). A monitor that saw only the
patients of new events would judge the boundary on part of the trial.
"""

from __future__ import annotations

from collections.abc import Iterable

from cartwatch.alerts.engine import TrialMonitor
from cartwatch.alerts.pipeline import Pipeline
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.worker.tables import TableRecords

# Records decoded between two turns of the event loop when the whole table is first read
# (~0.1-0.3 ms each: the API and /metrics answer within ~0.15 s meanwhile).
RECORDS_PER_TURN = 500


class TrialState:
    """The pipeline over the table's records and the trial monitor kept in step with them."""

    def __init__(self, store: TableRecords, thresholds: RuleThresholds) -> None:
        self.store = store
        self.thresholds = thresholds
        self.pipeline = Pipeline(store, thresholds)
        self.monitor = TrialMonitor(thresholds)
        self.loaded = False  # the monitor holds every record of the table
        self._monitored: dict[tuple[str, str], PatientRecord] = {}  # record last loaded

    def invalidate(self) -> None:
        """The monitor observed events that will come again (a failed batch, a rebalance)."""
        self.loaded = False

    async def ensure_loaded(self) -> None:
        """Every record decoded and the monitor rebuilt from them, unless it is current."""
        if not self.loaded:
            await self.store.decode_all(RECORDS_PER_TURN)
            self.reload()
            self.loaded = True

    def reload(self, records: Iterable[PatientRecord] | None = None) -> None:
        """Courses of the patients (all workers') whose record changed since the last reload,
        and those records' event ids as seen (an id another worker used is then refused here
        too); without `records`, of every patient, with a new monitor.

        A record is replaced, never changed, once stored, so an unchanged one is the same
        object and costs one identity check. A new monitor drops a failed batch's courses
        and boundary levels: a boundary alert raised again is recognised by its entry in the
        alert table and its database row written again (an idempotent upsert).
        """
        if records is None:
            self._monitored.clear()
            self.pipeline.owners.clear()  # a failed batch's claims go with its records
            self.monitor = TrialMonitor(self.thresholds)
            records = self.store.all()
        monitored, changed = self._monitored, []
        for record in records:
            key = (record.trial_id, record.patient_id)
            if monitored.get(key) is not record:
                monitored[key] = record
                changed.append(record)
                self.pipeline.claim(record)
        self.monitor.load(changed)
