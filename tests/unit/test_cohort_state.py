"""The cohort figures kept from per-patient summaries equal the figures computed over every
record (`add_outcomes`, `trial_report`, `on_study_by_days`, `toxicity_status`: the oracle),
whatever the records, their changes and the instants asked."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartwatch.alerts.pipeline import record_key
from cartwatch.models.cohort import add_outcomes, trial_report
from cartwatch.models.cohort_state import CohortFigures, summarize
from cartwatch.models.dlt import dlt_course, toxicity_status
from cartwatch.models.on_study import on_study_by_days
from cartwatch.models.patient import PatientRecord
from cartwatch.models.record_codec import decode_record, encode_record
from cartwatch.streams.worker import gauges as gauges_module
from cartwatch.streams.worker.app import Worker
from cartwatch.streams.worker.settings import Settings
from tests.unit.builders import (
    adverse_event,
    at,
    blood_blasts,
    decode,
    disposition,
    epoch,
    infusion,
    lab,
    marrow_blasts,
)

PATIENTS = [("T1", "P1"), ("T1", "P2"), ("T1", "P3"), ("T2", "P4"), ("T2", "P5")]
days = st.floats(min_value=-2, max_value=120, allow_nan=False).map(lambda d: round(d, 2))


@st.composite
def an_event(draw) -> dict:
    trial, patient = draw(st.sampled_from(PATIENTS))
    when = at(draw(days))
    who = {"patient": patient, "trial": trial}
    kind = draw(st.sampled_from(["infusion", "marrow", "blood", "count", "mrd", "ae", "end"]))
    if kind == "infusion":
        return infusion(when, **who)
    if kind == "marrow":
        return marrow_blasts(draw(st.sampled_from([0.5, 3.0, 7.0])), when, **who)
    if kind == "blood":
        return blood_blasts(draw(st.sampled_from([0.0, 2.0])), when, **who)
    if kind == "count":
        analyte = draw(st.sampled_from(["ANC", "PLT"]))
        return lab(analyte, draw(st.sampled_from([0.5, 1.5, 50.0, 150.0])), when, **who)
    if kind == "mrd":
        return lab("MRD", draw(st.sampled_from([0.001, 0.5])), when, **who)
    if kind == "ae":
        onset = draw(days)
        resolved = draw(st.one_of(st.none(), st.floats(min_value=0, max_value=40)))
        return adverse_event(
            draw(st.sampled_from(["CRS", "ICANS", "Neutropenia"])),
            draw(st.integers(min_value=1, max_value=5)),
            at(onset),
            reported=when,
            ae_id=draw(st.sampled_from(["A", "B"])),
            resolved=None if resolved is None else at(onset + round(resolved, 2)),
            status=draw(st.sampled_from([None, None, None, "entered_in_error"])),
            **who,
        )
    status = draw(st.sampled_from(["death", "withdrawn", "lost_to_follow_up"]))
    return disposition(status, when, **who)


def oracle(records: list[PatientRecord], as_of: float) -> tuple[dict, dict]:
    """The figures as the gauges computed them before: over every record."""
    outcomes: dict = {}
    add_outcomes(outcomes, records, as_of)
    on_study = on_study_by_days(records, as_of)
    return {t: trial_report(t, outcomes[t]) for t in outcomes}, on_study


def _apply(records: dict[str, PatientRecord], event: dict) -> str:
    decoded = decode(event)
    key = record_key(decoded.trial_id, decoded.patient_id)
    old = records.get(key)
    # a new version, as a stored record is replaced, never changed
    fresh = PatientRecord(decoded.trial_id, decoded.patient_id)
    record = decode_record(encode_record(old)) if old else fresh
    record.apply(decoded)
    records[key] = record
    return key


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.tuples(st.lists(an_event(), min_size=1, max_size=4), days),
        min_size=1,
        max_size=12,
    )
)
def test_the_kept_figures_equal_the_figures_over_every_record(steps):
    records: dict[str, PatientRecord] = {}
    figures = CohortFigures()
    for events, as_of_day in steps:
        for event in events:
            key = _apply(records, event)
            figures.put(key, summarize(records[key], encode_record(records[key])))
        as_of = epoch(at(as_of_day))  # also before earlier instants: the clock may go back
        reports, on_study = figures.figures(as_of, decode_record)
        assert (reports, on_study) == oracle(list(records.values()), as_of)


def test_a_patient_dated_ahead_of_the_instant_counts_as_of_it():
    """Events dated after the instant (a clock ahead) count only once it reaches them."""
    records: dict[str, PatientRecord] = {}
    figures = CohortFigures()
    for event in [infusion(at(0), patient="P1"), infusion(at(10), patient="P2")]:
        key = _apply(records, event)
        figures.put(key, summarize(records[key], encode_record(records[key])))
    for day in (5, 5.5, 11, 40):
        got = figures.figures(epoch(at(day)), decode_record)
        assert got == oracle(list(records.values()), epoch(at(day)))
    assert got[0]["T1"]["n_infused"] == 2


@pytest.mark.parametrize("seed", range(3))
def test_the_worker_gauges_equal_the_full_computation_after_random_changes(
    tmp_path: Path, monkeypatch, seed: int
):
    """Records of the table replaced at random between refreshes: every refresh's report,
    on-study counts and boundary status equal those computed over every record."""
    rng = random.Random(seed)
    now = [epoch(at(0))]

    class Clock:
        @staticmethod
        def time() -> float:
            return now[0]

    monkeypatch.setattr(gauges_module, "time", Clock)
    worker = Worker(Settings(embedded_broker=False, data_dir=str(tmp_path)))
    worker.store.cache_size = 2
    seen: dict[str, dict] = {}
    worker.metrics.observe_report = lambda report: seen.setdefault("report", {}).__setitem__(
        report["trial_id"], report
    )
    worker.metrics.observe_boundary = lambda trial, status: seen.setdefault(
        "boundary", {}
    ).__setitem__(trial, status)
    worker.metrics.observe_trial_operations = lambda counts: seen.__setitem__("on_study", counts)
    records: dict[str, PatientRecord] = {}
    toxicity = worker.settings.thresholds.toxicity
    for _ in range(25):
        for _ in range(rng.randint(0, 6)):
            key = _apply(records, _random_event(rng))
            worker.patient_to_record.data[key] = encode_record(records[key])
        now[0] += rng.choice([0, 3600, 86400 * 3, 86400 * 20])
        seen.clear()
        asyncio.run(worker.gauges.refresh_trials())
        reports, on_study = oracle(list(records.values()), now[0])
        assert seen.get("report", {}) == reports
        assert seen.get("on_study", {}) == on_study
        for trial in reports:
            of_trial = [r for r in records.values() if r.trial_id == trial]
            courses = [c for r in of_trial if (c := dlt_course(r, toxicity)) is not None]
            assert seen["boundary"][trial] == toxicity_status(courses, toxicity, now[0]).to_dict()


def _random_event(rng) -> dict:
    trial, patient = rng.choice(PATIENTS + [("T2", f"P{n}") for n in range(6, 30)])
    when = at(rng.uniform(-1, 90))
    who = {"patient": patient, "trial": trial}
    kind = rng.choice(["infusion", "infusion", "marrow", "count", "crs", "end"])
    if kind == "infusion":
        return infusion(when, **who)
    if kind == "marrow":
        return marrow_blasts(rng.choice([0.5, 7.0]), when, **who)
    if kind == "count":
        return lab(rng.choice(["ANC", "PLT"]), rng.choice([0.5, 150.0]), when, **who)
    if kind == "crs":
        return adverse_event("CRS", rng.randint(1, 5), when, ae_id=rng.choice("AB"), **who)
    return disposition(rng.choice(["death", "withdrawn", "lost_to_follow_up"]), when, **who)


def test_a_resolution_after_the_instant_is_not_one_yet():
    """Every event of the record is past but a resolution is ahead: it counts only once the
    instant reaches it."""
    records: dict[str, PatientRecord] = {}
    figures = CohortFigures()
    events = [infusion(at(0)), adverse_event("CRS", 2, at(1), resolved=at(20))]
    for event in events:
        key = _apply(records, event)
        figures.put(key, summarize(records[key], encode_record(records[key])))
    durations = []
    for day in (10, 25):
        reports, on_study = figures.figures(epoch(at(day)), decode_record)
        assert (reports, on_study) == oracle(list(records.values()), epoch(at(day)))
        durations.append(reports["T1"]["safety"]["crs"]["median_duration_days"])
    assert durations == [None, 19.0]


def test_a_load_invalidated_midway_starts_over(tmp_path: Path):
    """A rebalance while the records are first read: the monitor is rebuilt again from the
    records as they are after it, not marked current halfway."""
    worker = Worker(Settings(embedded_broker=False, data_dir=str(tmp_path)))
    for n in range(250):
        record = PatientRecord("T1", f"P{n:04d}")
        record.apply(decode(infusion(at(0), patient=record.patient_id)))
        worker.patient_to_record.data[record_key("T1", record.patient_id)] = encode_record(record)
    monitors = []

    async def run() -> None:
        loading = asyncio.ensure_future(worker.trial.ensure_loaded())
        await asyncio.sleep(0)
        monitors.append(worker.trial.monitor)
        worker.trial.invalidate()
        await loading

    asyncio.run(run())
    assert worker.trial.loaded and worker.trial.monitor is not monitors[0]
    assert len(worker.trial.monitor.courses["T1"]) == 250


def test_the_trials_are_listed_without_parsing_a_record(tmp_path: Path, monkeypatch):
    """The desk's inbox lists the trials every 2 s: from the table's keys, not its records."""
    worker = Worker(Settings(embedded_broker=False, data_dir=str(tmp_path)))
    for trial, patient in [("T2", "P1"), ("T1:x", "P2"), ("T1", "P3"), ("T1", "P4")]:
        record = PatientRecord(trial, patient)
        worker.patient_to_record.data[record_key(trial, patient)] = encode_record(record)
    expected = sorted({r.trial_id for r in worker.store.all()})

    def no_parsing(data):
        raise AssertionError("a record was parsed")

    monkeypatch.setattr("cartwatch.streams.worker.tables.decode_record", no_parsing)
    assert worker.view.trial_ids() == expected == ["T1", "T1:x", "T2"]
    stored = worker.store.stored_of("T1")
    assert sorted(decode_record(d).patient_id for d in stored) == ["P3", "P4"]
