"""Alert delivery against real parts: PostgreSQL, an HTTP receiver that checks the HMAC,
an aiosmtpd mail server, and the API's acknowledgement route.

Alerts are stored as the worker stores them (`write_batch`); dispatchers deliver them
from the database. Intervals and backoff are short so the whole module takes seconds.
Long (over 400 lines) for a reason: the webhook, SMTP and acknowledgement cases share
one set of real receivers and one database per module.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import Message
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import Engine, delete

from cartwatch.alerts.model import AlertRaised, alert_id
from cartwatch.alerts.sinks.routing import Route, Routing
from cartwatch.alerts.sinks.smtp import SmtpSink
from cartwatch.alerts.sinks.webhook import WebhookSink
from cartwatch.streams.http.api import build_api
from cartwatch.streams.storage.audit import ALERT_ACKNOWLEDGED, list_audit
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.outbox import list_deliveries
from cartwatch.streams.storage.schema import alert_deliveries, alerts
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.worker.delivery import AlertDispatcher, DeliveryService
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.settings import Settings
from tests.integration.test_storage_support import free_port, postgres_database, trial

pytestmark = pytest.mark.integration

SECRET = "receiver-shared-secret"
ALL = frozenset({"info", "warning", "critical"})
FAST = {"interval_s": 0.1, "first_backoff_s": 0.2, "max_backoff_s": 1.0}
DESK = "https://cartwatch.example.org"  # CARTWATCH_DESK_URL: each alert links its page


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The module's database with no alerts in it (the audit log is append-only: kept)."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(delete(alert_deliveries))
        conn.execute(delete(alerts))
    yield engine
    engine.dispose()


def raised(trial_id: str, patient: str | None, severity: str, level: int = 3) -> AlertRaised:
    rule = {"info": "modified_easix", "warning": "crs_grade", "critical": "icans_grade"}
    return AlertRaised(
        alert_id=alert_id(trial_id, patient, rule[severity], level),
        rule=rule[severity],
        severity=severity,  # type: ignore[arg-type]
        trial_id=trial_id,
        patient_id=patient,
        level=level,
        value=level,
        threshold=1,
        triggered_at="2025-02-07T14:00:00+01:00",
        detected_at="2025-02-07T14:00:02+01:00",
        source_event_id=f"{patient}-ae-{level}",
        message=f"{patient} reached {rule[severity]} {level}.",
    )


def store(engine: Engine, *items: AlertRaised) -> list[str]:
    """Store alerts as the worker does; returns their ids."""
    with engine.begin() as conn:
        write_batch(conn, items)
    return [a.alert_id for a in items]


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.05)


class SigningReceiver:
    """A real HTTP receiver: checks the HMAC-SHA256 of the body, keeps what it accepts."""

    def __init__(self, port: int | None = None, delay_s: float = 0.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.accepted: list[dict[str, Any]] = []
        self.arrived_at: list[float] = []
        self.refused = 0
        self._delay_s = delay_s
        self._runner: web.AppRunner | None = None

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Cartwatch-Signature", "")
        if not hmac.compare_digest(given, expected):
            self.refused += 1
            return web.Response(status=401)
        alert = json.loads(body)
        assert request.headers["X-Cartwatch-Alert-Id"] == alert["alert_id"]
        await asyncio.sleep(self._delay_s)
        self.accepted.append(alert)
        self.arrived_at.append(time.monotonic())
        return web.Response(status=204)

    def ids(self, notification: int = 0) -> Counter[str]:
        return Counter(a["alert_id"] for a in self.accepted if a["notification"] == notification)

    def times_of(self, alert_id: str) -> list[float]:
        pairs = zip(self.accepted, self.arrived_at, strict=True)
        return [at for alert, at in pairs if alert["alert_id"] == alert_id]

    async def start(self) -> SigningReceiver:
        app = web.Application()
        app.router.add_post("/alerts", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Mailbox:
    """An aiosmtpd handler keeping each message it is sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def ids(self) -> Counter[str]:
        return Counter(m["X-Cartwatch-Alert-Id"] for m in self.messages)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def webhook(receiver: SigningReceiver, secret: str = SECRET, timeout_s: float = 2.0):
    return WebhookSink(receiver.url, SecretStr(secret), timeout_s=timeout_s, desk_url=DESK)


