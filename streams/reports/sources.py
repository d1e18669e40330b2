"""Where a report or an export reads a trial from: the configured database's patient
records and alerts, or an events file through the same core as `cartwatch replay`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cartwatch.alerts.replay import Accepted, replay
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.errors import CartwatchError
from cartwatch.models.patient import PatientRecord

if TYPE_CHECKING:
    from sqlalchemy import Engine


class UnknownTrial(CartwatchError, LookupError):
    """No patient of that trial in the source."""


@dataclass(frozen=True, slots=True)
class TrialData:
    """A trial's records (whole: the figures cut them), its alerts raised by the cut, and
    the accepted events themselves when the source is a file (their raw values)."""

    trial_id: str
    records: list[PatientRecord]
    alerts: list[dict]
    events: list[Accepted] | None
    source: str
    acknowledgements: bool  # the alerts come with their acknowledgements (a database)


def from_events(
    path: Path, trial_id: str, as_of: datetime, thresholds: RuleThresholds
) -> TrialData:
    """Replay the file as of the cut; its alerts are the replay's (none acknowledged)."""
    with path.open("rb") as fh:
        result = replay(fh, as_of, thresholds, keep_events=True)
    records = [r for r in result.records.values() if r.trial_id == trial_id]
    if not records:
        raise UnknownTrial(f"no patient of trial {trial_id!r} in {path} by the cut")
    return TrialData(
        trial_id,
        records,
        [a.model_dump(mode="json") for a in result.alerts if a.trial_id == trial_id],
        [a for a in result.events if a.event.trial_id == trial_id],
        f"events file {path.name} ({result.accepted} events accepted)",
        acknowledgements=False,
    )


def from_database(engine: Engine, trial_id: str, as_of: datetime) -> TrialData:
    """The stored patient records and the alerts triggered by the cut, with their
    acknowledgements as stored now."""
    from cartwatch.streams.storage.operations import trial_alerts, trial_records

    records = trial_records(engine, trial_id)
    if not records:
        raise UnknownTrial(f"no patient of trial {trial_id!r} in the database")
    alerts = trial_alerts(engine, trial_id, until=as_of)
    return TrialData(
        trial_id, records, alerts, None, "database (patient snapshots)", acknowledgements=True
    )
