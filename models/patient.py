"""Per-patient record: the accepted events that the contract's definitions need.

The record keeps facts, not conclusions, so every figure can be derived for any
`as_of` (CONTRACT section 2) and the result never depends on arrival order. It is
plain data (lists of numbers and strings) so a Faust table can store it as JSON.
Times are POSIX seconds (exact instants).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from cartwatch.models.events import AdverseEvent, Disposition, Event, Infusion, Lab, OxygenSupport

# The lab analytes the response definitions read (CONTRACT section 2).
RESPONSE_ANALYTES = frozenset({"BM_BLASTS", "PB_BLASTS", "ANC", "PLT", "MRD"})
# The cytokines and chemistry the early-warning rules read (alerts/early_warnings.py).
WARNING_ANALYTES = frozenset({"IL6", "IFNG", "CRP", "FERRITIN", "LDH", "PLT"})
STORED_ANALYTES = RESPONSE_ANALYTES | WARNING_ANALYTES

# An observation's value as stored: a number, a string, a boolean, or for `oxygen`
# the pair (device, flow_lpm).
ObservationValue = float | int | str | bool | tuple[str, float | None]


def event_key(event_id: str) -> int:
    """The 64-bit digest of an event_id that a record keeps to recognise a repeat.

    A record keeps 8 bytes per accepted event whatever the id's length (1-128 characters,
    CONTRACT 1). Two different ids share a digest with probability about n**2 / 2**65 for
    n events: about 1e-15 for one patient's 200 events, 3e-8 for a million events of all
    patients (the pipeline recognises an id across patients, `cartwatch.alerts.pipeline.Pipeline`).
    """
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "little")


def epoch(ts: datetime) -> float:
    """Seconds since the epoch of an offset-aware timestamp."""
    return ts.timestamp()


@dataclass(slots=True)
class AeReport:
    """One report of an adverse event; `arrival` breaks ties of `occurred`."""

    occurred: float
    arrival: int
    term: str
    grade: int
    onset: float
    resolved: float | None
    entered_in_error: bool


@dataclass(slots=True)
class PatientRecord:
    """Everything accepted for one patient of one trial."""

    trial_id: str
    patient_id: str
    seen: set[int] = field(default_factory=set)  # event_key of every accepted event
    arrivals: int = 0
    event_times: list[float] = field(default_factory=list)
    infusions: list[float] = field(default_factory=list)
    labs: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    adverse_events: dict[str, list[AeReport]] = field(default_factory=dict)
    dispositions: list[tuple[float, str]] = field(default_factory=list)
    alerted: dict[str, int] = field(default_factory=dict)
    observations: dict[str, list[tuple[float, ObservationValue]]] = field(default_factory=dict)

    def apply(self, event: Event, digest: int | None = None) -> bool:
        """Add one event; False (and no change) when its event_id was already seen.
        `digest` is its `event_key`, when the caller has it already."""
        key = event_key(event.event_id) if digest is None else digest
        if key in self.seen:
            return False
        self.seen.add(key)
        self.arrivals += 1
        at = event.occurred_at.timestamp()  # `epoch`, without a call per event
        self.event_times.append(at)
        if isinstance(event, Infusion):
            self.infusions.append(at)
        elif isinstance(event, Lab):
            analyte = str(event.analyte)  # a StrEnum's value (its `.value` is a slow property)
            if analyte in STORED_ANALYTES:
                self.labs.setdefault(analyte, []).append((at, event.value))
        elif isinstance(event, AdverseEvent):
            self.adverse_events.setdefault(event.ae_id, []).append(_report(event, self.arrivals))
        elif isinstance(event, Disposition):
            self.dispositions.append((at, event.status))
        else:  # an observation (CONTRACT 1): the bedside data the ASTCT grading reads
            self.observations.setdefault(event.code, []).append((at, _observed(event.value)))
        return True

    def to_dict(self) -> dict:
        """Plain JSON-ready form (for tables and snapshots)."""
        return {
            "t": self.trial_id,
            "p": self.patient_id,
            "s": sorted(self.seen),
            "n": self.arrivals,
            "e": self.event_times,
            "i": self.infusions,
            "l": self.labs,
            "a": {k: [_report_row(r) for r in v] for k, v in self.adverse_events.items()},
            "d": self.dispositions,
            "x": self.alerted,
            "o": self.observations,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PatientRecord:
        """Inverse of `to_dict`."""
        return cls(
            trial_id=data["t"],
            patient_id=data["p"],
            # event ids themselves in records written before the digests were kept
            seen={event_key(s) if isinstance(s, str) else s for s in data["s"]},
            arrivals=data["n"],
            event_times=list(data["e"]),
            infusions=list(data["i"]),
            labs={k: [tuple(row) for row in v] for k, v in data["l"].items()},
            adverse_events={k: [AeReport(*row) for row in v] for k, v in data["a"].items()},
            dispositions=[tuple(row) for row in data["d"]],
            alerted=dict(data["x"]),
            observations={  # absent from records written before observations were kept
                k: [(t, tuple(v) if isinstance(v, list) else v) for t, v in rows]
                for k, rows in data.get("o", {}).items()
            },
        )


def _observed(value: object) -> ObservationValue:
    if isinstance(value, OxygenSupport):
        return (value.device, value.flow_lpm)
    return value  # type: ignore[return-value]


def _report(event: AdverseEvent, arrival: int) -> AeReport:
    return AeReport(
        occurred=epoch(event.occurred_at),
        arrival=arrival,
        term=event.term,
        grade=event.grade,
        onset=epoch(event.onset_at),
        resolved=epoch(event.resolved_at) if event.resolved_at is not None else None,
        entered_in_error=event.status == "entered_in_error",
    )


def _report_row(r: AeReport) -> list:
    return [r.occurred, r.arrival, r.term, r.grade, r.onset, r.resolved, r.entered_in_error]
