"""The interleaved workload of `cartwatch bench`: its size, mix, interleaving and validity."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from cartwatch.alerts.pipeline import Pipeline
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.events import parse_timestamp
from cartwatch.streams.devtools.bench_workload import (
    MIX,
    interleaved_events,
    interleaved_lines,
    quotas,
)

PATIENTS, PER_PATIENT = 60, 100


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return interleaved_events(PATIENTS, PER_PATIENT, seed=7)


def test_every_patient_has_the_events_asked_for(events: list[dict]) -> None:
    assert len(events) == PATIENTS * PER_PATIENT
    per_patient = Counter(e["patient_id"] for e in events)
    assert len(per_patient) == PATIENTS
    assert set(per_patient.values()) == {PER_PATIENT}
    assert len({e["event_id"] for e in events}) == len(events)


def test_after_the_infusions_the_mix_is_70_25_5(events: list[dict]) -> None:
    kinds = Counter(e["type"] for e in events)
    assert kinds["infusion"] == PATIENTS
    rest = len(events) - PATIENTS
    for kind, share in MIX.items():
        assert kinds[kind] / rest == pytest.approx(share, abs=0.01), kind
    assert set(kinds) == {"infusion", *MIX}


def test_quotas_add_up_for_any_course_length() -> None:
    for n in (1, 2, 7, 20, 100, 137):
        counts = quotas(n)
        assert sum(counts.values()) == n
        assert counts["infusion"] == 1
        assert min(counts.values()) >= 0


def test_each_patient_starts_with_the_infusion_and_keeps_its_own_time_order(
    events: list[dict],
) -> None:
    by_patient: dict[str, list[dict]] = {}
    for event in events:
        by_patient.setdefault(event["patient_id"], []).append(event)
    for course in by_patient.values():
        assert course[0]["type"] == "infusion"
        times = [parse_timestamp(e["occurred_at"]) for e in course]
        assert times == sorted(times)
        assert [e["event_id"] for e in course] == sorted(e["event_id"] for e in course)


def test_patients_are_interleaved_at_random(events: list[dict]) -> None:
    patients = [e["patient_id"] for e in events]
    # Consecutive messages of one patient: ~1 in PATIENTS at random; in blocks, almost all.
    same = sum(a == b for a, b in itertools.pairwise(patients))
    assert same < 3 * len(events) / PATIENTS
    # Every patient is active across the stream: each has events in both halves.
    half = len(events) // 2
    assert {*patients[:half]} == {*patients[half:]} == set(patients)
    # Not simply round robin either.
    assert patients[:PATIENTS] != patients[PATIENTS : 2 * PATIENTS]


def test_every_message_is_accepted_by_the_core() -> None:
    records: dict = {}
    pipeline = Pipeline(records, RuleThresholds())
    outcomes, rules = Counter(), Counter()
    for raw in interleaved_lines(PATIENTS, PER_PATIENT, seed=7):
        handled = pipeline.handle(raw)
        outcomes[handled.outcome] += 1
        rules.update(alert.rule for alert in handled.alerts)
    assert outcomes == {"accepted": PATIENTS * PER_PATIENT}
    assert len(records) == PATIENTS
    assert set(rules) <= {"crs_grade"}  # a CRS grade 2 for about one patient in ten


def test_the_same_seed_gives_the_same_stream_and_another_seed_another() -> None:
    first = interleaved_lines(20, 30, seed=1)
    assert first == interleaved_lines(20, 30, seed=1)
    other = interleaved_lines(20, 30, seed=2)
    assert other != first
    assert sorted(json.loads(raw)["event_id"] for raw in other) == sorted(
        json.loads(raw)["event_id"] for raw in first
    )
