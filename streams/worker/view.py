"""What the HTTP API reads of a running worker: its records, alerts and Faust's state."""

from __future__ import annotations

from collections.abc import Iterable

import faust
from faust.exceptions import ConsumerNotStarted

from cartwatch.alerts.pipeline import record_key
from cartwatch.models.dlt import boundary_report
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.worker.settings import Settings
from cartwatch.streams.worker.tables import TableRecords


class WorkerView:
    """The read-only view the API serves (`cartwatch.streams.http.api.StateView`)."""

    def __init__(
        self,
        app: faust.App,
        store: TableRecords,
        alert_table: faust.GlobalTable,
        settings: Settings,
    ) -> None:
        self.app = app
        self.store = store
        self.alert_table = alert_table
        self.settings = settings

    def records(self, trial_id: str | None = None) -> Iterable[PatientRecord]:
        return self.store.all(trial_id)

    def record(self, trial_id: str, patient_id: str) -> PatientRecord | None:
        return self.store.read(record_key(trial_id, patient_id))

    def trial_ids(self) -> list[str]:
        return self.store.trial_ids()  # from the keys: no record parsed

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]:
        alerts = [a for a in self.alert_table.values() if trial_id in (None, a["trial_id"])]
        alerts.sort(key=lambda a: (a["detected_at"], a["alert_id"]), reverse=True)
        return alerts[: self.settings.recent_alerts]

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict:
        toxicity = self.settings.thresholds.toxicity
        return boundary_report(self.store.all(trial_id), toxicity, as_of)

    def is_consuming(self) -> bool:
        """Partitions assigned, this worker's table partitions restored, not rebalancing."""
        app = self.app
        if app.rebalancing or app.in_recovery or not app.consumer.assignment():
            return False
        # Not `standbys_ready`: that waits for changelog traffic and never comes on an idle
        # trial; other workers' partitions are read continuously after recovery anyway.
        return app.tables.recovery.completed.is_set()

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """Highwater minus committed offset of each owned input partition (Faust's view)."""
        consumer, lag = self.app.consumer, {}
        try:
            owned = consumer.assignment()
        except ConsumerNotStarted:
            return lag
        inputs = self.settings.input_topics
        for tp in owned:
            # next offset to read, as in Kafka; nothing committed yet counts from the start
            committed = consumer._committed_offset.get(tp) or 0
            highwater = consumer.highwater(tp) if tp.topic in inputs else None
            if highwater is not None:
                lag[(tp.topic, tp.partition)] = max(0, highwater - committed)
        return lag
