"""Builders of contract events as JSON dicts, so unit tests read as sentences.

Every event goes through the real codec (`decode_event(json.dumps(d))`), exactly as a
message from the broker would. Times are days after a fixed day zero (`at(7)`), with
optional extra seconds (`at(7, seconds=1)`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from cartwatch.alerts.engine import process_event
from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.codec import decode_event
from cartwatch.models.cohort import cohort_reports
from cartwatch.models.events import Event
from cartwatch.models.outcomes import PatientOutcome, derive_outcome
from cartwatch.models.patient import PatientRecord

DAY_ZERO = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
TRIAL = "T1"
PATIENT = "P1"
_next_id = itertools.count(1)


def at(days: float, seconds: float = 0) -> str:
    """RFC 3339 timestamp `days` (+ `seconds`) after day zero, in UTC."""
    return (DAY_ZERO + timedelta(days=days, seconds=seconds)).isoformat()


def epoch(timestamp: str) -> float:
    """POSIX seconds of a builder timestamp (the form `as_of` takes in the core)."""
    return datetime.fromisoformat(timestamp).timestamp()


def _common(kind: str, when: str, patient: str, trial: str, event_id: str | None) -> dict:
    return {
        "event_id": event_id if event_id is not None else f"ev-{next(_next_id)}",
        "type": kind,
        "trial_id": trial,
        "patient_id": patient,
        "occurred_at": when,
    }


def infusion(
    when: str, *, patient: str = PATIENT, trial: str = TRIAL, event_id: str | None = None
) -> dict:
    """A CAR T-cell infusion."""
    return {
        **_common("infusion", when, patient, trial, event_id),
        "product": "CD19 CAR-T",
        "dose_cells_per_kg": 1_000_000,
        "lot": "L-1",
    }


CANONICAL = {
    "IL6": "pg/mL",
    "IFNG": "pg/mL",
    "CRP": "mg/L",
    "FERRITIN": "ng/mL",
    "LDH": "U/L",
    "CREATININE": "mg/dL",
    "ANC": "10^9/L",
    "PLT": "10^9/L",
    "BM_BLASTS": "%",
    "PB_BLASTS": "%",
    "MRD": "%",
}


def lab(
    analyte: str,
    value: Any,
    when: str,
    *,
    unit: str | None = None,
    patient: str = PATIENT,
    trial: str = TRIAL,
    event_id: str | None = None,
) -> dict:
    """One lab result, in the analyte's canonical unit unless `unit` is given."""
    return {
        **_common("lab", when, patient, trial, event_id),
        "analyte": analyte,
        "value": value,
        "unit": unit if unit is not None else CANONICAL.get(analyte, "%"),
    }


def marrow_blasts(value: float, when: str, **kw: Any) -> dict:
    return lab("BM_BLASTS", value, when, **kw)


def blood_blasts(value: float, when: str, **kw: Any) -> dict:
    return lab("PB_BLASTS", value, when, **kw)


def recovered_counts(when: str, *, anc: float = 1.5, plt: float = 150, **kw: Any) -> list[dict]:
    """An ANC and a PLT measured at the same instant (recovered by default)."""
    return [lab("ANC", anc, when, **kw), lab("PLT", plt, when, **kw)]


def adverse_event(
    term: str,
    grade: Any,
    onset: str,
    *,
    reported: str | None = None,
    ae_id: str = "AE1",
    resolved: str | None = None,
    status: str | None = None,
    patient: str = PATIENT,
    trial: str = TRIAL,
    event_id: str | None = None,
) -> dict:
    """One report of an adverse event (reported at onset unless `reported` is given)."""
    event = {
        **_common("adverse_event", reported or onset, patient, trial, event_id),
        "ae_id": ae_id,
        "term": term,
        "grade": grade,
        "onset_at": onset,
        "resolved_at": resolved,
    }
    if status is not None:
        event["status"] = status
    return event


def crs(grade: Any, onset: str, **kw: Any) -> dict:
    return adverse_event("CRS", grade, onset, **kw)


def icans(grade: Any, onset: str, **kw: Any) -> dict:
    kw.setdefault("ae_id", "AE-ICANS")
    return adverse_event("ICANS", grade, onset, **kw)


def observation(
    code: str,
    value: Any,
    when: str,
    *,
    patient: str = PATIENT,
    trial: str = TRIAL,
    event_id: str | None = None,
) -> dict:
    """One bedside observation."""
    return {**_common("observation", when, patient, trial, event_id), "code": code, "value": value}


def disposition(
    status: str,
    when: str,
    *,
    patient: str = PATIENT,
    trial: str = TRIAL,
    event_id: str | None = None,
) -> dict:
    """A death, withdrawal or loss to follow-up."""
    return {**_common("disposition", when, patient, trial, event_id), "status": status}


def decode(event: dict) -> Event:
    """The event as the codec accepts it from the wire."""
    return decode_event(json.dumps(event).encode("utf-8"))


def flatten(events: Iterable[dict | list[dict]]) -> list[dict]:
    out: list[dict] = []
    for item in events:
        out.extend(item if isinstance(item, list) else [item])
    return out


def record_of(*events: dict | list[dict]) -> PatientRecord:
    """One patient's record after applying `events` in the order given."""
    decoded = [decode(e) for e in flatten(events)]
    first = decoded[0]
    record = PatientRecord(trial_id=first.trial_id, patient_id=first.patient_id)
    for event in decoded:
        record.apply(event)
    return record


def outcome_of(*events: dict | list[dict], as_of: str | None = None) -> PatientOutcome | None:
    """The patient's outcome (CONTRACT 2) as of `as_of` (every event when None)."""
    return derive_outcome(record_of(*events), epoch(as_of) if as_of else None)


def records_of(events: Iterable[dict | list[dict]]) -> list[PatientRecord]:
    """One record per (trial, patient), events applied in the order given."""
    records: dict[tuple[str, str], PatientRecord] = {}
    for event in (decode(e) for e in flatten(events)):
        key = (event.trial_id, event.patient_id)
        record = records.setdefault(key, PatientRecord(event.trial_id, event.patient_id))
        record.apply(event)
    return list(records.values())


def reports_of(events: Iterable[dict | list[dict]], as_of: str | None = None) -> list[dict]:
    """Every trial report over `events`, as of `as_of`."""
    return cohort_reports(records_of(events), epoch(as_of) if as_of else None)


def report_of(events: Iterable[dict | list[dict]], as_of: str | None = None) -> dict:
    """The single trial report over `events`."""
    (report,) = reports_of(events, as_of)
    return report


def alerts_of(
    events: Iterable[dict | list[dict]], thresholds: RuleThresholds | None = None
) -> list[AlertRaised]:
    """Every alert raised by processing `events` in the order given."""
    records: dict[tuple[str, str], PatientRecord] = {}
    raised: list[AlertRaised] = []
    for event in (decode(e) for e in flatten(events)):
        key = (event.trial_id, event.patient_id)
        record = records.setdefault(key, PatientRecord(event.trial_id, event.patient_id))
        raised.extend(process_event(record, event, thresholds or RuleThresholds()).alerts)
    return raised
