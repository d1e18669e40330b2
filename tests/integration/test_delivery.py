"""Alert delivery against real parts: PostgreSQL, an HTTP receiver that verifies every
delivery with the Standard Webhooks library, an aiosmtpd mail server, and the API's
acknowledgement route.

Alerts are stored as the worker stores them (`write_batch`); dispatchers deliver them
from the database. Intervals and backoff are short so the whole module takes seconds.
Long (over 400 lines) for a reason: the webhook, SMTP and acknowledgement cases share
one set of real receivers and one database per module.
"""

from __future__ import annotations

import asyncio
import base64
import email
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import Engine, delete
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cartwatch.alerts.model import AlertRaised, alert_id
from cartwatch.alerts.sinks.base import DeliveryFailed
from cartwatch.alerts.sinks.routing import Route, Routing
from cartwatch.alerts.sinks.smtp import SmtpSink
from cartwatch.alerts.sinks.webhook import WebhookSink
from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, LocalAccounts, ServiceAccount
from cartwatch.streams.storage.audit import ALERT_ACKNOWLEDGED, list_audit
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.outbox import list_deliveries
from cartwatch.streams.storage.schema import alert_deliveries, alerts
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.storage.users import add_user
from cartwatch.streams.worker.delivery import AlertDispatcher, DeliveryService
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.settings import Settings
from tests.integration.test_storage_support import free_port, postgres_database, trial

pytestmark = pytest.mark.integration

