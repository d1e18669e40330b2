"""The second workload of `cartwatch bench`: many patients' events interleaved at random.

The simulated trials (`bench.bench_lines`) arrive in time order, a few hundred patients
at once. Here thousands of patients are active together: each patient's events come in
their own order (the infusion first, then ~99 events over 90 days), but which patient's
event comes next is drawn at random, so consecutive messages rarely share a patient and the
worker's per-patient state is touched all over. Every event is valid (CONTRACT 1) and is
accepted by the core; a patient's only alerts are a CRS grade 2 report for about one
patient in ten (one `crs_grade` alert each). Deterministic for a seed (stdlib
`random.Random` only).

After the infusion the events are 70% labs, 25% observations and 5% adverse-event reports,
as whole numbers per patient (`quotas`), in a shuffled order.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

WORKLOADS = ("trials", "interleaved")  # of `cartwatch bench`: the simulated trials and this
MIX = {"lab": 0.70, "observation": 0.25, "adverse_event": 0.05}
BASE = datetime(2025, 1, 6, 8, tzinfo=UTC)
COURSE = timedelta(days=90)  # a patient's events after the infusion span this
ENROLMENT_GAP = timedelta(hours=2)  # between consecutive patients' infusions
TRIALS = 10  # patients spread over this many trials
CRS_GRADE_2_SHARE = 0.1  # patients whose CRS reaches grade 2 (one alert each)
# (analyte, unit, low, high, decimals): quiet values, no early warning crossed (IL-6 and
# IFN-gamma vary at most ~10-fold, CRP < 200 mg/L, ferritin < 10,000 ng/mL, modified EASIX
# LDH x CRP / PLT < 50).
LABS = (
    ("IL6", "pg/mL", 3.0, 30.0, 1),
    ("IFNG", "pg/mL", 2.0, 20.0, 1),
    ("CRP", "mg/L", 1.0, 60.0, 1),
    ("FERRITIN", "ng/mL", 200.0, 3000.0, 0),
    ("LDH", "U/L", 150.0, 400.0, 0),
    ("CREATININE", "mg/dL", 0.6, 1.4, 2),
    ("ANC", "10^9/L", 0.5, 5.0, 2),
    ("PLT", "10^9/L", 60.0, 300.0, 0),
    ("PB_BLASTS", "%", 0.0, 0.5, 1),
)
LOINC = {"IL6": "26881-3", "IFNG": "27415-9", "CRP": "1988-5", "FERRITIN": "2276-4"}
OTHER_TERMS = ("Neutropenia", "Hypokalaemia", "Fatigue", "Nausea", "Anaemia")


def quotas(events_per_patient: int) -> dict[str, int]:
    """Events of each type for one patient: one infusion, the rest split by `MIX`."""
    rest = events_per_patient - 1
    observations = round(rest * MIX["observation"])
    reports = round(rest * MIX["adverse_event"])
    return {
        "infusion": 1,
        "lab": rest - observations - reports,
        "observation": observations,
        "adverse_event": reports,
    }


def _observation(rng: random.Random) -> dict:
    roll = rng.random()
    if roll < 0.4:
        return {"code": "temperature_c", "value": round(rng.uniform(36.2, 37.7), 1)}
    if roll < 0.7:
        return {"code": "systolic_bp_mmhg", "value": rng.randint(100, 140)}
    if roll < 0.8:
        return {"code": "oxygen", "value": {"device": "room_air", "flow_lpm": None}}
    if roll < 0.9:
        return {"code": "ice_score", "value": 10}
    return {"code": "consciousness", "value": "awake"}


def _lab(rng: random.Random) -> dict:
    analyte, unit, low, high, decimals = rng.choice(LABS)
    value = round(rng.uniform(low, high), decimals)
    extra = {"loinc": LOINC[analyte]} if analyte in LOINC else {}
    return {"analyte": analyte, "value": value, "unit": unit, **extra}


def patient_course(number: int, events_per_patient: int, rng: random.Random) -> list[dict]:
    """One patient's events in their own order: the infusion, then the rest by `quotas`."""
    trial, patient = f"MANY-{number % TRIALS:02d}", f"M{number:06d}"
    t0 = BASE + number * ENROLMENT_GAP
    counts = quotas(events_per_patient)
    kinds = [kind for kind in ("lab", "observation", "adverse_event") for _ in range(counts[kind])]
    rng.shuffle(kinds)
    crs_peak = 2 if rng.random() < CRS_GRADE_2_SHARE else 1
    gap = COURSE / max(1, len(kinds))
    events = [
        {"type": "infusion", "occurred_at": t0, "product": "CD19 CAR-T", "dose_cells_per_kg": 1e6}
    ]
    reports = 0
    for k, kind in enumerate(kinds):
        at = t0 + (k + 1 + rng.uniform(0, 0.5)) * gap
        if kind == "lab":
            fields = _lab(rng)
        elif kind == "observation":
            fields = _observation(rng)
        else:
            reports += 1
            fields = _report(patient, reports, counts["adverse_event"], crs_peak, at, rng)
        events.append({"type": kind, "occurred_at": at, **fields})
    return [
        {
            "event_id": f"{trial}/{patient}/{n:04d}",
            "type": event.pop("type"),
            "trial_id": trial,
            "patient_id": patient,
            "occurred_at": event.pop("occurred_at").isoformat(timespec="seconds"),
            **event,
        }
        for n, event in enumerate(events, start=1)
    ]


def _report(
    patient: str, n: int, total: int, crs_peak: int, at: datetime, rng: random.Random
) -> dict:
    """The first and last reports are of the patient's CRS (the last at its peak grade);
    the others are other adverse events, one each."""
    onset = (at - timedelta(hours=rng.uniform(1, 6))).isoformat(timespec="seconds")
    if n == 1 or n == total:
        grade = crs_peak if n == total else 1
        return {"ae_id": f"{patient}-CRS", "term": "CRS", "grade": grade, "onset_at": onset}
    term = rng.choice(OTHER_TERMS)
    return {
        "ae_id": f"{patient}-AE{n}",
        "term": term,
        "grade": rng.randint(1, 2),
        "onset_at": onset,
    }


def interleaved_events(patients: int, events_per_patient: int, seed: int) -> list[dict]:
    """Every patient's course, interleaved at random; each patient's own order is kept."""
    rng = random.Random(seed)
    courses = [patient_course(n, events_per_patient, rng) for n in range(patients)]
    turns = [n for n, course in enumerate(courses) for _ in course]
    rng.shuffle(turns)
    position = [0] * patients
    stream = []
    for n in turns:
        stream.append(courses[n][position[n]])
        position[n] += 1
    return stream


def interleaved_lines(patients: int = 2000, events_per_patient: int = 100, seed: int = 2026):
    """The workload as messages (JSON bytes), in the order they are published."""
    return [
        json.dumps(event, separators=(",", ":")).encode()
        for event in interleaved_events(patients, events_per_patient, seed)
    ]
