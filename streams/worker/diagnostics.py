"""What a stalled worker is doing: `kill -USR1 <worker pid>` (docs/OPERATIONS.md).

Code locations and topic partitions only, never a variable's value, so no patient
identifier reaches the log.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from mode import Service

log = logging.getLogger(__name__)


class DumpOnSignal(Service):
    """Logs `dump_tasks` on SIGUSR1. Started with the worker's other services, after the
    worker's own signal handlers, so it replaces mode's SIGUSR1 handler (thread stacks on
    stderr) with one that follows the asyncio tasks."""

    def __init__(self, input_state: Callable[[], str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.input_state = input_state

    async def on_start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, dump_tasks, self.input_state)

    async def on_stop(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)


def dump_tasks(input_state: Callable[[], str]) -> None:
    """Log where every asyncio task waits (`kill -USR1 <worker pid>`, for a stalled worker),
    and the input consumer's state (`InputConsumer.describe`).

    Code locations and topic partitions only, down the chain of awaits: no variable's
    value, so no patient identifier, reaches the log.
    """
    tasks = asyncio.all_tasks()
    try:
        state = input_state()
    except Exception as exc:  # a diagnostic: never fail the dump
        state = f"input state unavailable ({type(exc).__name__})"
    lines = [f"SIGUSR1: {len(tasks)} asyncio tasks; {state}"]
    for task in tasks:
        lines.append(f"--- {task.get_name()}")
        lines += (f"    {where}" for where in _await_chain(task.get_coro()))
    log.warning("\n".join(lines))


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
