"""The pure helpers of `cartwatch bench` (no broker, no timing)."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from cartwatch.alerts.pipeline import Pipeline
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.streams.devtools.bench_latency import latency_stream
from cartwatch.streams.devtools.bench_report import (
    Target,
    first_log_time,
    percentile,
    rate_between,
    render_table,
    target_rows,
    top_frames,
)
from cartwatch.streams.devtools.bench_restart import restart_lines


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
