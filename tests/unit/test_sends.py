"""A batch's records reach the broker in the order that keeps the embedded broker's
"latest" offset right: each partition's last record alone, after the others."""

from __future__ import annotations

import asyncio

from cartwatch.streams.kafka.sends import Outgoing, outgoing, send_all


class Broker:
    """Records each send; acknowledges when the test says."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes | None]] = []
        self.acks: list[asyncio.Future] = []

    async def send(self, topic, key, value, partition, timestamp, headers) -> asyncio.Future:
        self.sent.append((topic, partition, value))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]

    def ack_all(self) -> None:
        for future in self.acks:
            if not future.done():
                future.set_result(None)


def records(broker: Broker, *where: tuple[str, int]) -> list[Outgoing]:
    return [outgoing(broker, t, p, None, b"%d" % i) for i, (t, p) in enumerate(where)]


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def test_each_partitions_last_record_goes_once_the_others_are_acknowledged():
    async def scenario() -> None:
        broker = Broker()
        batch = records(broker, ("a", 0), ("a", 1), ("a", 0), ("b", 0), ("a", 0))
        task = asyncio.ensure_future(send_all(batch, last_alone=True))
        await settle()
        # the first two records of a/0 go; a/1 and b/0 have one each, which wait
        assert broker.sent == [("a", 0, b"0"), ("a", 0, b"2")]
        broker.ack_all()
        await settle()
        assert broker.sent[2:] == [("a", 1, b"1"), ("b", 0, b"3"), ("a", 0, b"4")]
        assert not task.done()  # the last records are not acknowledged yet
        broker.ack_all()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(scenario())


def test_without_last_alone_every_record_goes_at_once():
    async def scenario() -> None:
        broker = Broker()
        task = asyncio.ensure_future(send_all(records(broker, ("a", 0), ("a", 0)), False))
        await settle()
        assert [v for *_, v in broker.sent] == [b"0", b"1"]
        assert not task.done()
        broker.ack_all()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(scenario())


def test_acknowledged_runs_once_every_record_is_acknowledged():
    async def scenario() -> None:
        broker, done = Broker(), []
        sent = [
            outgoing(broker, "t", 0, b"k", b"v", acknowledged=lambda: done.append("first")),
            outgoing(broker, "t", 1, b"k", b"w", acknowledged=lambda: done.append("second")),
        ]
        task = asyncio.ensure_future(send_all(sent, last_alone=False))
        await settle()
        assert len(broker.sent) == 2 and done == []  # sent, not yet acknowledged
        broker.acks[0].set_result(None)
        await settle()
        assert done == []
        broker.ack_all()
        await asyncio.wait_for(task, timeout=1)
        assert done == ["first", "second"]

    asyncio.run(scenario())


def test_acknowledged_never_runs_when_a_send_fails():
    async def scenario() -> None:
        broker, done = Broker(), []
        sent = [outgoing(broker, "t", 0, b"k", b"v", acknowledged=lambda: done.append(1))]
        task = asyncio.ensure_future(send_all(sent, last_alone=True))
        await settle()
        broker.acks[0].set_exception(ConnectionError("broker gone"))
        await asyncio.gather(task, return_exceptions=True)
        assert isinstance(task.exception(), ConnectionError) and done == []

    asyncio.run(scenario())
