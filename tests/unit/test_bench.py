"""The pure helpers of `cartwatch bench` (no broker, no timing)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from rich.console import Console

from cartwatch.alerts.pipeline import Pipeline
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.streams.devtools.bench import BenchOptions, rss_bytes, workload_lines
from cartwatch.streams.devtools.bench_latency import Latency, latency_stream, observe_loop_lag
from cartwatch.streams.devtools.bench_report import (
    Target,
    bucket_increase,
    first_log_time,
    histogram_buckets,
    histogram_quantile,
    info_rows,
    percentile,
    rate_between,
    render_table,
    target_rows,
    top_frames,
)
from cartwatch.streams.devtools.bench_restart import restart_lines
from cartwatch.streams.devtools.bench_results import (
    BenchResult,
    WorkloadResult,
    context,
    excess,
    per_patient,
    targets,
)


def test_percentiles_match_numpy_and_empty_is_none() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(np.percentile(values, 50))
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([], 99) is None


def test_rate_is_taken_between_ten_and_ninety_percent_of_the_stream() -> None:
    # 10 s of join with nothing done, then 100 events/s until 1000 events.
    samples = [(t, 0.0) for t in range(10)] + [(10 + t, 100.0 * t) for t in range(11)]
    assert rate_between(samples, 1000) == pytest.approx(100.0)


def test_rate_needs_samples_on_both_sides() -> None:
    with pytest.raises(ValueError, match="no samples span"):
        rate_between([(0.0, 0.0), (1.0, 500.0)], 1000)


def test_first_log_time_reads_the_faust_timestamp_of_the_first_match() -> None:
    log = (
        "[2026-01-05 08:00:00,000] [1] [INFO] starting\n"
        "[2026-01-05 08:00:04,250] [1] [INFO] Joined group 'x' (generation 1)\n"
        "[2026-01-05 08:00:09,000] [1] [INFO] Joined group 'x' (generation 2)\n"
    )
    start = first_log_time(log, "starting")
    assert first_log_time(log, "Joined group") - start == pytest.approx(4.25)
    assert first_log_time(log, "never logged") is None


def test_a_target_is_met_on_the_right_side_of_its_goal() -> None:
    assert Target("core", 300_000, 300_000, True, "events/s").met is True
    assert Target("p99", 101, 100, False, "ms").met is False
    assert Target("restart", None, 30, False, "s").met is None


def test_target_rows_say_measured_goal_and_verdict() -> None:
    rows = target_rows(
        [Target("worker / raw", 0.31, 0.25, True, "ratio"), Target("p99", 250.0, 100, False, "ms")]
    )
    assert rows == [
        ("worker / raw", "31.0%", "\u2265 25.0%", "met"),
        ("p99", "250 ms", "\u2264 100 ms", "NOT met"),
    ]
    console = Console(width=120, record=True)
    console.print(render_table(rows, "bench"))
    assert "NOT met" in console.export_text()


def test_top_frames_count_self_and_inclusive_samples_without_line_numbers() -> None:
    collapsed = "main (a.py:1);handle (b.py:5) 3\nmain (a.py:1);handle (b.py:9);decode (c.py:2) 1\n"
    own, inclusive = top_frames(collapsed)
    assert own[0] == ("handle (b.py)", 0.75)
    assert dict(inclusive)["main (a.py)"] == 1.0
    assert dict(inclusive)["handle (b.py)"] == 1.0


def test_every_latency_stream_report_raises_exactly_one_alert() -> None:
    pipeline = Pipeline({}, RuleThresholds())
    stream = latency_stream("LAT-TEST")
    for _ in range(3 * 9):  # three patients of nine messages
        raw, alerting = next(stream)
        handled = pipeline.handle(raw)
        assert handled.outcome == "accepted"
        assert len(handled.alerts) == (1 if alerting else 0)


def test_restart_stream_gives_each_patient_a_valid_infusion_and_lab() -> None:
    records: dict = {}
    pipeline = Pipeline(records, RuleThresholds())
    outcomes = {pipeline.handle(raw).outcome for _, _, raw in restart_lines(50)}
    assert outcomes == {"accepted"}
    assert len(records) == 50


INF = math.inf


def test_histogram_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    # 100 observations: 50 up to 10 ms, 45 in (10, 50] ms, 5 in (50, 100] ms.
    buckets = {0.01: 50.0, 0.05: 95.0, 0.1: 100.0, INF: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.005)  # from 0 below the first
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.05 + 0.05 * 4 / 5)
    assert histogram_quantile(0.99, {0.1: 1.0, INF: 10.0}) == 0.1  # in +Inf: highest bound
    assert histogram_quantile(0.99, {0.1: 0.0, INF: 0.0}) is None
    assert histogram_quantile(0.99, {}) is None


def test_the_lag_of_a_phase_is_the_increase_of_each_bucket_between_two_readings() -> None:
    name = "cartwatch_event_loop_lag_seconds"
    samples = {
        (f"{name}_bucket", (("le", "0.01"),)): 90.0,
        (f"{name}_bucket", (("le", "0.1"),)): 99.0,
        (f"{name}_bucket", (("le", "+Inf"),)): 100.0,
        (f"{name}_count", ()): 100.0,
        ("cartwatch_event_to_alert_seconds_bucket", (("le", "0.01"),)): 7.0,
    }
    after = histogram_buckets(samples, name)
    assert after == {0.01: 90.0, 0.1: 99.0, INF: 100.0}
    before = {0.01: 80.0, 0.1: 80.0, INF: 80.0}
    assert bucket_increase(before, after) == {0.01: 10.0, 0.1: 19.0, INF: 20.0}
    latency = Latency(rate_target=100)
    observe_loop_lag(latency, before, after)
    assert latency.loop_lag_observations == 20
    assert latency.loop_lag_p50_ms == pytest.approx(10.0)  # rank 10 of 20: the first bound
    assert latency.loop_lag_p99_ms == pytest.approx(100.0)  # rank 19.8: in +Inf
    nothing = Latency(rate_target=100)
    observe_loop_lag(nothing, after, after)
    assert nothing.loop_lag_observations == 0 and nothing.loop_lag_p99_ms is None


def test_resident_memory_per_patient_and_latency_over_its_floor() -> None:
    assert per_patient(100_000_000, 104_096_000, 1000) == 4096.0
    assert per_patient(None, 104_096_000, 1000) is None
    assert per_patient(100, 200, 0) is None
    assert excess(180.0, 120.0) == 60.0
    assert excess(180.0, None) is None
    own = rss_bytes(os.getpid())
    assert own is not None and own > 1_000_000
    assert rss_bytes(2**22 + 12345) is None  # no such process


def _result() -> BenchResult:
    trials = WorkloadResult("trials", 26_619, 282, 200_000.0, 6_000.0, 0.03, 160_000.0)
    trials.worker_rss_before_bytes, trials.worker_rss_after_bytes = 100 * 2**20, 101 * 2**20
    trials.rss_bytes_per_patient = 2**20 / 282
    interleaved = WorkloadResult("interleaved", 200_000, 2000, 190_000.0, 50_000.0, 50 / 190)
    interleaved.core_events_per_s = 40_000.0
    interleaved.rss_bytes_per_patient = 5000.0
    latency = Latency(rate_target=2000, p99_ms=170.0, delivery_p99_ms=114.0)
    latency.loop_lag_p99_ms = 45.0
    result = BenchResult(machine={"date": "today"}, latency=latency, state_workload="trials")
    result.workloads = {"trials": trials, "interleaved": interleaved}
    result.state_bytes_per_patient_stored = 1691.0
    return result


def test_the_targets_are_the_issue_targets_for_each_workload() -> None:
    rows = {t.name: t for t in targets(_result())}
    ratio = rows["worker / raw consume+decode [trials]"]
    assert (ratio.goal, ratio.met) == (0.25, False)
    assert rows["worker / raw consume+decode [interleaved]"].met is True
    assert rows["offline core [trials]"].goal == 150_000
    assert rows["offline core [trials]"].met is True
    over = rows["event-to-alert p99 over inputs delivered alone p99"]
    assert (over.value, over.goal, over.met) == (56.0, 50, False)
    assert rows["event-loop lag p99 (latency phase)"].met is True
    assert rows["state per patient (stored)"].goal == 2048
    assert rows["resident memory per patient [trials]"].met is True
    rss = rows["resident memory per patient [interleaved]"]
    assert (rss.goal, rss.met) == (4096, False)
    assert rows["restart to ready, 100,000 patients"].met is None  # not run
    assert "offline core [interleaved]" not in rows  # a context row: no target of its own


def test_each_workload_has_its_throughput_rows_in_the_table() -> None:
    rows = info_rows(context(_result()))
    by_name = {name: measured for name, measured, _, _ in rows}
    for workload in ("trials", "interleaved"):
        for figure in ("raw consume+decode", "worker steady state", "offline core"):
            assert f"[{workload}] {figure}" in by_name
    assert by_name["[interleaved] worker steady state"] == "50,000 events/s"
    assert by_name["[trials] messages"] == "26,619 messages, 282 patients"
    assert by_name["[trials] worker RSS before / after"] == "100 MiB / 101.0 MiB"
    assert by_name["[interleaved] worker RSS before / after"] == "-"
    assert by_name["event-to-alert p99"] == "170 ms"
    console = Console(width=160, record=True)
    console.print(render_table(rows, "bench"))
    text = console.export_text()
    assert "[interleaved] worker steady state" in text  # not taken for markup
    assert "[trials] offline core" in text


def test_the_workloads_by_name() -> None:
    options = BenchOptions(interleaved_patients=5, events_per_patient=10, seed=3)
    assert len(workload_lines("interleaved", options)) == 50
    with pytest.raises(ValueError, match="unknown workload"):
        workload_lines("bursts", options)


def test_rate_brackets_a_count_that_moves_in_steps() -> None:
    # counted at checkpoints: nothing for 2 s, then 600 at once, then the rest 0.5 s later
    samples = [(0.0, 0.0), (1.0, 0.0), (2.0, 0.0), (2.25, 600.0), (2.5, 600.0), (2.75, 1000.0)]
    assert rate_between(samples, 1000) == pytest.approx(1000 / 0.75)
