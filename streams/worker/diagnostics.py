"""What a stalled worker is doing: `kill -USR1 <worker pid>` (docs/OPERATIONS.md).

Code locations and topic partitions only, never a variable's value, so no patient
identifier reaches the log.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import faust
from mode import Service

log = logging.getLogger(__name__)


class DumpOnSignal(Service):
    """Logs `dump_tasks` on SIGUSR1. Started with the worker's other services, after the
    worker's own signal handlers, so it replaces mode's SIGUSR1 handler (thread stacks on
    stderr) with one that follows the asyncio tasks."""

    def __init__(self, app: faust.App, **kwargs) -> None:
        super().__init__(**kwargs)
        self.faust_app = app

    async def on_start(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks, self.faust_app)

    async def on_stop(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)


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

        def names(tps) -> list[str]:
            return sorted(f"{tp.topic}:{tp.partition}" for tp in tps or ())

        paused = names(consumer._thread._ensure_consumer().paused())
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
