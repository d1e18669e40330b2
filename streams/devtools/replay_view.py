"""A state view over records a replay built: the desk's benchmark and tests serve the API
from it as a worker serves it from its tables (`cartwatch.streams.http.api.StateView`)."""

from __future__ import annotations

from collections.abc import Iterable

from cartwatch.alerts.pipeline import record_key
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.dlt import boundary_report
from cartwatch.models.patient import PatientRecord


class ReplayView:
    """Records by their key (`record_key`), as `cartwatch.alerts.replay.replay` returns them."""

    def __init__(
        self, records: dict[str, PatientRecord], thresholds: RuleThresholds | None = None
    ) -> None:
        self.store = records
        self.thresholds = thresholds or RuleThresholds()

    def records(self, trial_id: str | None = None) -> Iterable[PatientRecord]:
        return [r for r in self.store.values() if trial_id in (None, r.trial_id)]

    def record(self, trial_id: str, patient_id: str) -> PatientRecord | None:
        return self.store.get(record_key(trial_id, patient_id))

    def trial_ids(self) -> list[str]:
        return sorted({r.trial_id for r in self.store.values()})

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]:
        return []  # the desk reads alerts from the database

    def is_consuming(self) -> bool:
        return True

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict:
        return boundary_report(self.records(trial_id), self.thresholds.toxicity, as_of)
