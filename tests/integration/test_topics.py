"""The worker's topics exist at start-up, and the alerts and dead-letter topics can take
every alert and dead letter on the partition of its cause."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient

from cartwatch.streams.devtools.broker import EmbeddedBroker
from cartwatch.streams.kafka.topics import TopicLayoutError, all_topics, ensure_topics
from cartwatch.streams.worker.settings import Settings
from tests.integration.conftest import CreateTopics

pytestmark = pytest.mark.integration


def settings_for(broker: EmbeddedBroker) -> Settings:
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"topics-{uuid.uuid4().hex[:8]}",
        topic_partitions=4,
    )


def partition_counts(broker: EmbeddedBroker, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    finally:
        admin.close()


def test_missing_topics_are_created_with_the_configured_partitions(broker: EmbeddedBroker):
    settings = settings_for(broker)
    ensure_topics(settings, create=True)
    ensure_topics(settings, create=True)  # idempotent
    names = all_topics(settings)
    assert partition_counts(broker, names) == {name: 4 for name in names}


def test_an_alerts_topic_narrower_than_the_inputs_stops_the_start_with_the_fix(
    broker: EmbeddedBroker, make_topics: CreateTopics
):
    settings = settings_for(broker)
    make_topics(settings.alerts_topic, partitions=1)
    with pytest.raises(TopicLayoutError, match=f"topic {settings.alerts_topic} has 1 partitions"):
        ensure_topics(settings, create=True)


def test_a_dead_letter_topic_as_wide_as_the_inputs_passes(
    broker: EmbeddedBroker, make_topics: CreateTopics
):
    settings = settings_for(broker)
    make_topics(settings.dead_letter_topic, partitions=6)  # wider is fine
    ensure_topics(settings, create=True)
    assert partition_counts(broker, [settings.dead_letter_topic]) == {settings.dead_letter_topic: 6}


def test_a_worker_on_a_production_cluster_never_creates_a_missing_topic(broker: EmbeddedBroker):
    settings = settings_for(broker)
    with pytest.raises(TopicLayoutError, match=f"topic {settings.alerts_topic} does not exist"):
        ensure_topics(settings, create=False)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert not set(admin.list_topics()) & set(all_topics(settings))
    finally:
        admin.close()


def test_the_worker_command_stops_with_the_fix_and_exit_code_2(
    broker: EmbeddedBroker, make_topics: CreateTopics, tmp_path: Path
):
    settings = settings_for(broker)
    make_topics(settings.dead_letter_topic, partitions=2)
    env = os.environ | {
        "CARTWATCH_KAFKA_BOOTSTRAP": broker.bootstrap,
        "CARTWATCH_TOPIC_PREFIX": settings.topic_prefix,
        "CARTWATCH_TOPIC_PARTITIONS": "4",
        "CARTWATCH_EMBEDDED_BROKER": "true",
        "CARTWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'cartwatch.db'}",
        "CARTWATCH_DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "cartwatch.streams.cli.main", "worker"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"topic {settings.dead_letter_topic} has 2 partitions" in done.stderr
