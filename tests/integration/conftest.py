"""Integration fixtures: the embedded broker for the whole session, and topic creation."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from cartwatch.streams.devtools.broker import EmbeddedBroker

CreateTopics = Callable[..., list[str]]


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One embedded Tansu broker on a free port, started once and stopped at session end."""
    with EmbeddedBroker() as running:
        yield running


def create_topics(bootstrap: str, *names: str, partitions: int = 1) -> list[str]:
    """Create ``names`` with ``partitions`` partitions each (replication 1) and return them."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        admin.close()
    return list(names)


@pytest.fixture
def make_topics(broker: EmbeddedBroker) -> CreateTopics:
    """Create topics on the session broker: ``make_topics("a", "b", partitions=4)``."""

    def make(*names: str, partitions: int = 1) -> list[str]:
        return create_topics(broker.bootstrap, *names, partitions=partitions)

    return make
