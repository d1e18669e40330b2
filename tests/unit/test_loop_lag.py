"""The event-loop lag monitor: a loop held by blocking work is seen as lag."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from cartwatch.streams.worker.app import Worker
from cartwatch.streams.worker.loop_lag import EventLoopLag
from cartwatch.streams.worker.metrics import LOOP_LAG_BUCKETS, Metrics
from cartwatch.streams.worker.settings import Settings


def _buckets(metrics: Metrics) -> dict[str, float]:
    """le -> cumulative count of the lag histogram, and the count and sum."""
    values = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "cartwatch_event_loop_lag_seconds_bucket":
                values[sample.labels["le"]] = sample.value
            elif sample.name.startswith("cartwatch_event_loop_lag_seconds_"):
                values[sample.name.rsplit("_", 1)[1]] = sample.value
    return values


def test_a_loop_blocked_by_a_synchronous_sleep_is_observed_as_lag() -> None:
    metrics = Metrics(CollectorRegistry())
    monitor = EventLoopLag(metrics.event_loop_lag, interval=0.05)

    async def main() -> None:
        task = asyncio.create_task(monitor.run())
        await asyncio.sleep(0.12)  # the monitor sleeps and wakes on a free loop
        time.sleep(0.4)  # blocking work holds the loop: the monitor cannot wake on time
        await asyncio.sleep(0.12)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    seen = _buckets(metrics)
    assert seen["count"] >= 3
    assert seen["0.25"] < seen["+Inf"] == seen["count"]  # the 0.4 s block: >= 0.3 s late
    assert seen["sum"] >= 0.3


def test_a_tick_observes_the_time_overslept_and_never_less_than_zero() -> None:
    metrics = Metrics(CollectorRegistry())
    times = iter([10.0, 10.35, 20.0, 20.05])  # overslept 0.25 s; woke early (coarse clock)
    monitor = EventLoopLag(metrics.event_loop_lag, interval=0.1, clock=lambda: next(times))
    lags = [asyncio.run(monitor.tick()), asyncio.run(monitor.tick())]
    assert abs(lags[0] - 0.25) < 1e-9
    assert lags[1] == 0.0
    seen = _buckets(metrics)
    assert seen["count"] == 2
    assert seen["0.1"] == 1 and seen["0.25"] == 2  # 0 in the first bucket, 0.25 in le=0.25


def test_the_buckets_resolve_a_p99_between_5_and_100_ms() -> None:
    inside = [b for b in LOOP_LAG_BUCKETS if 0.005 <= b <= 0.1]
    assert len(inside) >= 8
    assert max(LOOP_LAG_BUCKETS) >= 5


def test_the_worker_starts_the_lag_monitor_with_its_app(tmp_path: Path) -> None:
    worker = Worker(Settings(embedded_broker=False, data_dir=str(tmp_path)))
    started = [getattr(task, "__wrapped__", None) for task in worker.app._app_tasks]
    monitors = [
        fun.__self__ for fun in started if isinstance(getattr(fun, "__self__", None), EventLoopLag)
    ]
    assert len(monitors) == 1
    assert monitors[0].histogram is worker.metrics.event_loop_lag
