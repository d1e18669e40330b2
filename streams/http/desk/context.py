"""What every desk handler shares: the state view, the database, metrics, who signs in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from cartwatch.streams.http.identity import Authenticator
from cartwatch.streams.worker.metrics import Metrics

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cartwatch.streams.http.api import StateView

T = TypeVar("T")


@dataclass(frozen=True)
class Desk:
    """The desk's dependencies, built once by `add_desk_routes`."""

    view: StateView
    engine: Engine | None
    metrics: Metrics
    authenticator: Authenticator  # who signs in (identity.py); with no source, nobody
    public_url: str | None

    async def timed(self, page: str, work: Callable[..., T], *args: Any) -> T:
        """Run `work` (figures, charts, HTML) in a thread and record how long it took."""
        started = time.perf_counter()
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self.metrics.desk_page.labels(page).observe(time.perf_counter() - started)

    async def query(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A database call, in a thread: never in the event loop the stream runs in."""
        return await asyncio.to_thread(work, *args, **kwargs)


DESK = web.AppKey("desk", Desk)


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK]
