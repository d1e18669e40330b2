"""Batches of a Faust stream that never wait while events are ready: `take_ready`.

Faust's `Stream.take_events(max_, within)` stops buffering while the agent processes a
batch and then waits `within` seconds (or for `max_` events) before the next one, so every
event waits a full `within` on top of the batch before it, also when hundreds are ready. Here
the events that arrive while a batch is processed are buffered (up to `max_`), and the next
batch is the buffer as soon as the agent asks; only an idle stream gathers for `within` after
its first event. Under load batches grow with the time a batch takes, as with `within` long,
and an idle worker answers within `within`, as with it short.

Acknowledgements are Faust's: the events of a batch are acknowledged when the agent asks
for the next batch or the generator closes, also after the agent raised (see
`streams.app.withhold_acks`). Events buffered and never yielded when the generator closes
are handed to `unprocessed`, so the agent can have them read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import faust


async def take_ready(
    stream: faust.StreamT,
    max_: int,
    within: float,
    unprocessed: Callable[[list[faust.EventT]], None] | None = None,
) -> AsyncIterator[list[faust.EventT]]:
    """Yield lists of up to `max_` events: what is buffered, or after `within` when idle.

    Close it (`aclose`) when the agent stops early: the events still buffered then, never
    yielded, go to `unprocessed` (never acknowledged here).
    """
    buffer: list[faust.EventT] = []
    ready, room = asyncio.Event(), asyncio.Event()
    room.set()

    async def add_to_buffer(value: object) -> object:
        event = stream.current_event
        if event is None:
            raise RuntimeError("take_ready: a value without its event")
        buffer.append(event)
        ready.set()
        if len(buffer) >= max_:
            room.clear()
            await stream.wait(room)
        return value

    acks_were = stream.enable_acks
    stream.enable_acks = False  # acknowledged below, once the agent is done with them
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            if not buffer:
                await stream.wait_for_stopped(ready)
                if within and len(buffer) < max_:
                    await asyncio.sleep(within)  # an idle stream: gather the next few
            if not buffer:
                continue
            batch, buffer[:] = buffer[:max_], buffer[max_:]
            if not buffer:
                ready.clear()
            room.set()
            try:
                yield batch
            finally:
                for event in batch:
                    await stream.ack(event)
    finally:
        stream.enable_acks = acks_were
        stream._processors.remove(add_to_buffer)
        room.set()  # a stream waiting for room goes on: its events are in `buffer`
        if buffer and unprocessed is not None:
            unprocessed(list(buffer))
