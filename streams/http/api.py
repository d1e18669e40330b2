"""The worker's HTTP API (CONTRACT 6), as an aiohttp application over a read-only state view."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cartwatch.models.cohort import cohort_reports
from cartwatch.models.data_cut import record_as_of
from cartwatch.models.events import parse_timestamp
from cartwatch.models.patient import PatientRecord
from cartwatch.models.stopping import StoppingConfig
from cartwatch.models.summary import patient_summary
from cartwatch.streams.http.credentials import (
    IDENTITY,
    SAFE_METHODS,
    by_cookie,
    credential_of,
    same_origin,
)
from cartwatch.streams.http.dead_letters import dead_letter_routes
from cartwatch.streams.http.desk import add_desk_routes, is_desk_path
from cartwatch.streams.http.errors import IdentityUnavailable, NotAuthenticated
from cartwatch.streams.http.identity import Authenticator
from cartwatch.streams.http.openapi import openapi_document
from cartwatch.streams.worker.metrics import Metrics

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)
# Open to anyone: liveness, metrics (no patient identifier in them) and the API's own
# description (no patient data; a client reads it before it has a token).
OPEN_PATHS = frozenset({"/healthz", "/metrics", "/openapi.json"})


class StateView(Protocol):
    """What the API reads; the worker and the tests provide it."""

    def records(self, trial_id: str | None = None) -> Iterable[PatientRecord]: ...

    def record(self, trial_id: str, patient_id: str) -> PatientRecord | None: ...

    def trial_ids(self) -> list[str]: ...

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]: ...

    def is_consuming(self) -> bool: ...

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _required_role(request: web.Request) -> str:
    """The role a route needs: data-manager for dead letters, physician to acknowledge,
    viewer for everything else (and for paths no route takes, so they answer 404/405)."""
    route = request.match_info.route.resource
    path = route.canonical if route is not None else ""
    if path == "/dead-letters" or path.startswith("/dead-letters/"):
        return "data-manager"
    if (request.method, path) == ("POST", "/alerts/{alert_id}/ack"):
        return "physician"
    return "viewer"


def _unauthenticated(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=401, headers={"WWW-Authenticate": "Bearer"})


def _identity_middleware(authenticator: Authenticator, public_url: str | None):
    """Sets request[IDENTITY] from the request's bearer token or the desk's session cookie
    (`credential_of`): 401 without one, 403 without the route's role; on the desk's paths
    neither, the desk shows its sign-in and role pages itself. With no identity source
    configured at all, the API is open and the identity None."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[IDENTITY] = None
        if request.path in OPEN_PATHS:
            return await handler(request)
        desk = is_desk_path(request.path)
        try:
            identity = await authenticator.for_credential(credential_of(request))
        except NotAuthenticated as exc:
            if not desk:
                return _unauthenticated(str(exc))
            identity = None  # the desk's pages send the person to its sign-in page
        except IdentityUnavailable as exc:
            return _error(503, str(exc))
        role = _required_role(request)
        if not desk and identity is not None and not identity.may(role):
            return web.json_response(
                {"error": f"this needs the {role} role", "role": role}, status=403
            )
        # A cookie rides along on requests other sites make, a header cannot: a POST with the
        # desk's cookie must come from a page of this server (the desk checks its own forms).
        unsafe = by_cookie(request) and request.method not in SAFE_METHODS
        if unsafe and not desk and not same_origin(request, public_url):
            return _error(403, "cross-origin request refused")
        request[IDENTITY] = identity
        return await handler(request)

    return check


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors aiohttp raises by itself (an unknown path, a method a path does not take) in
    JSON too, as every answer of this API; the desk's pages answer in HTML (desk/errors.py)."""
    if is_desk_path(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        kept = {name: exc.headers[name] for name in ("Allow",) if name in exc.headers}
        return web.json_response({"error": exc.reason.lower()}, status=exc.status, headers=kept)


_UNENCODED_PLUS = re.compile(r"(\d) (\d{2}:\d{2})$")


def _parse_as_of(request: web.Request) -> datetime:
    raw = request.query.get("as_of")
    if raw is None:
        return datetime.now(UTC)
    # A "+" typed into a URL unencoded arrives as a space: "...00:00 01:00" was "+01:00".
    raw = _UNENCODED_PLUS.sub(r"\1+\2", raw)
    try:
        return parse_timestamp(raw)
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"as_of: {exc}"}), content_type="application/json"
        ) from None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); HTTPBadRequest says what is wrong with it."""
    try:
        raw = await request.read()
        body: Any = json.loads(raw.decode(request.charset or "utf-8")) if raw.strip() else {}
    except web.RequestPayloadError:
        raise _bad_request("the body cannot be decoded (Content-Encoding)") from None
    except LookupError:
        raise _bad_request(f"unknown charset {request.charset!r}") from None
    except RecursionError:
        raise _bad_request("the body's JSON is nested too deeply") from None
    except ValueError:  # UnicodeDecodeError too
        raise _bad_request("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad_request("the body must be a JSON object")
    return body


async def _acknowledgement_note(request: web.Request) -> str | None:
    """The optional `note` of an ack request; HTTPBadRequest when the body is not usable.

    A `by` in the body is accepted and ignored (older clients send one): who acknowledges
    is the signed-in identity.
    """
    note = (await _json_object(request)).get("note")
    if note is not None and not isinstance(note, str):
        raise _bad_request('"note" must be a string')
    if note is not None and "\x00" in note:  # the database stores no NUL
        raise _bad_request('"note" must not contain the NUL character')
    if note is not None and not _is_text(note):  # JSON can escape half a pair: "\ud800"
        raise _bad_request('"note" must be text: it holds a lone surrogate')
    return note


def _is_text(value: str) -> bool:
    """Whether `value` encodes as UTF-8 (no lone surrogate), as the database needs."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_UNKNOWN = {"delivery_status": None, "delivered_at": None}
