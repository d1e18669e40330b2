"""Create cartwatch's topics (idempotent), with kafka-python's admin client."""

from __future__ import annotations

import contextlib

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams.kafka_security import kafka_python_options
from streams.settings import Settings


def all_topics(settings: Settings) -> list[str]:
    """Inputs, alerts and dead letters."""
    return [*settings.input_topics, settings.alerts_topic, settings.dead_letter_topic]


def create_topics(settings: Settings, replication: int = 1) -> None:
    """Create every topic with `settings.topic_partitions` partitions; existing ones are kept."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, **kafka_python_options(settings)
    )
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
