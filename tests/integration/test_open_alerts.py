"""The escalation series: open alerts per trial and severity from the alerts table, and the
time to acknowledge, observed when the API stores an acknowledgement (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import Engine

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, ServiceAccount
from cartwatch.streams.storage.operations import acknowledge_alert
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.worker.gauges import GaugeRefresher
from cartwatch.streams.worker.metrics import Metrics
from tests.integration.test_storage_support import alert, database, trial

pytestmark = pytest.mark.integration
TOKEN = "open-alerts-token"
PHYSICIAN = frozenset({"viewer", "physician"})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory) -> Iterator[Engine]:
    with database(request.param, tmp_path_factory.mktemp(request.param)) as engine:
        yield engine


def _open(metrics: Metrics, trial_id: str, severity: str) -> float | None:
    labels = {"trial_id": trial_id, "severity": severity}
    return metrics.registry.get_sample_value("cartwatch_alerts_open", labels)


def _refresh(metrics: Metrics, engine: Engine) -> None:
    gauges = GaugeRefresher(metrics, None, None, dict, lambda: True, engine=engine)  # type: ignore[arg-type]
    asyncio.run(gauges.refresh_open_alerts())


def test_open_alerts_count_what_nobody_acknowledged_and_fall_with_each_acknowledgement(
    engine: Engine,
):
    t = trial()
    critical = [alert(t, f"P{i}", level=3) for i in range(3)]  # grade 3: critical
    warning = alert(t, "P9", level=2)
    with engine.begin() as conn:
        write_batch(conn, [*critical, warning])
    metrics = Metrics(CollectorRegistry())
    _refresh(metrics, engine)
    assert (_open(metrics, t, "critical"), _open(metrics, t, "warning")) == (3, 1)
    assert _open(metrics, t, "info") == 0  # every severity present, at 0
    for n, raised in enumerate(critical, start=1):
        acknowledge_alert(engine, raised.alert_id, actor="dr.lee")
        _refresh(metrics, engine)
        assert _open(metrics, t, "critical") == 3 - n
    assert _open(metrics, t, "warning") == 1


def test_the_api_observes_the_time_to_acknowledge_once_per_alert(engine: Engine):
    t = trial()
    raised = alert(t, "P1", level=3)
    with engine.begin() as conn:
        write_batch(conn, [raised])
    metrics = Metrics(CollectorRegistry())

    class View:
        def is_consuming(self) -> bool:
            return True

    async def scenario() -> list[int]:
        identity = Authenticator(service=ServiceAccount(SecretStr(TOKEN), PHYSICIAN))
        app = build_api(View(), metrics, identity, engine)  # type: ignore[arg-type]
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with TestClient(TestServer(app)) as client:
            path, body = f"/alerts/{raised.alert_id}/ack", {"by": "dr.lee"}
            first = await client.post(path, json=body, headers=auth)
            again = await client.post(path, json=body, headers=auth)
            return [first.status, again.status]

    assert asyncio.run(scenario()) == [200, 409]  # the first stands
    count = metrics.registry.get_sample_value(
        "cartwatch_alert_ack_seconds_count", {"severity": "critical"}
    )
    assert count == 1
    total = metrics.registry.get_sample_value(
        "cartwatch_alert_ack_seconds_sum", {"severity": "critical"}
    )
    assert total is not None and total > 0  # detected in the fixture, acknowledged later