_NOT_TAKEN_UP = {"delivery_status": "pending", "delivered_at": None}


async def _with_delivery(shown: list[dict], engine: Engine | None) -> list[dict]:
    """The alerts, each with its delivery state from the database (storage/delivery_state.py):
    null without a database or while it cannot be reached, so the alerts still show."""
    if engine is None:
        return [alert | _UNKNOWN for alert in shown]
    from sqlalchemy.exc import OperationalError

    from cartwatch.streams.storage.delivery_state import delivery_states

    try:
        ids = [alert["alert_id"] for alert in shown]
        states = await asyncio.to_thread(delivery_states, engine, ids)
    except OperationalError as exc:
        log.warning("GET /alerts without delivery states: %s", type(exc).__name__)
        return [alert | _UNKNOWN for alert in shown]
    # Not stored yet (the worker's database write follows the alert table's): no delivery.
    return [alert | states.get(alert["alert_id"], _NOT_TAKEN_UP) for alert in shown]


async def dmc_report(
    view: StateView,
    engine: Engine | None,
    trial_id: str,
    as_of: datetime,
    stopping: StoppingConfig,
) -> bytes | None:
    """The trial's DMC report as of the cut (None: no data then). The records are cut in the
    event loop (the worker's table is not thread-safe; a cut is a copy), a few hundred at a
    time; the alerts are read and the PDF drawn in threads, so the stream never waits."""
    from cartwatch.streams.reports.pdf import trial_report_pdf
    from cartwatch.streams.reports.sources import TrialData, UnknownTrial

    cut = as_of.timestamp()
    records = []
    for number, record in enumerate(view.records(trial_id), start=1):
        records.append(record_as_of(record, cut))
        if number % 500 == 0:
            await asyncio.sleep(0)
    if engine is not None:
        from cartwatch.streams.storage.operations import trial_alerts

        alerts = await asyncio.to_thread(trial_alerts, engine, trial_id, until=as_of)
        source = "the worker's patient records; alerts from the database"
    else:  # no database: the alerts the worker holds, none acknowledged
        alerts = [a for a in view.recent_alerts(trial_id) if _triggered_by(a, as_of)]
        source = "the worker's patient records and alerts"
    data = TrialData(trial_id, records, alerts, None, source, acknowledgements=engine is not None)
    generated = datetime.now(UTC)
    try:
        return await asyncio.to_thread(
            trial_report_pdf, data, as_of, as_of.isoformat(), stopping, generated
        )
    except UnknownTrial:
        return None


def _triggered_by(alert: dict, as_of: datetime) -> bool:
    triggered = alert["triggered_at"]
    when = triggered if isinstance(triggered, datetime) else parse_timestamp(str(triggered))
    return when <= as_of


