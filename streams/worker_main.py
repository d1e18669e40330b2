"""Run a worker: the Faust app, its HTTP API, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from functools import partial

import faust
from aiohttp import web
from faust.worker import Worker as FaustWorker
from mode import Service

from streams.api import build_api
from streams.app import Worker
from streams.delivery import AlertDispatcher, DeliveryService
from streams.settings import Settings
from streams.storage.engine import make_engine
from streams.storage.migrate import upgrade
from streams.storage.writer import StorageWriter

log = logging.getLogger(__name__)


class ApiServer(Service):
    """The aiohttp API as a mode service, started and stopped with the worker."""

    def __init__(
        self, app: web.Application, host: str, port: int, on_dump: Callable[[], None], **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.web_app, self.host, self.port, self.on_dump = app, host, port, on_dump
        self.runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.on_dump)
        self.runner = web.AppRunner(self.web_app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, self.host, self.port).start()
        log.info("API listening on http://%s:%s", self.host, self.port)

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def dump_tasks(app: faust.App) -> None:
    """Log where every asyncio task waits (`kill -USR1 <worker pid>`, for a stalled worker),
    and the consumer's flow state.

    Code locations and topic partitions only, down the chain of awaits: no variable's
    value, so no patient identifier, reaches the log.
    """
    tasks = asyncio.all_tasks()
    lines = [f"SIGUSR1: {len(tasks)} asyncio tasks; {_flow_state(app)}"]
    for task in tasks:
        lines.append(f"--- {task.get_name()}")
        lines += (f"    {where}" for where in _await_chain(task.get_coro()))
    log.warning("\n".join(lines))


def _flow_state(app: faust.App) -> str:
    try:
        consumer = app.consumer
        paused = sorted(
            f"{tp.topic}:{tp.partition}" for tp in consumer._thread._ensure_consumer().paused()
        )

        def names(tps) -> list[str]:
            return sorted(f"{tp.topic}:{tp.partition}" for tp in tps or ())

        return (
            f"flow active {app.flow_control.is_active()}, "
            f"suspended {consumer.suspend_flow.is_set()}, "
            f"rebalancing {app.rebalancing}, in recovery {app.in_recovery}, paused {paused}, "
            f"faust active {names(consumer._active_partitions)}, "
            f"faust buffered {names(consumer._buffered_partitions)}, "
            f"faust paused {names(consumer._paused_partitions)}, "
            f"assigned {names(consumer.assignment())}, "
            f"input partitions {_offsets(app)}"
        )
    except Exception as exc:  # a diagnostic: never fail the dump
        return f"flow state unavailable ({type(exc).__name__})"


def _offsets(app: faust.App) -> dict[str, dict]:
    """Faust's bookkeeping of each input partition: committed and read offsets, the
    acknowledged offsets waiting to be committed (count, distinct, first), the highwater
    and the gaps it counts as acknowledged."""
    consumer = app.consumer
    out = {}
    for tp in consumer.assignment():
        if tp.topic in app.tables.changelog_topics:
            continue
        acked = consumer._acked.get(tp) or []
        out[f"{tp.topic}:{tp.partition}"] = {
            "committed": consumer._committed_offset.get(tp),
            "read": consumer._read_offset.get(tp),
            "acked": len(acked),
            "acked_distinct": len(set(acked)),
            "acked_first": sorted(acked)[:4],
            "highwater": consumer.highwater(tp),
            "gaps": sorted((i.begin, i.end) for i in consumer._gap.get(tp, ()))[:4],
        }
    return out


def _await_chain(coro: object) -> list[str]:
    """File, line and function of each coroutine frame from `coro` down to what it awaits."""
    chain = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None)
        frame = frame or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
        )
    return chain


def run_worker(settings: Settings) -> int:
    """Block running one worker; returns the exit code."""
    upgrade(settings.database_url)  # idempotent: an up-to-date schema is left as it is
    writer = StorageWriter.connect(settings.database_url)
    engine = make_engine(settings.database_url)  # acknowledgements and alert delivery
    worker = Worker(settings, writer=writer)
    web_app = build_api(worker, worker.metrics, settings.api_token, engine)
    api = ApiServer(
        web_app, settings.api_host, settings.api_port, on_dump=partial(dump_tasks, worker.app)
    )
    delivery = DeliveryService(AlertDispatcher.from_settings(engine, settings))
    faust_worker = FaustWorker(worker.app, api, delivery, loglevel="INFO", quiet=True)
    try:
        faust_worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        writer.close()
        engine.dispose()
    return 0
