"""Per-patient record: the accepted events that the contract's definitions need.

The record keeps facts, not conclusions, so every figure can be derived for any
`as_of` (CONTRACT section 2) and the result never depends on arrival order. It is
plain data (lists of numbers and strings) so a Faust table can store it as JSON.
Times are POSIX seconds (exact instants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from models.events import AdverseEvent, Disposition, Event, Infusion, Lab

# The lab analytes the response definitions read (CONTRACT section 2).
RESPONSE_ANALYTES = frozenset({"BM_BLASTS", "PB_BLASTS", "ANC", "PLT", "MRD"})


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
    seen: set[str] = field(default_factory=set)
    arrivals: int = 0
    event_times: list[float] = field(default_factory=list)
    infusions: list[float] = field(default_factory=list)
    labs: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    adverse_events: dict[str, list[AeReport]] = field(default_factory=dict)
    dispositions: list[tuple[float, str]] = field(default_factory=list)
    alerted: dict[str, int] = field(default_factory=dict)

    def apply(self, event: Event) -> bool:
        """Add one event; False (and no change) when its event_id was already seen."""
        if event.event_id in self.seen:
            return False
        self.seen.add(event.event_id)
        self.arrivals += 1
        at = epoch(event.occurred_at)
        self.event_times.append(at)
        if isinstance(event, Infusion):
            self.infusions.append(at)
        elif isinstance(event, Lab):
            if event.analyte.value in RESPONSE_ANALYTES:
                self.labs.setdefault(event.analyte.value, []).append((at, event.value))
        elif isinstance(event, AdverseEvent):
            self.adverse_events.setdefault(event.ae_id, []).append(_report(event, self.arrivals))
        elif isinstance(event, Disposition):
            self.dispositions.append((at, event.status))
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
        }

    @classmethod
    def from_dict(cls, data: dict) -> PatientRecord:
        """Inverse of `to_dict`."""
        return cls(
            trial_id=data["t"],
            patient_id=data["p"],
            seen=set(data["s"]),
            arrivals=data["n"],
            event_times=list(data["e"]),
            infusions=list(data["i"]),
            labs={k: [tuple(row) for row in v] for k, v in data["l"].items()},
            adverse_events={k: [AeReport(*row) for row in v] for k, v in data["a"].items()},
            dispositions=[tuple(row) for row in data["d"]],
            alerted=dict(data["x"]),
        )


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
