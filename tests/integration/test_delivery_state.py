"""An alert's delivery state, as `list_alerts` and `GET /alerts` show it, is what a real
dispatcher did: real webhook receivers (one down, then up), SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import Engine

from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.sinks.routing import Route, Routing
from cartwatch.alerts.sinks.webhook import WebhookSink
from cartwatch.streams.http.api import build_api
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.operations import list_alerts
from cartwatch.streams.storage.outbox import list_deliveries
from cartwatch.streams.worker.delivery import AlertDispatcher
from cartwatch.streams.worker.metrics import Metrics
from tests.integration.test_delivery import (
    ALL,
    FAST,
    SECRET,
    SigningReceiver,
    eventually,
    raised,
    store,
    webhook,
)
from tests.integration.test_storage_support import database, free_port, trial

pytestmark = pytest.mark.integration

State = dict[str, tuple[str | None, str | None]]  # alert_id -> (delivery_status, delivered_at)


class AlertTableView:
    """A real StateView whose alerts are those given, as the worker's alert table holds them."""

    def __init__(self, alerts: list[AlertRaised]) -> None:
        self.alerts = [a.model_dump() for a in alerts]

    def records(self, trial_id: str | None = None) -> list:
        return []

    def record(self, trial_id: str, patient_id: str) -> None:
        return None

    def trial_ids(self) -> list[str]:
        return []

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]:
        return [a for a in self.alerts if trial_id in (None, a["trial_id"])]

    def is_consuming(self) -> bool:
        return True

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict:
        return {}


def _stored(engine: Engine, trial_id: str) -> State:
    return {
        a["alert_id"]: (a["delivery_status"], a["delivered_at"])
        for a in list_alerts(engine, trial_id=trial_id)
    }


async def _shown(client: TestClient) -> State:
    response = await client.get("/alerts")
    assert response.status == 200
    alerts = (await response.json())["alerts"]
    return {a["alert_id"]: (a["delivery_status"], a["delivered_at"]) for a in alerts}


def _delivered_at(engine: Engine, alert_id: str, sink: str) -> str:
    (row,) = [r for r in list_deliveries(engine, alert_id) if r["sink"] == sink]
    return row["delivered_at"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_alert_is_delivered_once_every_sink_routed_for_it_took_it(
    backend: str, tmp_path: Path
) -> None:
    t = trial()
    alerts = [raised(t, "P1", "warning", 2), raised(t, "P2", "critical")]
    warning, critical = (a.alert_id for a in alerts)
    pager_port = free_port()  # nothing listens there yet: the pager is down

    async def scenario(engine: Engine) -> dict[str, Any]:
        desk = await SigningReceiver().start()
        pager = SigningReceiver(port=pager_port)
        pager_sink = WebhookSink(pager.url, SecretStr(SECRET), timeout_s=2.0, name="pager")
        routing = Routing([Route(webhook(desk), ALL), Route(pager_sink, frozenset({"critical"}))])
        dispatcher = AlertDispatcher(engine, routing, renotify_after_s=3600, **FAST)
        app = build_api(AlertTableView(alerts), Metrics(CollectorRegistry()), None, engine)
        seen: dict[str, Any] = {}
        async with TestClient(TestServer(app)) as client:
            seen["before"] = (_stored(engine, t), await _shown(client))
            await dispatcher.start()
            await eventually(lambda: _stored(engine, t)[critical][0] == "failed")
            await eventually(lambda: _stored(engine, t)[warning][0] == "delivered")
            seen["pager down"] = (_stored(engine, t), await _shown(client))
            seen["desk has"] = sorted(desk.ids())
            await pager.start()
            await eventually(lambda: _stored(engine, t)[critical][0] == "delivered")
            seen["pager up"] = (_stored(engine, t), await _shown(client))
            await dispatcher.stop()
        await desk.stop()
        await pager.stop()
        return seen

    with database(backend, tmp_path) as engine:
        store(engine, *alerts)
        seen = asyncio.run(scenario(engine))
        desk_at = {a: _delivered_at(engine, a, "webhook") for a in (warning, critical)}
        pager_at = _delivered_at(engine, critical, "pager")

    # Before any dispatcher: no delivery made.
    nothing = {warning: ("pending", None), critical: ("pending", None)}
    assert seen["before"] == (nothing, nothing)
    # The desk took both, the pager none: the critical one has not reached every sink.
    assert seen["desk has"] == sorted([warning, critical])
    stored, shown = seen["pager down"]
    assert stored == shown == {warning: ("delivered", desk_at[warning]), critical: ("failed", None)}
    # The pager back: delivered when the last of its sinks took it.
    stored, shown = seen["pager up"]
    assert datetime.fromisoformat(pager_at) > datetime.fromisoformat(desk_at[critical])
    assert (
        stored
        == shown
        == {
            warning: ("delivered", desk_at[warning]),
            critical: ("delivered", pager_at),
        }
    )


def test_alerts_still_show_while_the_database_cannot_be_reached() -> None:
    t = trial()
    alerts = [raised(t, "P1", "critical")]
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")

    async def scenario() -> State:
        app = build_api(AlertTableView(alerts), Metrics(CollectorRegistry()), None, engine)
        async with TestClient(TestServer(app)) as client:
            return await _shown(client)

    try:
        assert asyncio.run(scenario()) == {alerts[0].alert_id: (None, None)}
    finally:
        engine.dispose()
