"""`AlertDispatcher`: delivers stored alerts to the configured sinks, apart from the stream.

The `alerts` table is the outbox: the worker stores every raised alert there, and the
dispatcher, a background asyncio task per sink, polls it, delivers each alert to every
sink routed for its severity, retries a failure with capped exponential backoff (state in
`alert_deliveries`, so a restart carries on where the last run stopped) and re-notifies a
critical alert nobody acknowledged. An alert's delivery state is read from those rows
(storage/delivery_state.py). Database calls run in threads and every sink has a
timeout, so neither a dead receiver nor a slow database holds up stream processing, nor
one sink another. Logs carry sink names, counts and error classes: never an alert id,
which holds a patient id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from mode import Service
from sqlalchemy import Engine

from cartwatch.alerts.sinks.base import DeliveryFailed
from cartwatch.alerts.sinks.routing import Route, Routing, routing_from_settings
from cartwatch.streams.storage import outbox
from cartwatch.streams.storage.engine import now
from cartwatch.streams.worker.settings import Settings

log = logging.getLogger(__name__)


def backoff_s(attempts: int, first_s: float, cap_s: float) -> float:
    """The wait after `attempts` failed attempts: first, 2 x first, 4 x first ..., capped."""
    return min(first_s * 2 ** (attempts - 1), cap_s)


class AlertDispatcher:
    """Delivery loops over one routing; `start()` in the worker's loop, `stop()` at shutdown."""

    def __init__(
        self,
        engine: Engine,
        routing: Routing,
        *,
        renotify_after_s: float = 1800.0,
        interval_s: float = 0.5,
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        lease_s: float = 60.0,
        batch_size: int = 50,
    ) -> None:
        self.engine, self.routing = engine, routing
        self._severities = {r.sink.name: r.severities for r in routing.routes}
        self._renotify_after = timedelta(seconds=renotify_after_s)
        self._interval_s = interval_s
        self._first_backoff_s, self._max_backoff_s = first_backoff_s, max_backoff_s
        # A claimed delivery is out of other dispatchers' reach this long: longer than any
        # sink's timeout, so only a dispatcher that died mid-delivery lets it expire.
        self._lease = timedelta(seconds=lease_s)
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> AlertDispatcher:
        """The dispatcher the settings describe (no sinks configured: it idles)."""
        return cls(
            engine,
            routing_from_settings(settings),
            renotify_after_s=settings.renotify_after_s,
            interval_s=settings.delivery_interval_s,
            max_backoff_s=settings.delivery_max_backoff_s,
        )

    async def start(self) -> None:
        """One background task per sink, in the running event loop."""
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._run(route), name=f"deliver-{route.sink.name}")
            for route in self.routing.routes
        ]

    async def stop(self, timeout: float = 15.0) -> None:
        """Let the loops finish the delivery in hand (bounded by the sinks' timeouts)."""
        self._stopping.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=timeout)
            for task in late:  # its claim lapses after the lease: retried, not lost
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._tasks = []
        await self.routing.close()

    async def run_once(self, route: Route) -> int:
        """One pass for one sink: enqueue new and due re-notifications, deliver what is due."""
        at = now()
        sink = route.sink.name
        # Every sink's first notifications at once, whichever loop runs first (outbox.py)
        await asyncio.to_thread(outbox.enqueue_new, self.engine, self._severities, at)
        if "critical" in route.severities:
            cutoff = at - self._renotify_after
            await asyncio.to_thread(outbox.enqueue_renotifications, self.engine, sink, cutoff, at)
        claimed = await asyncio.to_thread(
            outbox.claim_due, self.engine, sink, at, at + self._lease, self._batch_size
        )
        await asyncio.gather(*(self._deliver(route, c) for c in claimed))
        return len(claimed)

    async def _run(self, route: Route) -> None:
        while not self._stopping.is_set():
            try:
                taken = await self.run_once(route)
            except Exception as exc:  # a database outage must not end delivery for good
                self.last_error = type(exc).__name__
                log.warning("alert delivery to %s: %s; retrying", route.sink.name, self.last_error)
                taken = 0
            if taken < self._batch_size:  # a full batch means more may be waiting
                await self._sleep(self._interval_s)

    async def _deliver(self, route: Route, claimed: outbox.Claimed) -> None:
        try:
            await route.sink.deliver(claimed.alert)
        except DeliveryFailed as exc:
            wait_s = backoff_s(claimed.attempts, self._first_backoff_s, self._max_backoff_s)
            retry_at = now() + timedelta(seconds=wait_s)
            self.failed += 1
            self.last_error = f"{route.sink.name}: {exc}"
            await asyncio.to_thread(outbox.mark_failed, self.engine, claimed, retry_at, str(exc))
            return
        self.delivered += 1
        await asyncio.to_thread(outbox.mark_delivered, self.engine, claimed, now())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


class DeliveryService(Service):
    """The dispatcher as a mode service: `FaustWorker(app, api, DeliveryService(...))`."""

    def __init__(self, dispatcher: AlertDispatcher, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.dispatcher = dispatcher

    async def on_start(self) -> None:
        await self.dispatcher.start()

    async def on_stop(self) -> None:
        await self.dispatcher.stop()
