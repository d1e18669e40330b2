"""Shared parts of the API's unit tests (no tests here): a real state view over the
contract's example events."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cartwatch.alerts.pipeline import Pipeline, record_key
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.dlt import boundary_report
from cartwatch.models.patient import PatientRecord

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "events.jsonl"


class ExampleView:
    """A real StateView over records built by the pipeline from the contract's example."""

    def __init__(self, consuming: bool = True) -> None:
        self.store: dict[str, PatientRecord] = {}
        self.alerts: list[dict] = []
        pipeline = Pipeline(self.store, RuleThresholds())
        for raw in EXAMPLES.read_bytes().splitlines():
            self.alerts[:0] = [a.model_dump() for a in pipeline.handle(raw).alerts]
        self.consuming = consuming

    def records(self, trial_id: str | None = None) -> Iterable[PatientRecord]:
        return [r for r in self.store.values() if trial_id in (None, r.trial_id)]

    def record(self, trial_id: str, patient_id: str) -> PatientRecord | None:
        return self.store.get(record_key(trial_id, patient_id))

    def trial_ids(self) -> list[str]:
        return sorted({r.trial_id for r in self.store.values()})

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]:
        return [a for a in self.alerts if trial_id in (None, a["trial_id"])]

    def is_consuming(self) -> bool:
        return self.consuming

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict:
        records = self.records(trial_id)
        return boundary_report(records, RuleThresholds().toxicity, as_of)
