"""What the HTTP API reads of a running worker: its records, alerts and input state."""

from __future__ import annotations

from collections.abc import Iterable

import faust

from cartwatch.alerts.pipeline import record_key
from cartwatch.models.dlt import boundary_report
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.kafka.input_consumer import InputConsumer
from cartwatch.streams.worker.settings import Settings
from cartwatch.streams.worker.tables import TableRecords


class WorkerView:
    """The read-only view the API serves (`cartwatch.streams.http.api.StateView`)."""

    def __init__(
        self,
        app: faust.App,
        inputs: InputConsumer,
        store: TableRecords,
        alert_table: faust.GlobalTable,
        settings: Settings,
    ) -> None:
        self.app = app
        self.inputs = inputs
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
        """Input partitions assigned and ready (the tables read to their changelogs' ends),
        and Faust's table recovery done."""
        if not self.inputs.ready or not self.inputs.assignment():
            return False
        return self.app.tables.recovery.completed.is_set()

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """High watermark minus committed offset of each owned input partition."""
        return {(tp.topic, tp.partition): n for tp, n in self.inputs.lag().items()}
