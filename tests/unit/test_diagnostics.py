"""`kill -USR1` on a worker: where every asyncio task waits, down the chain of awaits."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from cartwatch.streams.worker.diagnostics import DumpOnSignal, _await_chain, dump_tasks


async def _innermost(patient_id: str) -> None:
    await asyncio.sleep(30)


async def _middle(patient_id: str) -> None:
    await _innermost(patient_id)


async def _outer(patient_id: str) -> None:
    await _middle(patient_id)


def _broken_state() -> str:
    raise RuntimeError("not started")


def test_the_chain_follows_each_await_down_to_the_innermost_coroutine():
    async def scenario() -> list[str]:
        task = asyncio.ensure_future(_outer("S01-0001"))
        await asyncio.sleep(0)
        try:
            return _await_chain(task.get_coro())
        finally:
            task.cancel()

    chain = asyncio.run(scenario())
    functions = [where.rsplit(" ", 1)[1] for where in chain]
    assert functions[:3] == ["_outer", "_middle", "_innermost"]
    assert chain[0].startswith(__file__)


def test_the_dump_logs_code_locations_and_no_value(caplog):
    async def scenario() -> None:
        task = asyncio.ensure_future(_outer("S01-0001"))
        await asyncio.sleep(0)
        try:
            dump_tasks(_broken_state)  # a state that fails: the dump goes on without it
        finally:
            task.cancel()

    with caplog.at_level(logging.WARNING, logger="cartwatch.streams.worker.diagnostics"):
        asyncio.run(scenario())
    [record] = caplog.records
    assert "_innermost" in record.getMessage()
    assert "input state unavailable (RuntimeError)" in record.getMessage()
    assert "S01-0001" not in record.getMessage()


def test_sigusr1_to_a_running_worker_logs_the_dump(caplog):
    async def scenario() -> None:
        service = DumpOnSignal(lambda: "input ready True")
        await service.on_start()
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.sleep(0.05)
        finally:
            await service.on_stop()

    with caplog.at_level(logging.WARNING, logger="cartwatch.streams.worker.diagnostics"):
        asyncio.run(scenario())
    assert any(r.getMessage().startswith("SIGUSR1:") for r in caplog.records)
    assert any("input ready True" in r.getMessage() for r in caplog.records)
