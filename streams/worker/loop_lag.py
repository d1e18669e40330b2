"""Event-loop lag: how late the worker's asyncio loop wakes a task that asked to sleep.

Everything the worker does (consuming, the core, table writes, the API, the gauges) runs on
one event loop. A batch that holds the loop for 80 ms delays every other task by up to that
much, and an alert waiting to be published waits too. `EventLoopLag.run` is an asyncio
task that sleeps a fixed interval and observes, each time it wakes, how much later than
asked it woke (`cartwatch_event_loop_lag_seconds`). It samples the loop every interval,
so a stall shorter than the interval may be seen only in part, or not at all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from prometheus_client import Histogram

INTERVAL_S = 0.1


class EventLoopLag:
    """Observe the loop's lateness every `interval` seconds into `histogram`."""

    def __init__(
        self,
        histogram: Histogram,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.histogram = histogram
        self.interval = interval
        self.clock = clock

    async def run(self) -> None:
        """Until cancelled: sleep `interval`, observe the time overslept (never below 0)."""
        while True:
            await self.tick()

    async def tick(self) -> float:
        """One sleep and its observation; the lag in seconds."""
        asked = self.clock()
        await asyncio.sleep(self.interval)
        lag = max(0.0, self.clock() - asked - self.interval)
        self.histogram.observe(lag)
        return lag