def build_api(
    view: StateView,
    metrics: Metrics,
    authenticator: Authenticator | None = None,
    engine: Engine | None = None,
    *,
    desk_url: str | None = None,
    stopping: StoppingConfig | None = None,
) -> web.Application:
    """The aiohttp application; every route but /healthz and /metrics needs an identity
    with the route's role (none configured: open); the safety desk's pages are under /desk
    (streams/http/desk).

    `engine` is the database acknowledgements are stored in and alerts' delivery states and
    dead letters read from; without one the ack and dead-letter routes answer 503 and
    `GET /alerts` shows no delivery state. `authenticator` finds who a request acts as
    (none: the API is open); `desk_url` is the desk's public base URL; `stopping` the
    toxicity boundary the DMC report draws (the rules' settings).
    """
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        if view.is_consuming():
            return web.json_response({"consuming": True})
        reason = "not consuming: partitions not assigned yet, or rebalancing, or restoring"
        return web.json_response({"consuming": False, "error": reason}, status=503)

    @routes.get("/metrics")
    async def prometheus(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @routes.get("/openapi.json")
    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    @routes.get("/trials")
    async def trials(request: web.Request) -> web.Response:
        return web.json_response({"trials": view.trial_ids()})

    @routes.get("/trials/{trial_id}/report")
    async def report(request: web.Request) -> web.Response:
        trial_id, as_of = request.match_info["trial_id"], _parse_as_of(request)
        found = cohort_reports(view.records(trial_id), as_of.timestamp())
        if not found:
            raise web.HTTPNotFound(
                text='{"error": "unknown trial"}', content_type="application/json"
            )
        return web.json_response(found[0])

    @routes.get("/trials/{trial_id}/report.pdf")
    async def report_pdf(request: web.Request) -> web.Response:
        trial_id, as_of = request.match_info["trial_id"], _parse_as_of(request)
        if trial_id not in view.trial_ids():
            return _error(404, "unknown trial")
        pdf = await dmc_report(view, engine, trial_id, as_of, stopping or StoppingConfig())
        if pdf is None:
            return _error(404, f"no data of the trial at or before {as_of.isoformat()}")
        name = re.sub(r"[^A-Za-z0-9._-]", "_", trial_id)
        disposition = f'inline; filename="{name}-dmc-report.pdf"'
        return web.Response(
            body=pdf, content_type="application/pdf", headers={"Content-Disposition": disposition}
        )

    @routes.get("/trials/{trial_id}/patients/{patient_id}")
    async def patient(request: web.Request) -> web.Response:
        record = view.record(request.match_info["trial_id"], request.match_info["patient_id"])
        if record is None:
            raise web.HTTPNotFound(
                text='{"error": "unknown patient"}', content_type="application/json"
            )
        return web.json_response(patient_summary(record, _parse_as_of(request).timestamp()))

    @routes.get("/trials/{trial_id}/toxicity-boundary")
    async def toxicity_boundary(request: web.Request) -> web.Response:
        trial_id = request.match_info["trial_id"]
        if trial_id not in view.trial_ids():
            raise web.HTTPNotFound(
                text='{"error": "unknown trial"}', content_type="application/json"
            )
        as_of = _parse_as_of(request).timestamp()
        return web.json_response({"trial_id": trial_id} | view.toxicity_boundary(trial_id, as_of))

    @routes.get("/alerts")
    async def alerts(request: web.Request) -> web.Response:
        shown = view.recent_alerts(request.query.get("trial_id"))
        return web.json_response({"alerts": await _with_delivery(shown, engine)})

    @routes.post("/alerts/{alert_id}/ack")
    async def acknowledge(request: web.Request) -> web.Response:
        if engine is None:
            return _error(503, "no database configured")
        who = request[IDENTITY]
        if who is None:  # an open API: nobody to name as who acknowledged
            return _unauthenticated(
                "acknowledging needs a signed-in person, and no identity source is configured"
            )
        note = await _acknowledgement_note(request)
        # Imported here: the API without a database loads no database code.
        from cartwatch.streams.storage.errors import AlertAlreadyAcknowledged, AlertNotFound
        from cartwatch.streams.storage.operations import acknowledge_alert

        alert_id = request.match_info["alert_id"]
        if "\x00" in alert_id:  # no alert has one (CONTRACT 1 ids hold none, models/codec.py)
            return _error(404, "unknown alert")
        try:
            alert = await asyncio.to_thread(
                acknowledge_alert, engine, alert_id, actor=who.subject, note=note
            )
        except AlertNotFound:
            return _error(404, "unknown alert")
        except AlertAlreadyAcknowledged as first:
            return web.json_response(
                {"error": str(first), "acknowledged_by": first.by, "acknowledged_at": first.at},
                status=409,
            )
        metrics.observe_acknowledgement(alert)  # this request acknowledged it
        return web.json_response(alert)

    authenticator = authenticator or Authenticator()
    guard = _identity_middleware(authenticator, desk_url)
    app = web.Application(middlewares=[_json_errors, guard])
    app.add_routes(routes)
    app.add_routes(dead_letter_routes(engine))
    add_desk_routes(app, view, engine, metrics, authenticator=authenticator, public_url=desk_url)
    return app
