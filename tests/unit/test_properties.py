"""CONTRACT sections 2 and 4: results depend on the set of events, never on arrival order."""

from __future__ import annotations

import json
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from cartwatch.alerts.engine import process_event
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.cohort import cohort_reports
from cartwatch.models.events import Event
from cartwatch.models.outcomes import derive_outcome, worst_grade
from cartwatch.models.patient import PatientRecord
from cartwatch.models.record_codec import decode_record, encode_record
from tests.unit.builders import (
    adverse_event,
    at,
    decode,
    disposition,
    epoch,
    infusion,
    lab,
    observation,
)

# Values on and around every threshold of CONTRACT 2.
LAB_VALUES = {
    "BM_BLASTS": [0.0, 4.99, 5.0, 30.0],
    "PB_BLASTS": [0.0, 0.99, 1.0, 5.0],
    "ANC": [0.5, 1.0, 2.0],
    "PLT": [50.0, 100.0, 150.0],
    "MRD": [0.0, 0.0099, 0.01, 1.0],
}
TERMS = ["CRS", "ICANS", "Sepsis"]


@st.composite
def patient_events(draw: st.DrawFn, trial: str, patient: str, withdrawals: bool) -> list[dict]:
    """One patient's events, each with its own event_id."""
    who = {"trial": trial, "patient": patient}
    events = [infusion(at(d), **who) for d in draw(st.lists(st.integers(0, 5), max_size=2))]
    for _ in range(draw(st.integers(0, 8))):
        analyte = draw(st.sampled_from(sorted(LAB_VALUES)))
        value = draw(st.sampled_from(LAB_VALUES[analyte]))
        events.append(lab(analyte, value, at(draw(st.integers(0, 12)) * 7), **who))
    if draw(st.booleans()):  # a full blood count: ANC and PLT drawn together
        day = at(draw(st.integers(0, 12)) * 7 + draw(st.sampled_from([-1, 0, 1])))
        events.append(lab("ANC", draw(st.sampled_from(LAB_VALUES["ANC"])), day, **who))
        events.append(lab("PLT", draw(st.sampled_from(LAB_VALUES["PLT"])), day, **who))
    for n in range(draw(st.integers(0, 3))):
        events += draw(adverse_event_reports(f"{patient}-AE{n}", who, withdrawals))
    for _ in range(draw(st.integers(0, 2))):
        status = draw(st.sampled_from(["death", "withdrawn", "lost_to_follow_up"]))
        events.append(disposition(status, at(draw(st.integers(20, 120))), **who))
    if draw(st.booleans()):
        events.append(observation("ice_score", 10, at(draw(st.integers(0, 130))), **who))
    return events


@st.composite
def adverse_event_reports(draw: st.DrawFn, ae_id: str, who: dict, withdrawals: bool) -> list:
    """Reports of one adverse event, at distinct times (ties would be broken by arrival)."""
    term = draw(st.sampled_from(TERMS))
    onset = draw(st.integers(-2, 10))
    delays = draw(st.lists(st.integers(0, 15), min_size=1, max_size=3, unique=True))
    reports = []
    for delay in delays:
        resolved = draw(st.none() | st.integers(0, delay))
        status = "entered_in_error" if withdrawals and draw(st.integers(0, 5)) == 0 else None
        reports.append(
            adverse_event(
                term,
                draw(st.integers(1, 5)),
                at(onset),
                reported=at(onset + delay),
                resolved=None if resolved is None else at(onset + resolved),
                ae_id=ae_id,
                status=status,
                **who,
            )
        )
    return reports


@st.composite
def streams(draw: st.DrawFn, withdrawals: bool = True) -> tuple[list[Event], list[Event]]:
    """A cohort's events in one order, and the same set shuffled with exact duplicates."""
    events: list[dict] = []
    for trial in ("T1", "T2"):
        for patient in ("A", "B", "C"):
            events += draw(patient_events(trial, patient, withdrawals))
    decoded = [decode(e) for e in events]
    duplicates = draw(st.lists(st.sampled_from(decoded), max_size=6)) if decoded else []
    shuffled = draw(st.permutations(decoded + duplicates))
    return decoded, shuffled


def records(events: Iterable[Event]) -> list[PatientRecord]:
    by_patient: dict[tuple[str, str], PatientRecord] = {}
    for event in events:
        key = (event.trial_id, event.patient_id)
        by_patient.setdefault(key, PatientRecord(*key)).apply(event)
    return list(by_patient.values())


def highest_alert_levels(events: Iterable[Event]) -> dict[tuple[str, str, str], int]:
    by_patient: dict[tuple[str, str], PatientRecord] = {}
    highest: dict[tuple[str, str, str], int] = {}
    for event in events:
        key = (event.trial_id, event.patient_id)
        record = by_patient.setdefault(key, PatientRecord(*key))
        for alert in process_event(record, event, RuleThresholds()).alerts:
            slot = (alert.trial_id, alert.patient_id, alert.rule)
            highest[slot] = max(highest.get(slot, 0), alert.level)
    return highest


@settings(max_examples=50, deadline=None)
@given(streams(), st.none() | st.integers(-1, 130))
def test_shuffling_and_duplicating_events_never_changes_the_reports(
    stream: tuple[list[Event], list[Event]], as_of_day: int | None
) -> None:
    ordered, shuffled = stream
    as_of = None if as_of_day is None else epoch(at(as_of_day))
    assert cohort_reports(records(shuffled), as_of) == cohort_reports(records(ordered), as_of)


@settings(max_examples=25, deadline=None)
@given(streams())
def test_applying_every_event_twice_never_changes_the_reports(
    stream: tuple[list[Event], list[Event]],
) -> None:
    ordered, _ = stream
    assert cohort_reports(records(ordered + ordered), None) == cohort_reports(
        records(ordered), None
    )


@settings(max_examples=50, deadline=None)
@given(streams(withdrawals=False))
def test_the_highest_alert_level_per_patient_and_rule_never_depends_on_order(
    stream: tuple[list[Event], list[Event]],
) -> None:
    ordered, shuffled = stream
    assert highest_alert_levels(shuffled) == highest_alert_levels(ordered)


@settings(max_examples=30, deadline=None)
@given(streams(withdrawals=False))
def test_the_highest_alert_level_is_the_final_worst_grade(
    stream: tuple[list[Event], list[Event]],
) -> None:
    _, shuffled = stream
    highest = highest_alert_levels(shuffled)
    for record in records(shuffled):
        outcome = derive_outcome(record, None)
        for rule, term, minimum in (("crs_grade", "CRS", 2), ("icans_grade", "ICANS", 1)):
            grade = worst_grade(outcome.toxicities, term) if outcome else 0
            expected = grade if grade >= minimum else None
            assert highest.get((record.trial_id, record.patient_id, rule)) == expected


@settings(max_examples=25, deadline=None)
@given(streams(), st.none() | st.integers(-1, 130))
def test_a_record_stored_and_read_back_gives_the_same_record_and_reports(
    stream: tuple[list[Event], list[Event]], as_of_day: int | None
) -> None:
    _, shuffled = stream
    as_of = None if as_of_day is None else epoch(at(as_of_day))
    originals = records(shuffled)
    restored = [decode_record(encode_record(r)) for r in originals]
    assert restored == originals
    assert [PatientRecord.from_dict(json.loads(json.dumps(r.to_dict()))) for r in originals] == (
        originals
    )  # the plain JSON the database keeps (streams/storage)
    assert cohort_reports(restored, as_of) == cohort_reports(originals, as_of)
    assert [r.alerted for r in restored] == [r.alerted for r in originals]