def test_each_alert_reaches_the_webhook_once_with_a_valid_signature(engine: Engine) -> None:
    t = trial()
    ids = store(
        engine,
        raised(t, "P1", "info", 1),
        raised(t, "P2", "warning", 2),
        raised(t, "P3", "critical"),
        raised(t, None, "critical", 1),
    )

    async def scenario() -> SigningReceiver:
        receiver = await SigningReceiver().start()
        dispatcher = AlertDispatcher(engine, Routing([Route(webhook(receiver), ALL)]), **FAST)
        service = DeliveryService(dispatcher)  # as the worker runs it
        await service.start()
        await eventually(lambda: len(receiver.accepted) == len(ids))
        await asyncio.sleep(1.0)  # ten more polls: nothing is sent twice
        await service.stop()
        await receiver.stop()
        return receiver

    receiver = asyncio.run(scenario())
    assert receiver.ids() == Counter(ids) and receiver.refused == 0
    first = next(a for a in receiver.accepted if a["alert_id"] == ids[2])
    assert first == {
        "alert_id": ids[2],
        "rule": "icans_grade",
        "severity": "critical",
        "trial_id": t,
        "patient_id": "P3",
        "level": 3,
        "value": 3.0,
        "threshold": 1.0,
        "triggered_at": "2025-02-07T13:00:00+00:00",
        "detected_at": "2025-02-07T13:00:02+00:00",
        "source_event_id": "P3-ae-3",
        "message": "P3 reached icans_grade 3.",
        "notification": 0,
        "desk_url": f"{DESK}/desk/trials/{t}/patients/P3",
    }
    trial_level = next(a for a in receiver.accepted if a["alert_id"] == ids[3])
    assert trial_level["desk_url"] == f"{DESK}/desk/trials/{t}"
    rows = list_deliveries(engine)
    assert {(r["status"], r["attempts"]) for r in rows} == {("delivered", 1)}


def test_a_receiver_that_refuses_the_signature_gets_retries_not_a_delivery(
    engine: Engine,
) -> None:
    (only,) = store(engine, raised(trial(), "P1", "critical"))

    async def scenario() -> SigningReceiver:
        receiver = await SigningReceiver().start()
        sink = webhook(receiver, secret="not the receiver's secret")
        dispatcher = AlertDispatcher(engine, Routing([Route(sink, ALL)]), **FAST)
        await dispatcher.start()
        await asyncio.sleep(1.2)
        await dispatcher.stop()
        await receiver.stop()
        return receiver

    receiver = asyncio.run(scenario())
    (row,) = list_deliveries(engine, only)
    assert receiver.accepted == [] and receiver.refused == row["attempts"] >= 2
    assert (row["status"], row["last_error"]) == ("pending", "HTTP 401")


def test_alerts_raised_while_the_receiver_is_down_arrive_once_after_a_restart(
    engine: Engine,
) -> None:
    t = trial()
    before = store(engine, *(raised(t, f"P{i}", "critical") for i in range(4)))
    port = free_port()  # nothing listens here until the receiver comes back

    async def scenario() -> tuple[SigningReceiver, list[dict]]:
        receiver = SigningReceiver(port)
        first = AlertDispatcher(engine, Routing([Route(webhook(receiver), ALL)]), **FAST)
        await first.start()
        await asyncio.sleep(1.5)
        await first.stop()  # the worker stops ...
        while_down = list_deliveries(engine)
        # ... alerts are raised meanwhile, and a new worker process starts.
        store(engine, *(raised(t, f"Q{i}", "warning", 2) for i in range(3)))
        restarted_engine = make_engine(engine.url)
        second = AlertDispatcher(restarted_engine, Routing([Route(webhook(receiver), ALL)]), **FAST)
        await second.start()
        await asyncio.sleep(0.5)
        await receiver.start()  # the receiver comes back
        await eventually(lambda: len(receiver.accepted) >= 7)
        await asyncio.sleep(1.0)
        await second.stop()
        await receiver.stop()
        restarted_engine.dispose()
        return receiver, while_down

    receiver, while_down = asyncio.run(scenario())
    assert {r["alert_id"] for r in while_down} == set(before)
    for row in while_down:
        # Backed off: 0.2 s, 0.4 s, 0.8 s ... not an attempt every 0.1 s poll.
        assert row["status"] == "pending" and 2 <= row["attempts"] <= 4
        assert row["last_error"] == "ClientConnectorError"
    assert len(receiver.accepted) == 7 and set(receiver.ids().values()) == {1}
    assert receiver.refused == 0
    assert {r["status"] for r in list_deliveries(engine)} == {"delivered"}


