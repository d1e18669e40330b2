"""Shared parts of the API's unit tests (no tests here): a real state view over the
contract's example events."""

from __future__ import annotations

from pathlib import Path

from cartwatch.alerts.pipeline import Pipeline
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.streams.devtools.replay_view import ReplayView

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "events.jsonl"


class ExampleView(ReplayView):
    """A real StateView over records built by the pipeline from the contract's example, with
    the alerts it raised (newest first) and a consuming flag to set."""

    def __init__(self, consuming: bool = True) -> None:
        super().__init__({})
        self.alerts: list[dict] = []
        pipeline = Pipeline(self.store, RuleThresholds())
        for raw in EXAMPLES.read_bytes().splitlines():
            self.alerts[:0] = [a.model_dump() for a in pipeline.handle(raw).alerts]
        self.consuming = consuming

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]:
        return [a for a in self.alerts if trial_id in (None, a["trial_id"])]

    def is_consuming(self) -> bool:
        return self.consuming
