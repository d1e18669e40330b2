"""Batches that never wait while events are ready (worker.batches.take_ready), driven
through a Faust agent's own test context (no broker)."""

from __future__ import annotations

import asyncio

import faust

from cartwatch.streams.worker.batches import take_ready

LONG = 30.0  # an idle gathering this long would time the test out


def _app() -> faust.App:
    return faust.App("test-batches", broker="kafka://127.0.0.1:1", store="memory://")


def _run(max_: int, within: float, script) -> list[list[int]]:
    """Batches an agent took while `script(agent, release)` put events; the agent holds each
    batch until `release` is set, then clears it."""
    app, batches, release = _app(), [], asyncio.Event()

    async def collect(stream: faust.StreamT) -> None:
        async for batch in take_ready(stream, max_, within):
            batches.append([event.value for event in batch])
            await release.wait()
            release.clear()

    agent = app.agent(name="collect")(collect)

    async def go() -> None:
        async with agent.test_context() as running:
            await asyncio.wait_for(script(running, release, batches), 10)

    asyncio.run(go())
    return batches


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.001)


def test_events_that_arrive_during_a_batch_are_the_next_batch_without_waiting():
    async def script(agent, release, batches):
        await agent.put(0)
        await _until(lambda: batches)  # the idle gathering after event 0 was short
        for n in range(1, 5):
            await agent.put(n)
        release.set()
        await _until(lambda: len(batches) == 2)  # not after LONG: they were ready

    assert _run(max_=100, within=0.01, script=script) == [[0], [1, 2, 3, 4]]


def test_an_idle_stream_gathers_for_within_after_its_first_event():
    async def script(agent, release, batches):
        for n in range(3):
            await agent.put(n)
        await _until(lambda: batches)

    assert _run(max_=100, within=0.2, script=script) == [[0, 1, 2]]


def test_a_batch_holds_at_most_max_events_and_the_rest_come_next():
    async def script(agent, release, batches):
        await agent.put(0)
        await _until(lambda: batches)
        for n in range(1, 6):
            if n == 4:  # the buffer is full: the stream waits for the agent
                put = asyncio.ensure_future(agent.put(n))
                await asyncio.sleep(0.05)
                assert not put.done()
                release.set()
                await put
            else:
                await agent.put(n)
        await _until(lambda: len(batches) == 2)
        release.set()
        await _until(lambda: len(batches) == 3)

    assert _run(max_=3, within=0.01, script=script) == [[0], [1, 2, 3], [4, 5]]


def test_every_event_of_a_batch_is_acknowledged_once_the_agent_asks_for_the_next():
    app, seen = _app(), []

    async def collect(stream: faust.StreamT) -> None:
        async def ack(event: faust.EventT) -> bool:
            seen.append(("acked", event.value))
            return True

        stream.ack = ack
        async for batch in take_ready(stream, 10, 0.01):
            seen.extend(("processed", event.value) for event in batch)

    agent = app.agent(name="collect")(collect)

    async def go() -> None:
        async with agent.test_context() as running:
            await running.put(7)
            await _until(lambda: len(seen) == 2)
            await running.put(8)
            await _until(lambda: len(seen) == 4)

    asyncio.run(asyncio.wait_for(go(), 10))
    assert seen == [("processed", 7), ("acked", 7), ("processed", 8), ("acked", 8)]


def test_events_buffered_or_read_after_the_agent_stops_are_handed_back_unacknowledged():
    # Faust restarts a crashed agent on the same stream, whose reading goes on meanwhile:
    # what it reads before the new agent's take_ready is handed back, never acknowledged.
    app, seen, left, release = _app(), [], [], asyncio.Event()
    restart, restarted = asyncio.Event(), asyncio.Event()

    async def collect(stream: faust.StreamT) -> None:
        async def ack(event: faust.EventT) -> bool:
            seen.append(("acked", event.value))
            return True

        stream.ack = ack
        processors = len(stream._processors)
        batches = take_ready(stream, 100, 0.01, lambda events: left.extend(events))
        try:
            async for batch in batches:
                seen.extend(("processed", event.value) for event in batch)
                await release.wait()
                break  # the agent stops (as when a batch raised) with 8 and 9 buffered
        finally:
            await batches.aclose()
        seen.append(("processors", len(stream._processors) - processors, stream.enable_acks))
        await restart.wait()  # meanwhile 10 is read
        async for batch in take_ready(stream, 100, 0.01, lambda events: left.extend(events)):
            seen.extend(("processed", event.value) for event in batch)
            seen.append(("processors", len(stream._processors) - processors, stream.enable_acks))
            restarted.set()

    agent = app.agent(name="collect")(collect)

    async def go() -> None:
        async with agent.test_context() as running:
            await running.put(7)
            await _until(lambda: seen)
            await running.put(8)
            await running.put(9)
            release.set()
            await _until(lambda: seen[-1][0] == "processors")
            await running.put(10)
            await _until(lambda: len(left) == 3)
            restart.set()
            await asyncio.sleep(0.05)
            await running.put(11)
            await restarted.wait()

    asyncio.run(asyncio.wait_for(go(), 10))
    assert seen[:2] == [("processed", 7), ("acked", 7)]
    assert [event.value for event in left] == [8, 9, 10]  # never acknowledged, never processed
    assert seen[2] == ("processors", 1, False)  # buffering gone; handing back, acks off
    # the new take_ready's: 11 only, processed then acknowledged; the handing back gone
    assert seen[3:] == [("processed", 11), ("processors", 1, False), ("acked", 11)]
    assert all(not event.message.acked for event in left)
