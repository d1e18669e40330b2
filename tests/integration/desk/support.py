"""Shared parts of the desk's tests (no tests here): the replayed trial, people who sign
in, the real API application in a test client, and reading the inbox's rows."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TypeVar

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.replay import ReplayResult, replay
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.streams.devtools.replay_view import ReplayView
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.desk.context import DESK
from cartwatch.streams.http.identity import Authenticator, LocalAccounts
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.storage.users import add_user
from cartwatch.streams.worker.metrics import Metrics

# The people who sign in: local accounts (`cartwatch users add`) of the module's database,
# created by the conftest; their tokens, printed once, are kept here.
PEOPLE = {"dr.lee": ["physician"], "monitor.kim": ["viewer"]}
TOKENS: dict[str, dict[str, str]] = {}  # database URL -> name -> token


def add_people(engine: Engine) -> None:
    """The physician and the viewer as local accounts of the database; their tokens kept."""
    TOKENS[str(engine.url)] = {
        name: add_user(engine, name, roles, actor="desk tests") for name, roles in PEOPLE.items()
    }


def token_of(client: TestClient, name: str) -> str:
    """The token of one of PEOPLE in the database of the client's application."""
    return TOKENS[str(client.server.app[DESK].engine.url)][name]


def lee_token(client: TestClient) -> str:
    return token_of(client, "dr.lee")


def kim_token(client: TestClient) -> str:
    return token_of(client, "monitor.kim")


@cache
def simulated() -> ReplayResult:
    """The 94-patient simulated trial (seed 2026) through the processing core."""
    trial = simulate_trial(seed=2026)
    return replay(trial.lines(), trial.data_cut, RuleThresholds())


def store_alerts(
    engine: Engine,
    alerts: Iterable[AlertRaised],
    start: datetime = datetime(2026, 1, 31, tzinfo=UTC),
) -> None:
    """Store alerts as the worker does, each detected one second after the one before from
    `start` (the inbox lists the newest detection first)."""
    stamped = [
        a.model_copy(update={"detected_at": (start + timedelta(seconds=i)).isoformat()})
        for i, a in enumerate(alerts)
    ]
    with engine.begin() as conn:
        write_batch(conn, stamped)


def desk_app(view: ReplayView, engine: Engine | None) -> web.Application:
    """The API's application, as the worker builds it, with the people above signing in."""
    authenticator = Authenticator(local=LocalAccounts(engine)) if engine else Authenticator()
    return build_api(view, Metrics(CollectorRegistry()), authenticator, engine)


def origin(client: TestClient) -> dict[str, str]:
    """The Origin header a browser sends with a form of the desk."""
    return {"Origin": str(client.make_url("/")).rstrip("/")}


async def sign_in(client: TestClient, token: str | None = None) -> None:
    response = await client.post(
        "/desk/sign-in",
        data={"token": token or lee_token(client)},
        headers=origin(client),
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


@dataclass(frozen=True)
class Row:
    alert_id: str
    html: str


_ROW = re.compile(r'<tr class="\w+" data-alert="([^"]*)">(.*?)</tr>', re.S)


def rows_of(section: str) -> list[Row]:
    """The alert rows of a page's HTML, in order (ids as the HTML holds them, escaped)."""
    return [Row(alert_id, html) for alert_id, html in _ROW.findall(section)]


def sections(page: str) -> tuple[str, str]:
    """(open, acknowledged) parts of an inbox page or fragment."""
    open_part, _, acknowledged = page.partition("<h2>Acknowledged")
    return open_part, acknowledged


TRIAL = "CART19-ALL-01"
T = TypeVar("T")


def with_client(engine: Engine | None, scenario: Callable[[TestClient], Awaitable[T]]) -> T:
    """Run `scenario` against the desk over the simulated trial's records."""

    async def run() -> T:
        view = ReplayView(simulated().records)
        async with TestClient(TestServer(desk_app(view, engine))) as client:
            return await scenario(client)

    return asyncio.run(run())


def newest_critical() -> tuple[str, str]:
    """(alert id, patient id) of the last critical patient alert the trial raised."""
    alert = [a for a in simulated().alerts if a.severity == "critical" and a.patient_id][-1]
    return alert.alert_id, alert.patient_id  # type: ignore[return-value]
