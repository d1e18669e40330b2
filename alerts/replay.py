"""`cartwatch replay`: a file of events through the worker's very processing core, offline."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from cartwatch.alerts.engine import TrialMonitor
from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.pipeline import Pipeline, decode
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.cohort import cohort_reports
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.events import Event, parse_timestamp
from cartwatch.models.patient import PatientRecord


class Accepted(NamedTuple):
    """An accepted event and the bytes it came as (its values as sent, before intake's
    unit conversion)."""

    event: Event
    raw: bytes


@dataclass(slots=True)
class ReplayResult:
    """The report, the alerts in firing order, and what happened to each line."""

    report: dict
    alerts: list[AlertRaised]
    accepted: int = 0
    duplicates: int = 0
    after_as_of: int = 0
    blank: int = 0  # lines holding nothing but white space: no message, so not invalid
    invalid: list[tuple[int, list[str]]] = field(default_factory=list)
    records: dict[str, PatientRecord] = field(default_factory=dict)
    events: list[Accepted] = field(default_factory=list)  # when asked to keep them


def replay(
    lines: Iterable[bytes],
    as_of: datetime,
    thresholds: RuleThresholds,
    as_of_text: str | None = None,
    *,
    keep_events: bool = False,
) -> ReplayResult:
    """Run lines (in order) through the core; lines with occurred_at after `as_of` are skipped.
    The report's `as_of` is `as_of_text` when given (the timestamp as the caller wrote it).
    `keep_events` keeps the accepted events and their bytes, in arrival order (the
    datasets' values as sent)."""
    records: dict[str, PatientRecord] = {}
    pipeline = Pipeline(records, thresholds)
    trials = TrialMonitor(thresholds)  # trial-level rules (toxicity stopping boundary)
    result = ReplayResult(report={}, alerts=[], records=records)
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            result.blank += 1
            continue
        try:
            event = decode(raw)
        except InvalidEvent as exc:
            result.invalid.append((number, exc.reasons))
            continue
        if event.occurred_at > as_of:
            result.after_as_of += 1
            continue
        handled = pipeline.apply(event)
        if handled.outcome == "duplicate":
            result.duplicates += 1
            continue
        result.accepted += 1
        if keep_events:
            result.events.append(Accepted(event, bytes(raw)))
        result.alerts.extend(handled.alerts)
        result.alerts.extend(trials.observe(records[handled.record_key], event))
    result.report = full_report(records.values(), as_of, as_of_text)
    return result


def full_report(
    records: Iterable[PatientRecord], as_of: datetime, as_of_text: str | None = None
) -> dict:
    """REPORT.json: every trial's report as of the instant (CONTRACT 5)."""
    shown = as_of_text if as_of_text is not None else as_of.isoformat()
    return {"as_of": shown, "trials": cohort_reports(records, as_of.timestamp())}


def replay_file(
    events: Path, as_of: str, report_out: Path, alerts_out: Path, thresholds: RuleThresholds
) -> ReplayResult:
    """Replay a JSONL file and write REPORT.json (its `as_of` as given) and ALERTS.jsonl."""
    with events.open("rb") as fh:
        result = replay(fh, parse_timestamp(as_of), thresholds, as_of)
    report_out.write_text(json.dumps(result.report, indent=2, ensure_ascii=False) + "\n")
    with alerts_out.open("w", encoding="utf-8") as fh:
        for alert in result.alerts:
            fh.write(alert.model_dump_json() + "\n")
    return result
