"""`cartwatch bench`'s phases through the real embedded broker, small.

Figures are not asserted against targets (they are benchmarks, see docs/BENCHMARKS.md); the
tests check that each phase measures what it says: the interleaved workload consumed and
accepted whole by a worker whose memory is read before and after, every alert matched to
its cause, the event-loop lag of the latency phase read from the worker, and a restart that
is ready with the group join inside the time to ready.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cartwatch.streams.devtools.bench import measure_worker, publish
from cartwatch.streams.devtools.bench_latency import (
    loop_lag,
    measure_delivery,
    measure_latency,
    observe_loop_lag,
    produce_steady,
)
from cartwatch.streams.devtools.bench_restart import measure_restart
from cartwatch.streams.devtools.bench_workload import interleaved_lines
from cartwatch.streams.devtools.broker import free_port
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.worker.settings import Settings

pytestmark = pytest.mark.integration


def produce_steady_quietly(settings: Settings, rate: float, duration: float) -> None:
    asyncio.run(produce_steady(settings, rate, duration))
    time.sleep(1.5)  # so that they are older than anything the next phase sends


def _settings(broker, prefix: str) -> Settings:
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        embedded_broker=True,
        topic_prefix=prefix,
        api_port=free_port(),
        session_timeout_s=6,
        gauge_interval_s=1,
    )


def test_the_interleaved_workload_is_consumed_and_accepted_whole(broker, tmp_path: Path):
    settings = _settings(broker, "benchmany")
    create_topics(settings)
    lines = interleaved_lines(patients=200, events_per_patient=30, seed=5)
    expected = publish(lines, settings)
    assert expected == len(lines) == 6000
    worker = WorkerProcess(settings, tmp_path).start(wait_healthy=None)
    try:
        run = measure_worker(worker, expected, timeout=300)
        samples = worker.api.metric_samples()
    finally:
        worker.stop()
    outcomes: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == "cartwatch_events_processed_total" and value:
            outcome = dict(labels)["outcome"]
            outcomes[outcome] = outcomes.get(outcome, 0.0) + value
    assert outcomes == {"accepted": 6000.0}
    dead = [v for (name, _), v in samples.items() if name == "cartwatch_dead_letters_total"]
    assert dead and not any(dead)
    assert run.events_per_s > 0
    assert run.rss_before is not None and run.rss_before > 10 * 2**20  # a started Python
    assert run.rss_after is not None and run.rss_after > 10 * 2**20


def test_every_alert_of_a_slow_steady_stream_is_matched_to_its_cause(broker, tmp_path: Path):
    settings = _settings(broker, "benchlat")
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        before, after = loop_lag(worker), {}
        latency = measure_latency(
            settings,
            rate=60,
            duration=3,
            drain=60,
            after_stream=lambda: after.update(loop_lag(worker)),
        )
        later = loop_lag(worker)
    finally:
        worker.stop()
    assert latency.sent >= 150
    assert latency.alerts_expected > 0
    assert latency.alerts_matched == latency.alerts_expected
    assert latency.complete
    assert 0 <= latency.p50_ms <= latency.p99_ms <= latency.max_ms
    # The worker's lag monitor ticks every 0.1 s: ~30 observations while the 3 s stream was
    # sent, read when it was sent (not after the wait for the alerts).
    observe_loop_lag(latency, before, after)
    assert 10 <= latency.loop_lag_observations <= later[float("inf")] - before[float("inf")]
    assert 0 <= latency.loop_lag_p50_ms <= latency.loop_lag_p99_ms


def test_the_inputs_delivered_alone_are_timed_from_the_stream_sent_then(broker):
    settings = _settings(broker, "benchdlv")
    create_topics(settings)
    produce_steady_quietly(settings, rate=200, duration=1)  # older records: not counted
    p50, p99 = measure_delivery(settings, rate=100, duration=2, fetch_wait=10)
    assert p50 is not None and p99 is not None
    assert 0 <= p50 <= p99 < 1000  # not the seconds-old records sent before


def test_a_restarted_worker_is_ready_after_it_has_joined_both_groups(broker, tmp_path: Path):
    restart = measure_restart(_settings(broker, "benchrst"), 200, tmp_path, timeout=300)
    assert restart.patients == 200
    assert restart.load_s > 0
    # Faust's group (the tables) first, then the input consumer's, then ready
    assert 0 < restart.group_join_s <= restart.input_join_s <= restart.assigned_s
    assert restart.assigned_s <= restart.ready_s and restart.after_join_s >= 0
