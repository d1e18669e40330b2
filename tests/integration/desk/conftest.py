"""The desk's integration fixtures: a PostgreSQL database per module holding the simulated
trial's alerts, none acknowledged at the start of each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete

from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.schema import alert_deliveries, alerts
from tests.integration.desk.support import add_people, simulated, store_alerts
from tests.integration.test_storage_support import postgres_database


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        add_people(engine)
        engine.dispose()
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The module's database holding the simulated trial's alerts, none acknowledged."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(delete(alert_deliveries))
        conn.execute(delete(alerts))
    store_alerts(engine, simulated().alerts)
    yield engine
    engine.dispose()
