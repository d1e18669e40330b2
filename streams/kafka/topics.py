"""Create cartwatch's topics (idempotent), with kafka-python's admin client."""

from __future__ import annotations

import contextlib

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from cartwatch.models.errors import CartwatchError
from cartwatch.streams.kafka.security import kafka_python_options
from cartwatch.streams.worker.settings import Settings


class TopicLayoutError(CartwatchError, RuntimeError):
    """The topics on the broker cannot carry cartwatch's partitioning."""


def all_topics(settings: Settings) -> list[str]:
    """Inputs, alerts and dead letters."""
    return [*settings.input_topics, settings.alerts_topic, settings.dead_letter_topic]


def _admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **kafka_python_options(settings)
    )


def create_topics(settings: Settings, replication: int = 1) -> None:
    """Create every topic with `settings.topic_partitions` partitions; existing ones are kept."""
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(name, settings.topic_partitions, replication)
            for name in all_topics(settings)
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
    finally:
        admin.close()


def ensure_topics(settings: Settings, create: bool) -> None:
    """Check, at a worker's start, that the alerts and dead-letter topics exist with at least
    as many partitions as every input topic; with `create` (the embedded broker), create the
    missing topics first.

    The worker sends each alert and dead letter to the partition of the message that caused
    it (README, "Partitioning"); with fewer partitions the send would fail on the first such
    message instead of here, with the fix in the message. On a production cluster the topics
    are created by deploy/kafka/create-topics.sh, with the replication and retention a safety
    record needs, so a worker never creates them there.
    """
    if create:
        create_topics(settings)
    counts = partition_counts(settings)
    widest = max(settings.input_topics, key=lambda name: counts.get(name, 0))
    for name in (settings.alerts_topic, settings.dead_letter_topic):
        if name not in counts:
            raise TopicLayoutError(
                f"topic {name} does not exist: create the topics first "
                "(deploy/kafka/create-topics.sh)"
            )
        if counts[name] < counts.get(widest, 0):
            raise TopicLayoutError(
                f"topic {name} has {counts[name]} partitions, fewer than {widest} "
                f"({counts[widest]}): every cartwatch topic needs the same partition count "
                "(deploy/kafka/create-topics.sh, CARTWATCH_TOPIC_PARTITIONS)"
            )


def partition_counts(settings: Settings) -> dict[str, int]:
    """Partitions of each of cartwatch's topics that exists (no entry for a missing one)."""
    admin = _admin(settings)
    try:
        existing = set(admin.list_topics()) & set(all_topics(settings))
        described = admin.describe_topics(sorted(existing)) if existing else []
    finally:
        admin.close()
    # kafka-python 3 names the topic "name", 2.0 "topic"
    return {t.get("name") or t["topic"]: len(t["partitions"]) for t in described}
