"""Run a worker: the Faust app, its HTTP API, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import gc
import logging
import ssl

from aiohttp import web
from faust.worker import Worker as FaustWorker
from mode import Service

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.exposure import OPEN_ON_LOOPBACK, check_exposure
from cartwatch.streams.http.identity import Authenticator
from cartwatch.streams.http.tls import server_context
from cartwatch.streams.kafka.faust_settings import uses_embedded_broker
from cartwatch.streams.kafka.topics import ensure_topics
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.users import any_users
from cartwatch.streams.storage.writer import StorageWriter
from cartwatch.streams.worker.app import Worker
from cartwatch.streams.worker.delivery import AlertDispatcher, DeliveryService
from cartwatch.streams.worker.diagnostics import DumpOnSignal
from cartwatch.streams.worker.settings import Settings

log = logging.getLogger(__name__)


class TablePreload(Service):
    """Reads the global tables' changelogs in bulk; a service, so it runs before the app."""

    def __init__(self, worker: Worker, **kwargs) -> None:
        super().__init__(**kwargs)
        self.worker = worker

    async def on_start(self) -> None:
        await self.worker.preload_tables()


class ApiServer(Service):
    """The aiohttp API as a mode service, started and stopped with the worker.

    With an `ssl_context` it serves HTTPS only: the port speaks nothing but TLS.
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        open_api: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.web_app, self.host, self.port = app, host, port
        self.ssl_context = ssl_context
        self.open_api = open_api  # no identity configured (allowed on loopback only)
        self.runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self.runner = web.AppRunner(self.web_app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        scheme = "https" if self.ssl_context is not None else "http"
        log.info("API listening on %s://%s:%s", scheme, self.host, self.port)
        if self.open_api:
            log.warning(OPEN_ON_LOOPBACK, self.host)

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def api_tls(settings: Settings) -> ssl.SSLContext | None:
    """The API's TLS context when CARTWATCH_API_TLS_CERT and _KEY are set, else None."""
    if settings.api_tls_cert is None or settings.api_tls_key is None:
        return None
    return server_context(settings.api_tls_cert, settings.api_tls_key)


# Python's collector with its default thresholds (700, 10, 10) made a full collection over
# every patient record every few seconds: 93-166 ms pauses, each an alert's p99 at 2,000
# events/s (docs/BENCHMARKS.md, 2026-11-30). Young collections every 10,000 allocations
# (fewer records promoted), full ones after 50 x 100 of them instead of 10 x 10 (subject to
# Python's own rule of 25% new long-lived objects); cyclic garbage is still collected.
GC_THRESHOLDS = (10_000, 50, 100)


def run_worker(settings: Settings) -> int:
    """Block running one worker; returns the exit code."""
    gc.set_threshold(*GC_THRESHOLDS)
    tls = api_tls(settings)  # a missing or unreadable certificate stops the start at once
    upgrade(settings.database_url)  # idempotent: an up-to-date schema is left as it is
    engine = make_engine(settings.database_url)  # acknowledgements and alert delivery
    configured = settings.api_token is not None or settings.oidc_issuer is not None
    open_api = check_exposure(settings.api_host, configured or any_users(engine))  # or raises
    # Alerts and dead letters go to their cause's partition; only the embedded broker gets
    # its topics from the worker (production: deploy/kafka/create-topics.sh).
    ensure_topics(settings, create=uses_embedded_broker(settings))
    writer = StorageWriter.connect(settings.database_url)
    worker = Worker(settings, writer=writer, engine=engine)
    identity = Authenticator.from_settings(settings, engine)
    web_app = build_api(
        worker.view,
        worker.metrics,
        identity,
        engine,
        desk_url=settings.desk_url,
        stopping=settings.thresholds.toxicity,
    )
    api = ApiServer(web_app, settings.api_host, settings.api_port, tls, open_api)
    delivery = DeliveryService(AlertDispatcher.from_settings(engine, settings))
    dump = DumpOnSignal(worker.input.describe)  # kill -USR1: where a stalled worker waits
    # The services start in this order and the app after them: the API answers (/healthz
    # 503, /metrics) while the tables' changelogs are read in bulk, before the group join.
    preload = TablePreload(worker)
    faust_worker = FaustWorker(
        worker.app, api, preload, delivery, dump, loglevel="INFO", quiet=True
    )
    try:
        faust_worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        writer.close()
        engine.dispose()
    return 0
