"""The input path's batches and checkpoints (streams/kafka/input_consumer.py), with a
consumer double that records what the service asks of aiokafka: commits, seeks, and the
order of both around applying, checkpoints and rebalances. The real consumer runs in
tests/integration."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from cartwatch.streams.kafka import input_consumer
from cartwatch.streams.kafka.input_consumer import Checkpoint
from tests.unit.input_doubles import Consumer, Service, records, settle

LABS0, LABS1, LABS2 = (TopicPartition("labs", n) for n in range(3))


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(input_consumer, "RETRY_AFTER_S", 0.01)
    monkeypatch.setattr(input_consumer, "IDLE_POLL_MS", 20)
    monkeypatch.setattr(input_consumer, "BACKLOG_WAIT_MS", 30)


def test_a_checkpoint_commits_the_offset_after_each_partitions_last_record():
    checkpoint = Checkpoint()
    checkpoint.add({LABS0: records(LABS0, 5, 6, 7), LABS1: records(LABS1, 2), LABS2: []})
    checkpoint.add({LABS0: records(LABS0, 8), LABS2: records(LABS2, 40)})
    assert checkpoint.first == {LABS0: 5, LABS1: 2, LABS2: 40}
    assert checkpoint.next_offsets() == {LABS0: 9, LABS1: 3, LABS2: 41}
    assert checkpoint.records == 6


def commits(consumer: Consumer) -> list[dict]:
    return [entry[1] for entry in consumer.log if entry[0] == "commit"]


def test_a_batch_is_committed_after_its_checkpoint_and_only_then():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer({LABS0: 5})
        consumer.high = {LABS0: 100, LABS1: 100}
        service = Service(consumer)
        await service.inputs.on_start()
        await consumer.assign(LABS0, LABS1)
        service.gate = asyncio.Event()
        await consumer.batches.put({LABS0: records(LABS0, 5, 6), LABS1: records(LABS1, 0)})
        await settle(lambda: ("process", [(0, 5), (0, 6), (1, 0)]) in service.calls)
        assert commits(consumer) == []  # still applying
        service.gate.set()
        await settle(lambda: commits(consumer))
        assert service.inputs.lag() == {LABS0: 93, LABS1: 99}
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert consumer.log == [("commit", {LABS0: 7, LABS1: 1}), ("stop",)]
    # the assignment's state first (the tables read to their ends), then the batch; no
    # more records ready: its checkpoint at once, before the commit (the log was empty)
    assert service.calls[0] == ("revoked", 0) and service.calls[1] == ("assigned", 0)
    assert service.kinds()[2:] == ["process", "checkpoint"]
    assert service.calls[3] == ("checkpoint", 0)
    assert service.inputs.committed == {LABS0: 7, LABS1: 1}


def test_under_a_backlog_batches_share_a_checkpoint_until_enough_events():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer, checkpoint_events=5)
        for n in range(4):  # ready before the assignment: a backlog
            await consumer.batches.put({LABS0: records(LABS0, 2 * n, 2 * n + 1)})
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await settle(lambda: len(commits(consumer)) == 2)
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    # 6 records reach the 5: one checkpoint for three batches; the fourth batch is the last
    # ready, so its checkpoint comes when nothing more is
    assert commits(consumer) == [{LABS0: 6}, {LABS0: 8}]
    assert service.kinds()[2:] == [
        "process",
        "process",
        "process",
        "checkpoint",
        "process",
        "checkpoint",
    ]


def test_a_failed_batch_reads_again_everything_since_the_last_commit():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer, checkpoint_events=100)
        await consumer.batches.put({LABS0: records(LABS0, 3, 4)})
        await consumer.batches.put({LABS0: records(LABS0, 5), LABS1: records(LABS1, 8)})
        await service.inputs.on_start()
        original = service.apply

        async def second_fails(batch):
            await original(batch)
            if len([k for k in service.kinds() if k == "process"]) == 2:
                raise ConnectionError("broker away")

        service.inputs.sink = _Sink(second_fails, service)
        await consumer.assign(LABS0, LABS1)
        await settle(lambda: any(entry[0] == "seek" for entry in consumer.log))
        # what the consumer gives after the seeks back: the same records
        await consumer.batches.put({LABS0: records(LABS0, 3, 4, 5), LABS1: records(LABS1, 8)})
        await settle(lambda: commits(consumer))
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    seeks = {entry[1]: entry[2] for entry in consumer.log if entry[0] == "seek"}
    assert seeks == {LABS0: 3, LABS1: 8}  # the first batch's start too: it was not committed
    assert commits(consumer) == [{LABS0: 6, LABS1: 9}]  # once, after the third batch
    assert service.inputs.failed_batches == 1
    assert service.kinds()[2:] == ["process", "process", "discard", "process", "checkpoint"]


class _Sink:
    """`service` as the sink, with another `apply`."""

    def __init__(self, apply, service: Service) -> None:
        self.apply, self.checkpoint, self.discard = apply, service.checkpoint, service.discard


def test_a_failed_checkpoint_is_not_committed_and_its_batches_are_read_again():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer({LABS0: 3})
        service = Service(consumer, fail_checkpoints=1)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await consumer.batches.put({LABS0: records(LABS0, 3, 4)})
        await settle(lambda: any(entry[0] == "seek" for entry in consumer.log))
        await consumer.batches.put({LABS0: records(LABS0, 3, 4)})
        await settle(lambda: commits(consumer))
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert [e for e in consumer.log if e[0] == "seek"] == [("seek", LABS0, 3)]
    assert commits(consumer) == [{LABS0: 5}]
    assert service.kinds()[2:] == ["process", "checkpoint", "discard", "process", "checkpoint"]


def test_a_revocation_waits_for_the_batch_in_hand_and_takes_its_checkpoint_first():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        service.gate = asyncio.Event()
        await consumer.batches.put({LABS0: records(LABS0, 0, 1, 2)})
        await settle(lambda: "process" in service.kinds())
        rebalance = asyncio.ensure_future(consumer.assign(LABS1))
        await asyncio.sleep(0.05)
        assert not rebalance.done()  # the revocation waits for the batch in hand
        assert service.kinds().count("revoked") == 1  # the first join's
        service.gate.set()
        await rebalance
        await consumer.batches.put({LABS1: records(LABS1, 4)})
        await settle(lambda: len(commits(consumer)) == 2)
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert commits(consumer) == [{LABS0: 3}, {LABS1: 5}]
    # a batch fetched without a wait takes no checkpoint of its own: the revocation takes
    # it, and commits, before the partition goes (the log held the commit then); the next
    # assignment's state before the next batch
    assert service.kinds()[2:] == [
        "process", "checkpoint", "revoked", "assigned", "process", "checkpoint"
    ]  # fmt: skip
    assert service.calls[4] == ("revoked", 1)


def test_an_idle_consumer_gathers_a_few_more_records_before_the_batch():
    async def scenario() -> Service:
        consumer = Consumer()
        service = Service(consumer, within=0.05)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await asyncio.sleep(0.05)
        await consumer.batches.put({LABS0: records(LABS0, 0)})
        await asyncio.sleep(0.01)
        await consumer.batches.put({LABS0: records(LABS0, 1, 2)})
        await settle(lambda: commits(consumer))
        await service.inputs.on_stop()
        return service

    service = asyncio.run(scenario())
    assert [call for call in service.calls if call[0] == "process"] == [
        ("process", [(0, 0), (0, 1), (0, 2)])
    ]


def test_stopping_takes_the_checkpoint_of_what_was_applied():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer)
        await consumer.batches.put({LABS0: records(LABS0, 0, 1)})
        await consumer.batches.put({LABS0: records(LABS0, 2)})
        await service.inputs.on_start()
        service.gate = asyncio.Event()
        await consumer.assign(LABS0)
        await settle(lambda: "process" in service.kinds())
        stopping = asyncio.ensure_future(service.inputs.on_stop())
        await asyncio.sleep(0.02)
        service.gate.set()
        await stopping
        return service, consumer

    _service, consumer = asyncio.run(scenario())
    assert consumer.log == [("commit", {LABS0: 2}), ("stop",)]


def test_nothing_is_applied_before_an_assignment_is_ready():
    async def scenario() -> Service:
        consumer = Consumer()
        service = Service(consumer)
        await service.inputs.on_start()
        await asyncio.sleep(0.05)
        assert not service.inputs.ready and service.calls == []
        await consumer.assign(LABS0)
        await settle(lambda: service.inputs.ready)
        await service.inputs.on_stop()
        return service

    service = asyncio.run(scenario())
    assert service.inputs.committed == {LABS0: 0}  # nothing committed: the first offset
    assert "input ready True" in service.inputs.describe()


def test_a_fetch_that_raises_leaves_the_input_path_running():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer)
        fetch, failures = consumer.getmany, [ConnectionError("broker away")]

        async def getmany(timeout_ms: int, max_records: int) -> dict:
            if failures:
                raise failures.pop()
            return await fetch(timeout_ms, max_records)

        consumer.getmany = getmany
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await consumer.batches.put({LABS0: records(LABS0, 0)})
        await settle(lambda: commits(consumer))
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert commits(consumer) == [{LABS0: 1}]
    assert service.kinds()[2:] == ["process", "checkpoint"]


def test_behind_the_high_watermark_an_empty_fetch_waits_for_the_next_one():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        consumer.high = {LABS0: 4}  # four records on the broker, fetched in two batches
        service = Service(consumer)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await consumer.batches.put({LABS0: records(LABS0, 0, 1)})
        await settle(lambda: "process" in service.kinds())
        await asyncio.sleep(0.01)  # the next fetch lands within the wait: no checkpoint yet
        await consumer.batches.put({LABS0: records(LABS0, 2, 3)})
        await settle(lambda: commits(consumer))
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert commits(consumer) == [{LABS0: 4}]  # one checkpoint for both batches
    assert service.kinds()[2:] == ["process", "process", "checkpoint"]


def test_a_rebalance_that_begins_while_records_arrive_completes():
    # aiokafka's getmany waits for the new assignment from the start of a rebalance, and the
    # assignment waits for the revocation: a fetch under the revocation's lock never ended
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer()
        service = Service(consumer)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await settle(lambda: service.inputs.ready)
        rebalance = asyncio.ensure_future(consumer.assign(LABS0, LABS1))
        await consumer.batches.put({LABS1: records(LABS1, 0, 1)})  # the new assignment's
        await asyncio.wait_for(rebalance, 1.0)
        await settle(lambda: commits(consumer))
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert commits(consumer) == [{LABS1: 2}]
    # each assignment's state before a batch of it
    assert service.kinds()[-4:] == ["revoked", "assigned", "process", "checkpoint"]


def test_records_fetched_before_a_rebalance_are_read_again_from_the_commit():
    async def scenario() -> tuple[Service, Consumer]:
        consumer = Consumer({LABS0: 3})
        service = Service(consumer, within=0.05)
        await service.inputs.on_start()
        await consumer.assign(LABS0)
        await settle(lambda: service.inputs.ready)
        await consumer.batches.put({LABS0: records(LABS0, 3, 4)})
        await asyncio.sleep(0.01)  # fetched; the consumer gathers a few more meanwhile
        await consumer.assign(LABS0)  # the partition starts again at its commit, 3
        await settle(lambda: service.inputs.ready and consumer.batches.empty())
        assert "process" not in service.kinds()  # the batch from before was dropped
        await consumer.batches.put({LABS0: records(LABS0, 3, 4)})
        await settle(lambda: commits(consumer))
        await service.inputs.on_stop()
        return service, consumer

    service, consumer = asyncio.run(scenario())
    assert commits(consumer) == [{LABS0: 5}]
    assert [c for c in service.calls if c[0] == "process"] == [("process", [(0, 3), (0, 4)])]