SECRET = "whsec_" + base64.b64encode(b"the receiver's shared key, 32 B").decode()
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
    """A real HTTP receiver: verifies each delivery as the Standard Webhooks library does
    (signature over id, timestamp and body; timestamp within 5 minutes), keeps what it
    accepts and, for every request, what arrived and why it was refused."""

    def __init__(self, port: int | None = None, delay_s: float = 0.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self.accepted: list[dict[str, Any]] = []
        self.arrived_at: list[float] = []
        self.requests: list[tuple[bytes, dict[str, str]]] = []
        self.refusals: list[str] = []
        self._delay_s = delay_s
        self._runner: web.AppRunner | None = None

    @property
    def refused(self) -> int:
        return len(self.refusals)

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append((body, headers))
        try:
            alert = Webhook(SECRET).verify(body, headers)
        except WebhookVerificationError as exc:
            self.refusals.append(str(exc))
            return web.Response(status=401)
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


def webhook(receiver: SigningReceiver, secret: str = SECRET, timeout_s: float = 2.0, **kwargs):
    return WebhookSink(
        receiver.url, SecretStr(secret), timeout_s=timeout_s, desk_url=DESK, **kwargs
    )


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
        sink = webhook(receiver, secret="whsec_" + base64.b64encode(bytes(32)).decode())
        dispatcher = AlertDispatcher(engine, Routing([Route(sink, ALL)]), **FAST)
        await dispatcher.start()
        await asyncio.sleep(1.2)
        await dispatcher.stop()
        await receiver.stop()
        return receiver

    receiver = asyncio.run(scenario())
    (row,) = list_deliveries(engine, only)
    assert receiver.accepted == [] and receiver.refused == row["attempts"] >= 2
    assert set(receiver.refusals) == {"No matching signature found"}
    assert (row["status"], row["last_error"]) == ("pending", "HTTP 401")
    # Every retry of the one notification carries the same webhook-id, a receiver's
    # idempotency key.
    assert len({headers["webhook-id"] for _, headers in receiver.requests}) == 1


def test_a_replayed_delivery_older_than_five_minutes_or_a_changed_body_is_refused() -> None:
    alert = {**raised(trial(), "P1", "critical").model_dump(mode="json"), "notification": 0}
    sent = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type")
    sent += ("x-cartwatch-alert-id",)

    async def scenario() -> tuple[list[str], list[int]]:
        receiver = await SigningReceiver().start()
        sink = webhook(receiver)
        await sink.deliver(alert)  # accepted: signed just now
        body, headers = receiver.requests[-1]
        # A delivery captured six minutes ago (the verifier's tolerance is five) ...
        six_minutes_ago = webhook(receiver, clock=lambda: datetime.now(UTC) - timedelta(minutes=6))
        with pytest.raises(DeliveryFailed, match="HTTP 401"):
            await six_minutes_ago.deliver(alert)
        old_body, old_headers = receiver.requests[-1]
        now = str(int(time.time()))
        changed = body.replace(b'"level":3', b'"level":1')
        assert changed != body
        replays = [
            (old_body, old_headers),  # ... replayed byte for byte
            (old_body, old_headers | {"webhook-timestamp": now}),  # with a fresh timestamp
            (changed, headers),  # a fresh one with its body changed
            (body, headers),  # the fresh one as it came: still valid (webhook-id dedupes it)
        ]
        statuses = []
        async with aiohttp.ClientSession() as client:
            for replayed_body, replayed_headers in replays:
                kept = {name: replayed_headers[name] for name in sent}
                async with client.post(receiver.url, data=replayed_body, headers=kept) as answer:
                    statuses.append(answer.status)
        for used in (sink, six_minutes_ago):
            await used.close()
        await receiver.stop()
        return receiver.refusals, statuses

    refusals, statuses = asyncio.run(scenario())
    assert statuses == [401, 401, 401, 204]
    assert refusals == [
        "Message timestamp too old",  # the sink's own late attempt
        "Message timestamp too old",
        "No matching signature found",
        "No matching signature found",
    ]


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
    service_token = "api-token"  # the service account: read-only
    physician_token = add_user(engine, "dr.lee", ["physician"], actor="test")

    async def scenario() -> tuple[SigningReceiver, dict[str, Any]]:
        receiver = await SigningReceiver().start()
        mail = SmtpSink("127.0.0.1", smtp_port, "cartwatch@example.org", ["oncall@example.org"])
        routing = Routing([Route(webhook(receiver), ALL), Route(mail, frozenset({"critical"}))])
        dispatcher = AlertDispatcher(engine, routing, renotify_after_s=1.0, **FAST)
        identity = Authenticator(
            service=ServiceAccount(SecretStr(service_token)), local=LocalAccounts(engine)
        )
        app = build_api(View(), Metrics(CollectorRegistry()), identity, engine)
        answers: dict[str, Any] = {}
        async with TestClient(TestServer(app)) as client:
            auth = {"Authorization": f"Bearer {physician_token}"}
            await dispatcher.start()
            await eventually(lambda: len(receiver.ids()) == 2)
            ack = await client.post(
                f"/alerts/{acked}/ack",
                json={"by": "someone else", "note": "seen; tocilizumab given"},
                headers=auth,
            )
            answers["ack"] = (ack.status, await ack.json())
            again = await client.post(f"/alerts/{acked}/ack", json={"by": "x"}, headers=auth)
            answers["again"] = (again.status, (await again.json())["acknowledged_by"])
            unknown = await client.post("/alerts/T:P:nope:1/ack", json={}, headers=auth)
            not_json = await client.post(f"/alerts/{open_alert}/ack", data="{", headers=auth)
            no_token = await client.post(f"/alerts/{open_alert}/ack", json={})
            viewer = {"Authorization": f"Bearer {service_token}"}
            read_only = await client.post(f"/alerts/{open_alert}/ack", json={}, headers=viewer)
            # PostgreSQL stores no NUL in text: a clear answer, not a 500
            nul_id = await client.post("/alerts/x%00y/ack", json={}, headers=auth)
            nul_note = await client.post(
                f"/alerts/{open_alert}/ack", json={"note": "x\x00"}, headers=auth
            )
            answers["errors"] = [unknown, not_json, no_token, read_only, nul_id, nul_note]
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
        "dr.lee",  # the signed-in account, not the body's "by"
        "seen; tocilizumab given",
    )
    assert answers["again"] == (409, "dr.lee")  # the first acknowledgement stands
    assert answers["errors"] == [
        (status, "application/json") for status in (404, 400, 401, 403, 404, 400)
    ]
    (entry,) = list_audit(engine, action=ALERT_ACKNOWLEDGED, subject=f"alert:{acked}")
    assert entry["actor"] == "dr.lee"
    assert entry["details"]["note"] == "seen; tocilizumab given"
    assert entry["details"]["alert"]["rule"] == "icans_grade"
    # The open alert was sent again once per period; the acknowledged one never.
    times = receiver.times_of(open_alert)
    assert [a["notification"] for a in receiver.accepted if a["alert_id"] == open_alert] == [
        0,
        1,
        2,
    ]
    assert all(later - earlier >= 0.95 for earlier, later in pairwise(times))
    # Each re-notification is a new delivery to the receiver: a webhook-id of its own.
    reminded = [
        h["webhook-id"] for b, h in receiver.requests if json.loads(b)["alert_id"] == open_alert
    ]
    assert len(reminded) == len(set(reminded)) == 3
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
            response = await client.post("/alerts/a/ack", json={})
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
