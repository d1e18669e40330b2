"""The gauge timer: consumer gauges on every tick, the whole-trial work at most a fifth of
the event loop however long it takes."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from cartwatch.alerts.engine import TrialMonitor
from cartwatch.alerts.pipeline import record_key
from cartwatch.models.dlt import boundary_report
from cartwatch.models.patient import PatientRecord
from cartwatch.models.record_codec import encode_record
from cartwatch.streams.worker.app import Worker
from cartwatch.streams.worker.gauges import GAUGE_PAUSE_FACTOR
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.settings import Settings
from tests.unit.builders import at, crs, decode, infusion, lab
from tests.unit.worker_doubles import events_of, process, processed, worker_with_doubles


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _process_acknowledged(worker: Worker, records, alerts, *events: dict) -> None:
    """One batch of `events`, its changelog records acknowledged as they are sent."""
    task = asyncio.ensure_future(processed(worker, events_of(worker, *events)))
    while not task.done():
        records.ack_all()
        alerts.ack_all()
        await asyncio.sleep(0)
    task.result()


def _worker(data_dir: Path, refresh_takes: float) -> tuple[Worker, Clock, list[float], list]:
    worker = Worker(Settings(embedded_broker=False, data_dir=str(data_dir)))
    clock, trial_refreshes, consumer_ticks = Clock(), [], []
    worker.gauges.clock = clock
    worker.gauges.consumer_lag = dict
    worker.gauges.is_consuming = lambda: True
    worker.metrics.observe_consumer = lambda lag, consuming: consumer_ticks.append(clock.now)

    async def refresh_trials() -> None:
        trial_refreshes.append(clock.now)
        clock.now += refresh_takes

    worker.gauges.refresh_trials = refresh_trials
    return worker, clock, trial_refreshes, consumer_ticks


def _ticks(worker: Worker, clock: Clock, every: float, until: float) -> None:
    async def run() -> None:
        while clock.now < until:
            await worker.gauges.tick()
            clock.now += every

    asyncio.run(run())


def test_a_quick_refresh_runs_on_every_tick(tmp_path: Path):
    worker, clock, trial_refreshes, consumer_ticks = _worker(tmp_path, refresh_takes=0.01)
    _ticks(worker, clock, every=5.0, until=130.0)
    assert len(trial_refreshes) == len(consumer_ticks) == 6


def test_a_slow_refresh_takes_at_most_a_fifth_of_the_time(tmp_path: Path):
    worker, clock, trial_refreshes, consumer_ticks = _worker(tmp_path, refresh_takes=3.0)
    _ticks(worker, clock, every=5.0, until=400.0)
    assert len(consumer_ticks) > len(trial_refreshes) > 1  # the consumer gauges every tick
    pauses = [b - a - 3.0 for a, b in itertools.pairwise(trial_refreshes)]
    assert min(pauses) >= GAUGE_PAUSE_FACTOR * 3.0
    busy = 3.0 * len(trial_refreshes) / (clock.now - trial_refreshes[0])
    assert busy <= 1 / (1 + GAUGE_PAUSE_FACTOR) + 0.01


def test_the_trial_gauges_show_the_stored_records(tmp_path: Path):
    """One listing of the records feeds the cohort gauges, the boundary gauges and the
    trial monitor."""
    worker, records, alerts = worker_with_doubles(tmp_path)
    patients = ("P1", "P2", "P3")
    events = [infusion(at(0), patient=p) for p in patients]
    events += [crs(4, at(2 + i), patient=p, ae_id=f"{p}-crs") for i, p in enumerate(patients)]

    asyncio.run(_process_acknowledged(worker, records, alerts, *events))
    asyncio.run(worker.gauges.refresh_trials())
    sample = worker.metrics.registry.get_sample_value
    assert sample("cartwatch_trial_patients_infused", {"trial_id": "T1"}) == 3
    observed = {"trial_id": "T1", "kind": "observed"}
    assert sample("cartwatch_toxicity_boundary_patients", observed) == 3
    assert set(worker.trial.monitor.courses["T1"]) == set(patients)
    # from the monitor's courses, as the boundary report computes it from the records
    toxicity = worker.settings.thresholds.toxicity
    status = boundary_report(worker.view.records("T1"), toxicity, time.time())["status"]
    boundary = {"trial_id": "T1", "kind": "boundary"}
    assert sample("cartwatch_toxicity_boundary_patients", observed) == status["n_dlt"]
    assert sample("cartwatch_toxicity_boundary_patients", boundary) == status["stop_at_dlt"]


def test_the_first_read_of_every_record_gives_the_event_loop_turns(tmp_path: Path):
    """After a restart every record is still bytes; decoding 100,000 of them in one step held
    the loop (and /metrics) for longer than a scrape."""
    worker = Worker(Settings(embedded_broker=False, data_dir=str(tmp_path)))
    for n in range(1200):
        record = PatientRecord("T1", f"P{n:04d}")
        worker.patient_to_record.data[record_key("T1", record.patient_id)] = encode_record(record)
    turns: list[int] = []

    async def run() -> None:
        loading = asyncio.ensure_future(worker.trial.ensure_loaded())
        while not loading.done():
            turns.append(worker.trial.first_read)
            await asyncio.sleep(0)
        loading.result()

    asyncio.run(run())
    assert turns[0] == 0 and 500 in turns and 1000 in turns  # a turn after each 50
    assert worker.trial.first_read == 1200
    assert len(worker.trial.figures) == 1200  # each record's summary, the record not kept
    assert len(worker.store._parsed) == 0


def test_the_trial_figures_give_the_event_loop_turns_and_count_every_patient(tmp_path: Path):
    """Computed in one step, the figures of 3,300 patients held every event for ~0.25 s (in
    a thread, the loop waited for the GIL longer)."""
    worker = Worker(Settings(embedded_broker=False, data_dir=str(tmp_path)))
    for n in range(1200):
        record = PatientRecord("T1", f"P{n:04d}")
        record.apply(decode(infusion(at(0), patient=record.patient_id)))
        worker.patient_to_record.data[record_key("T1", record.patient_id)] = encode_record(record)
    reloaded, turns_between = [], []
    reload = worker.trial.reload
    worker.trial.reload = lambda records=None: reloaded.append(reload(records))
    sample = worker.metrics.registry.get_sample_value
    infused = {"trial_id": "T1"}

    async def run() -> None:
        refresh = asyncio.ensure_future(worker.gauges.refresh_trials())
        while not refresh.done():
            if reloaded and sample("cartwatch_trial_patients_infused", infused) is None:
                turns_between.append(1)
            await asyncio.sleep(0)
        refresh.result()

    asyncio.run(run())
    assert len(turns_between) >= 12  # 1,200 records, a turn every 100
    assert sample("cartwatch_trial_patients_infused", infused) == 1200


def test_the_monitor_reloads_only_the_records_that_changed(tmp_path: Path, monkeypatch):
    """A walk of every patient's course held every event ~30 ms at 3,300 patients."""
    worker, records, alerts = worker_with_doubles(tmp_path)
    loaded: list[list[str]] = []
    load = TrialMonitor.load

    def spy(monitor, changed):
        changed = list(changed)
        loaded.append(sorted(r.patient_id for r in changed))
        load(monitor, changed)

    monkeypatch.setattr(TrialMonitor, "load", spy)

    async def batch(*events: dict) -> None:
        await _process_acknowledged(worker, records, alerts, *events)

    async def run() -> None:
        await batch(*[infusion(at(0), patient=p) for p in ("P1", "P2", "P3")])
        await worker.gauges.refresh_trials()
        await worker.gauges.refresh_trials()
        await batch(crs(4, at(2), patient="P2", ae_id="P2-crs"))
        await worker.gauges.refresh_trials()

    asyncio.run(run())
    # the first batch loads every record (none yet), each refresh then what changed since
    assert loaded == [[], ["P1", "P2", "P3"], [], ["P2"]]
    assert (
        worker.trial.monitor.courses["T1"]["P2"].last_event
        > worker.trial.monitor.courses["T1"]["P1"].last_event
    )


