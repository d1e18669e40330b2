"""The embedded broker starts, answers Kafka clients and is recognised as ours."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from cartwatch.streams.devtools.broker import (
    BrokerStartError,
    EmbeddedBroker,
    cluster_id,
    free_port,
    is_embedded_broker,
)
from tests.integration.conftest import CreateTopics

pytestmark = pytest.mark.integration


def test_the_broker_answers_a_metadata_request(broker: EmbeddedBroker) -> None:
    assert broker.running
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert cluster_id(broker.bootstrap) == "cartwatch-embedded"


def test_is_embedded_broker_recognises_our_broker(broker: EmbeddedBroker) -> None:
    assert is_embedded_broker(broker.bootstrap)


def test_is_embedded_broker_is_false_when_nothing_listens() -> None:
    assert not is_embedded_broker(f"127.0.0.1:{free_port()}")


def test_created_topics_have_the_requested_partitions(
    broker: EmbeddedBroker, make_topics: CreateTopics
) -> None:
    (topic,) = make_topics(f"partitions-{uuid.uuid4().hex[:8]}", partitions=4)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(described["partitions"]) == 4


def test_a_message_produced_with_kafka_python_is_consumed_with_aiokafka(
    broker: EmbeddedBroker, make_topics: CreateTopics
) -> None:
    (topic,) = make_topics(f"roundtrip-{uuid.uuid4().hex[:8]}", partitions=2)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send(topic, key=b"P-001", value=b'{"type": "lab"}').get(timeout=10)
    producer.close()

    assert asyncio.run(_consume_one(broker.bootstrap, topic)) == (b"P-001", b'{"type": "lab"}')


async def _consume_one(bootstrap: str, topic: str) -> tuple[bytes | None, bytes | None]:
    # Manual assignment, not a group: Tansu's group joins take seconds.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer.topics()  # refreshes the metadata
        partitions = consumer.partitions_for_topic(topic) or set()
        assert partitions, f"no metadata for {topic}"
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        message = await asyncio.wait_for(consumer.getone(), timeout=10)
        return message.key, message.value
    finally:
        await consumer.stop()


def test_a_stopped_broker_is_no_longer_running() -> None:
    with EmbeddedBroker() as short_lived:
        assert short_lived.running
    assert not short_lived.running
    assert not is_embedded_broker(short_lived.bootstrap)


def test_cartwatch_broker_stops_its_broker_on_sigterm(tmp_path) -> None:
    port = free_port()
    env = os.environ | {"CARTWATCH_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"}
    command = [sys.executable, "-m", "cartwatch.streams.cli.main", "broker"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while cluster_id(f"127.0.0.1:{port}", timeout_s=1.0) != "cartwatch-embedded":
            assert process.poll() is None and time.monotonic() < deadline, "never answered"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        process.kill()
    # the broker process itself is gone, not only the command that started it
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_broker_will_not_start_where_another_listens(broker: EmbeddedBroker) -> None:
    with pytest.raises(BrokerStartError, match="already listens"):
        EmbeddedBroker(broker.port).start()
    env = os.environ | {"CARTWATCH_KAFKA_BOOTSTRAP": broker.bootstrap}
    command = [sys.executable, "-m", "cartwatch.streams.cli.main", "broker"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "already listens" in done.stderr
    assert "Traceback" not in done.stderr
    assert cluster_id(broker.bootstrap) == "cartwatch-embedded"  # the first one is untouched
