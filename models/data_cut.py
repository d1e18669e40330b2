"""A trial's records as of a data cut, and the fingerprint of that data.

`record_as_of` keeps what a record held at the cut: every timed fact with its time at or
before it (an adverse-event report by its `occurred_at`). Every figure derived from the cut
record as of the cut equals the figure from the whole record as of the cut
(tests/unit/test_data_cut.py). The digests of seen event ids and the alert levels have no
time: the cut keeps them whole, and the fingerprint leaves them out.

`fingerprint` is a SHA-256 over the records' canonical bytes: each list sorted (the order of
arrival is not data), adverse-event reports in the order that decides between two of the
same instant, JSON with sorted keys. The same data gives the same fingerprint, whether the
records come from the worker's database or from a replayed file of the same events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from cartwatch.models.patient import PatientRecord


def record_as_of(record: PatientRecord, as_of: float) -> PatientRecord:
    """A copy of the record holding only what was known at `as_of`."""

    def timed(rows: list) -> list:
        return [row for row in rows if row[0] <= as_of]

    reports = {
        ae_id: kept
        for ae_id, rows in record.adverse_events.items()
        if (kept := [r for r in rows if r.occurred <= as_of])
    }
    return PatientRecord(
        trial_id=record.trial_id,
        patient_id=record.patient_id,
        seen=set(record.seen),
        arrivals=record.arrivals,
        event_times=[t for t in record.event_times if t <= as_of],
        infusions=[t for t in record.infusions if t <= as_of],
        labs={a: kept for a, rows in record.labs.items() if (kept := timed(rows))},
        adverse_events=reports,
        dispositions=timed(record.dispositions),
        alerted=dict(record.alerted),
        observations={c: kept for c, rows in record.observations.items() if (kept := timed(rows))},
    )


def records_as_of(records: Iterable[PatientRecord], as_of: float) -> list[PatientRecord]:
    """The cut records of the patients with an event at or before `as_of`, by patient id."""
    cut = (record_as_of(r, as_of) for r in records)
    return sorted((r for r in cut if r.event_times), key=lambda r: (r.trial_id, r.patient_id))


def fingerprint(records: Iterable[PatientRecord]) -> str:
    """SHA-256 (hex) of the records' canonical form: the same data, the same fingerprint."""
    canonical = sorted((_canonical(r) for r in records), key=lambda c: (c["t"], c["p"]))
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(record: PatientRecord) -> dict:
    def ordered(rows: Iterable) -> list:
        return sorted(
            (list(row) if isinstance(row, tuple) else row for row in rows), key=json.dumps
        )

    def by_name(groups: dict) -> dict:
        return {name: ordered(rows) for name, rows in groups.items()}

    reports = {  # `arrival` only breaks ties of `occurred`: its order is kept, not its number
        ae_id: [
            [r.occurred, r.term, r.grade, r.onset, r.resolved, r.entered_in_error]
            for r in sorted(rows, key=lambda r: (r.occurred, r.arrival))
        ]
        for ae_id, rows in record.adverse_events.items()
    }
    return {
        "t": record.trial_id,
        "p": record.patient_id,
        "e": sorted(record.event_times),
        "i": sorted(record.infusions),
        "l": by_name(record.labs),
        "a": reports,
        "d": ordered(record.dispositions),
        "o": {code: ordered(_rows(rows)) for code, rows in record.observations.items()},
    }


def _rows(rows: list) -> list:
    """Observation rows as JSON lists: the oxygen pair (device, flow) as a list."""
    return [[t, list(v) if isinstance(v, tuple) else v] for t, v in rows]
