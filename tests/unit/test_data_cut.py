"""A record cut at an instant gives the figures of the whole record as of that instant, and
the same data gives the same fingerprint whatever the order it arrived in."""

from __future__ import annotations

import random
from datetime import timedelta

from cartwatch.models.cohort import cohort_reports
from cartwatch.models.data_cut import fingerprint, records_as_of
from cartwatch.models.outcomes import derive_outcome
from cartwatch.models.patient import PatientRecord
from tests.unit.builders import (
    at,
    crs,
    disposition,
    epoch,
    flatten,
    icans,
    infusion,
    marrow_blasts,
    observation,
    records_of,
    recovered_counts,
)
from tests.unit.demo_trial import demo_replay, demo_trial


def _course(patient: str) -> list[dict]:
    return flatten([
        infusion(at(0), patient=patient),
        observation("temperature_c", 39.1, at(2), patient=patient),
        observation("oxygen", {"device": "facemask", "flow_lpm": 6}, at(3), patient=patient),
        crs(2, at(2), patient=patient, resolved=at(9)),
        crs(3, at(2), patient=patient, reported=at(4), resolved=at(9)),
        icans(1, at(5), patient=patient),
        marrow_blasts(1.0, at(28), patient=patient),
        recovered_counts(at(29), patient=patient),
        marrow_blasts(12.0, at(200), patient=patient),
        disposition("death", at(260), patient=patient),
    ])  # fmt: skip


def test_the_demo_trial_cut_at_earlier_instants_reports_what_the_whole_records_report():
    records = list(demo_replay().records.values())
    cut = demo_trial().data_cut
    for days_before in (0, 90, 365, 600):
        as_of = (cut - timedelta(days=days_before)).timestamp()
        assert cohort_reports(records_as_of(records, as_of), as_of) == cohort_reports(
            records, as_of
        )


def test_a_cut_patient_has_the_outcome_of_the_whole_record_as_of_the_cut():
    (record,) = records_of(_course("P1"))
    for day in (1, 3, 4, 30, 250, 300):
        as_of = epoch(at(day))
        (cut,) = records_as_of([record], as_of)
        assert derive_outcome(cut, as_of) == derive_outcome(record, as_of)


def test_a_patient_with_nothing_before_the_cut_is_left_out():
    records = records_of([*_course("P1"), infusion(at(50), patient="P2")])
    assert [r.patient_id for r in records_as_of(records, epoch(at(10)))] == ["P1"]


def test_the_same_events_in_another_order_give_the_same_fingerprint():
    events = _course("P1") + _course("P2")
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    assert fingerprint(records_of(events)) == fingerprint(records_of(shuffled))


def test_a_stored_and_read_record_keeps_its_fingerprint():
    records = records_of(_course("P1"))
    stored = [PatientRecord.from_dict(r.to_dict()) for r in records]
    assert fingerprint(stored) == fingerprint(records)


def test_an_event_before_the_cut_changes_the_fingerprint_and_one_after_it_does_not():
    as_of = epoch(at(100))
    before = fingerprint(records_as_of(records_of(_course("P1")), as_of))
    later = [*_course("P1"), observation("temperature_c", 37.0, at(150))]
    earlier = [*_course("P1"), observation("temperature_c", 37.0, at(50))]
    assert fingerprint(records_as_of(records_of(later), as_of)) == before
    assert fingerprint(records_as_of(records_of(earlier), as_of)) != before
