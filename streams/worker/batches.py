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
`app.withhold_acks`). Events buffered and never yielded when the generator closes
are handed to `unprocessed`, so the agent can have them read again, and so is every event
the stream goes on reading after that: Faust restarts a crashed agent on the same stream,
whose reading task never stops, and with no processor to take them and its acknowledgements
back on it would acknowledge them unprocessed (events lost) until the new agent's
`take_ready` takes over.
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
    yielded, go to `unprocessed` (never acknowledged here), and so does every event the
    stream reads after that, until the next `take_ready` on the stream.
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

    # Kept on the stream: the processor handing its events back since an earlier take_ready
    # closed (now this one takes them), and which take_ready is the stream's latest.
    handing_back = getattr(stream, "_cartwatch_hand_back", None)
    if handing_back is not None:
        stream._processors.remove(handing_back)
        stream._cartwatch_hand_back = None
    latest = stream._cartwatch_take_ready = object()
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
        stream._processors.remove(add_to_buffer)
        room.set()  # a stream waiting for room goes on: its events are in `buffer`
        if unprocessed is None:
            stream.enable_acks = acks_were
        else:
            if buffer:
                unprocessed(list(buffer))
            # Acknowledgements stay off: what the stream reads from now on is handed back
            # too, until a new take_ready on this stream takes over (unless one already has:
            # this generator closed late).
            if stream._cartwatch_take_ready is latest:
                stream._cartwatch_hand_back = hand_back = _hand_back(stream, unprocessed)
                stream.add_processor(hand_back)


def _hand_back(
    stream: faust.StreamT, unprocessed: Callable[[list[faust.EventT]], None]
) -> Callable[[object], object]:
    def hand_back(value: object) -> object:
        event = stream.current_event
        if event is not None:
            unprocessed([event])
        return value

    return hand_back
