"""The gauge timer: consumer gauges on every tick, the whole-trial work at most a fifth of
the event loop however long it takes."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

from streams.app import GAUGE_PAUSE_FACTOR, Worker
from streams.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _worker(data_dir: Path, refresh_takes: float) -> tuple[Worker, Clock, list[float], list]:
    worker = Worker(Settings(embedded_broker=False, data_dir=str(data_dir)))
    clock, trial_refreshes, consumer_ticks = Clock(), [], []
    worker._clock = clock
    worker._consumer_lag = dict
    worker.is_consuming = lambda: True
    worker.metrics.observe_consumer = lambda lag, consuming: consumer_ticks.append(clock.now)

    def refresh_trials() -> None:
        trial_refreshes.append(clock.now)
        clock.now += refresh_takes

    worker._refresh_trials = refresh_trials
    return worker, clock, trial_refreshes, consumer_ticks


def _ticks(worker: Worker, clock: Clock, every: float, until: float) -> None:
    async def run() -> None:
        while clock.now < until:
            await worker._refresh_gauges()
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