def test_a_refresh_during_a_batchs_sends_never_takes_the_monitor_back(tmp_path: Path):
    """A refresh between a batch's awaits lists the stored records, older than those the
    batch observed (its records are not yet acknowledged): loading them over the batch's
    courses lost three DLTs, and the boundary crossing of the next batch (found by a
    second reviewer)."""
    safe, toxic = ("P1", "P2", "P3"), ("P4", "P5", "P6")
    before = [
        *(infusion(at(0), patient=p) for p in safe),
        lab("CRP", 5.0, at(29), patient="P1"),
        *(infusion(at(30), patient=p) for p in toxic),
        infusion(at(0), patient="P7"),
    ]
    first = [crs(4, at(1), patient="P7"), crs(4, at(2), patient="P1"), crs(4, at(32), patient="P4")]
    second = [crs(4, at(33), patient="P5"), crs(4, at(34), patient="P6")]
    worker, records, alerts = worker_with_doubles(tmp_path)
    process(worker, [records, alerts], *before)

    async def first_batch_with_a_refresh_in_its_sends() -> None:
        task = asyncio.ensure_future(processed(worker, events_of(worker, *first)))
        refreshed = False
        while not task.done():
            alerts.ack_all()
            if any(not future.done() for *_, future in records.sent):
                if not refreshed:
                    await worker.gauges.refresh_trials()
                    refreshed = True
                records.ack_all()
            await asyncio.sleep(0)
        task.result()
        assert refreshed

    asyncio.run(first_batch_with_a_refresh_in_its_sends())
    courses = worker.trial.monitor.courses["T1"]
    assert sorted(p for p, c in courses.items() if c.dlt_at is not None) == ["P1", "P4", "P7"]
    _, entries = process(worker, [records, alerts], *second)
    assert "T1::toxicity_boundary:1" in entries


def test_database_writes_failing_show_on_the_next_tick(tmp_path: Path):
    # /healthz stays as it is (liveness: a restart would not bring the database back).
    class Writer:
        healthy = True

    worker, clock, *_ = _worker(tmp_path, refresh_takes=0.01)
    worker.gauges.writer = Writer()
    failing = []
    for healthy in (True, False, True):
        Writer.healthy = healthy
        _ticks(worker, clock, every=5.0, until=clock.now + 5.0)
        failing.append(
            worker.metrics.registry.get_sample_value("cartwatch_database_writes_failing")
        )
    assert failing == [0, 1, 0]


def test_a_trial_whose_alerts_are_all_acknowledged_shows_no_open_alert():
    metrics = Metrics(CollectorRegistry())
    metrics.observe_open_alerts({("T1", "critical"): 2, ("T2", "warning"): 1})
    metrics.observe_open_alerts({("T2", "warning"): 1})  # T1's were acknowledged
    sample = metrics.registry.get_sample_value
    assert sample("cartwatch_alerts_open", {"trial_id": "T1", "severity": "critical"}) == 0
    assert sample("cartwatch_alerts_open", {"trial_id": "T2", "severity": "warning"}) == 1
    assert sample("cartwatch_alerts_open", {"trial_id": "T2", "severity": "info"}) == 0