def test_only_critical_alerts_are_emailed_and_a_hanging_webhook_holds_up_nothing(
    engine: Engine, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    t = trial()
    critical = store(engine, raised(t, "P1", "critical"), raised(t, None, "critical", 1))
    store(engine, raised(t, "P2", "warning", 2), raised(t, "P3", "info", 1))

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # takes the request, never answers
        await asyncio.sleep(30)

    async def scenario() -> tuple[float, float]:
        hanging = await asyncio.start_server(hang, "127.0.0.1", 0)
        hook_port = hanging.sockets[0].getsockname()[1]
        settings = Settings(
            webhook_url=f"http://127.0.0.1:{hook_port}/alerts",
            webhook_secret=SECRET,
            webhook_timeout_s=3.0,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_from="cartwatch@example.org",
            smtp_to="oncall@example.org",
            delivery_interval_s=0.1,
            desk_url=DESK + "/",
        )
        dispatcher = AlertDispatcher.from_settings(engine, settings)
        started = time.monotonic()
        await dispatcher.start()
        worst_tick, emailed_after = 0.0, float("inf")
        while time.monotonic() - started < 2.0:  # the webhook hangs for its 3 s timeout
            tick = time.monotonic()
            await asyncio.sleep(0.01)
            worst_tick = max(worst_tick, time.monotonic() - tick)
            if len(box.messages) == 2:
                emailed_after = min(emailed_after, time.monotonic() - started)
        await dispatcher.stop(timeout=0.5)
        hanging.close()
        return emailed_after, worst_tick

    emailed_after, worst_tick = asyncio.run(scenario())
    assert box.ids() == Counter(critical)
    # Mail went out at once, the event loop never stalled, and stopping did not wait.
    assert emailed_after < 1.0 and worst_tick < 0.25
    subjects = sorted(m["Subject"] for m in box.messages)
    assert subjects[0] == f"[cartwatch] CRITICAL icans_grade 1, trial {t}"
    texts = [m.get_payload(decode=True).decode() for m in box.messages]  # quoted-printable
    (to_p1,) = [text for text in texts if "P1 reached icans_grade 3." in text]
    assert f"Open in the safety desk: {DESK}/desk/trials/{t}/patients/P1" in to_p1.splitlines()
    hooked = [r for r in list_deliveries(engine) if r["sink"] == "webhook"]
    assert len(hooked) == 4 and {r["status"] for r in hooked} == {"pending"}


def test_acknowledgement_through_the_api_is_stored_and_stops_renotification(
    engine: Engine, mailbox: tuple[Mailbox, int]
) -> None:
    box, smtp_port = mailbox
    t = trial()
    open_alert, acked = store(engine, raised(t, "P1", "critical"), raised(t, "P2", "critical"))
    token = "api-token"

    async def scenario() -> tuple[SigningReceiver, dict[str, Any]]:
        receiver = await SigningReceiver().start()
        mail = SmtpSink("127.0.0.1", smtp_port, "cartwatch@example.org", ["oncall@example.org"])
        routing = Routing([Route(webhook(receiver), ALL), Route(mail, frozenset({"critical"}))])
        dispatcher = AlertDispatcher(engine, routing, renotify_after_s=1.0, **FAST)
        app = build_api(View(), Metrics(CollectorRegistry()), SecretStr(token), engine)
        answers: dict[str, Any] = {}
        async with TestClient(TestServer(app)) as client:
            auth = {"Authorization": f"Bearer {token}"}
            await dispatcher.start()
            await eventually(lambda: len(receiver.ids()) == 2)
            ack = await client.post(
                f"/alerts/{acked}/ack",
                json={"by": "dr.lee", "note": "seen; tocilizumab given"},
                headers=auth,
            )
            answers["ack"] = (ack.status, await ack.json())
            again = await client.post(f"/alerts/{acked}/ack", json={"by": "x"}, headers=auth)
            answers["again"] = (again.status, (await again.json())["acknowledged_by"])
            unknown = await client.post("/alerts/T:P:nope:1/ack", json={"by": "x"}, headers=auth)
            nobody = await client.post(f"/alerts/{open_alert}/ack", json={}, headers=auth)
            no_token = await client.post(f"/alerts/{open_alert}/ack", json={"by": "x"})
            # PostgreSQL stores no NUL in text: a clear answer, not a 500
            nul_id = await client.post("/alerts/x%00y/ack", json={"by": "x"}, headers=auth)
            nul_by = await client.post(
                f"/alerts/{open_alert}/ack", json={"by": "x\x00"}, headers=auth
            )
            answers["errors"] = [unknown, nobody, no_token, nul_id, nul_by]
            answers["errors"] = [(r.status, r.content_type) for r in answers["errors"]]
            await eventually(lambda: receiver.ids(2)[open_alert] == 1, timeout=6.0)
            await dispatcher.stop()
        await receiver.stop()
        return receiver, answers

    receiver, answers = asyncio.run(scenario())
    status, body = answers["ack"]
    assert status == 200
    assert (body["alert_id"], body["acknowledged_by"], body["ack_note"]) == (
        acked,
        "dr.lee",
        "seen; tocilizumab given",
    )
    assert answers["again"] == (200, "dr.lee")  # the first acknowledgement stands
    assert answers["errors"] == [
        (status, "application/json") for status in (404, 400, 401, 404, 400)
    ]
    (entry,) = list_audit(engine, action=ALERT_ACKNOWLEDGED, subject=f"alert:{acked}")
    assert entry["actor"] == "dr.lee" and entry["details"] == {"note": "seen; tocilizumab given"}
    # The open alert was sent again once per period; the acknowledged one never.
    times = receiver.times_of(open_alert)
    assert [a["notification"] for a in receiver.accepted if a["alert_id"] == open_alert] == [
        0,
        1,
        2,
    ]
    assert all(later - earlier >= 0.95 for earlier, later in pairwise(times))
    assert [a["notification"] for a in receiver.accepted if a["alert_id"] == acked] == [0]
    reminders = [m["Subject"] for m in box.messages if m["X-Cartwatch-Alert-Id"] == open_alert]
    assert any(s.endswith("(reminder 1)") for s in reminders)
    assert box.ids()[acked] == 1


def test_on_sqlite_each_alert_is_delivered_once_and_a_critical_one_renotified(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'cartwatch.db'}"
    upgrade(url)
    engine = make_engine(url)
    t = trial()
    critical, warning = store(engine, raised(t, "P1", "critical"), raised(t, "P2", "warning", 2))

    async def scenario() -> SigningReceiver:
        receiver = await SigningReceiver().start()
        routing = Routing([Route(webhook(receiver), ALL)])
        dispatcher = AlertDispatcher(engine, routing, renotify_after_s=0.5, **FAST)
        await dispatcher.start()
        await eventually(lambda: receiver.ids(1)[critical] == 1)
        await dispatcher.stop()
        await receiver.stop()
        return receiver

    receiver = asyncio.run(scenario())
    engine.dispose()
    assert receiver.ids(0) == Counter([critical, warning])
    assert receiver.ids(1) == Counter([critical])  # warnings are never re-notified


def test_the_ack_route_without_a_database_answers_503() -> None:
    async def scenario() -> int:
        app = build_api(View(), Metrics(CollectorRegistry()), None)
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/alerts/a/ack", json={"by": "x"})
            return response.status

    assert asyncio.run(scenario()) == 503


def test_two_dispatchers_on_one_database_deliver_each_alert_once(engine: Engine) -> None:
    t = trial()

    async def scenario() -> tuple[SigningReceiver, list[AlertDispatcher]]:
        receiver = await SigningReceiver(delay_s=0.02).start()
        engines = [make_engine(engine.url) for _ in range(2)]
        dispatchers = [
            AlertDispatcher(e, Routing([Route(webhook(receiver), ALL)]), batch_size=5, **FAST)
            for e in engines
        ]
        for dispatcher in dispatchers:
            await dispatcher.start()
        store(engine, *(raised(t, f"P{i:02d}", "critical") for i in range(60)))
        await eventually(lambda: len(receiver.accepted) >= 60)
        await asyncio.sleep(1.0)
        for dispatcher in dispatchers:
            await dispatcher.stop()
        await receiver.stop()
        for e in engines:
            e.dispose()
        return receiver, dispatchers

    receiver, dispatchers = asyncio.run(scenario())
    assert len(receiver.accepted) == 60 and set(receiver.ids().values()) == {1}
    assert all(d.delivered > 0 for d in dispatchers)  # both took part
    assert sum(d.delivered for d in dispatchers) == 60
    assert {r["attempts"] for r in list_deliveries(engine)} == {1}


class View:
    """A real StateView with no patients: the ack route needs only the database."""

    def records(self, trial_id: str | None = None) -> list:
        return []

    def record(self, trial_id: str, patient_id: str) -> None:
        return None

    def trial_ids(self) -> list[str]:
        return []

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]:
        return []

    def is_consuming(self) -> bool:
        return True

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict:
        return {}
