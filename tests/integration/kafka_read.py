"""Read a whole topic with aiokafka (no consumer group: joins are slow on the embedded broker)."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from kafka import KafkaProducer

MARKER_PREFIX = b"__end-of-read-"


def _send_end_markers(bootstrap: str, topic: str, partitions: list[int]) -> bytes:
    marker = MARKER_PREFIX + str(uuid.uuid4()).encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for partition in partitions:
            producer.send(topic, value=marker, partition=partition)
        producer.flush()
    finally:
        producer.close()
    return marker


def read_topic(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[ConsumerRecord]:
    """Every record of `topic` written before the call.

    The broker's "latest offset" answer is unreliable, so an end marker is appended to each
    partition and the topic is read until every marker is seen (markers, this read's and
    earlier reads', are not returned).
    """

    async def go() -> list[ConsumerRecord]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            await consumer.topics()  # fetches metadata, so the partitions are known
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
            assert partitions, f"topic {topic} has no partitions"
            marker = _send_end_markers(bootstrap, topic, partitions)
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            records: list[ConsumerRecord] = []
            open_partitions = set(partitions)
            async with asyncio.timeout(timeout_s):
                while open_partitions:
                    for tp, rows in (await consumer.getmany(timeout_ms=200)).items():
                        for row in rows:
                            if row.value == marker:
                                open_partitions.discard(tp.partition)
                            elif not (row.value or b"").startswith(MARKER_PREFIX):
                                records.append(row)  # not one of an earlier read's markers
            return records
        finally:
            await consumer.stop()

    return asyncio.run(go())
