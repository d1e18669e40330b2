"""Create cartwatch's topics (idempotent), with kafka-python's admin client."""

from __future__ import annotations

import contextlib

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from models.errors import CartwatchError
from streams.kafka_security import kafka_python_options
from streams.settings import Settings


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


def ensure_topics(settings: Settings) -> None:
    """Create the topics that are missing, then check that the alerts and dead-letter topics
    have at least as many partitions as every input topic.

    The worker sends each alert and dead letter to the partition of the message that caused
    it (README, "Partitioning"); with fewer partitions the send would fail on the first such
    message instead of here, at start-up, with the fix in the message.
    """
    create_topics(settings)
    admin = _admin(settings)
    try:
        described = admin.describe_topics(all_topics(settings))
    finally:
        admin.close()
    counts = {t["name"]: len(t["partitions"]) for t in described}
    widest = max(settings.input_topics, key=lambda name: counts.get(name, 0))
    for name in (settings.alerts_topic, settings.dead_letter_topic):
        if counts.get(name, 0) < counts.get(widest, 0):
            raise TopicLayoutError(
                f"topic {name} has {counts.get(name, 0)} partitions, fewer than {widest} "
                f"({counts[widest]}): every cartwatch topic needs the same partition count "
                "(deploy/kafka/create-topics.sh, CARTWATCH_TOPIC_PARTITIONS)"
            )
