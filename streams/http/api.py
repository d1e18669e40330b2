"""The worker's HTTP API (CONTRACT 6), as an aiohttp application over a read-only state view."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr

from cartwatch.models.cohort import cohort_reports
from cartwatch.models.events import parse_timestamp
from cartwatch.models.patient import PatientRecord
from cartwatch.models.summary import patient_summary
from cartwatch.streams.http.credentials import (
    IDENTITY,
    SAFE_METHODS,
    IdentityResolver,
    ServiceToken,
    by_cookie,
    credential_of,
    same_origin,
)
from cartwatch.streams.http.desk import add_desk_routes, is_desk_path
from cartwatch.streams.worker.metrics import Metrics

if TYPE_CHECKING:
    from sqlalchemy import Engine

OPEN_PATHS = frozenset({"/healthz", "/metrics"})


class StateView(Protocol):
    """What the API reads; the worker and the tests provide it."""

    def records(self, trial_id: str | None = None) -> Iterable[PatientRecord]: ...

    def record(self, trial_id: str, patient_id: str) -> PatientRecord | None: ...

    def trial_ids(self) -> list[str]: ...

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]: ...

    def is_consuming(self) -> bool: ...

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _identity_middleware(resolver: IdentityResolver | None, public_url: str | None):
    """Puts the request's identity in request[IDENTITY]: from its bearer token or the desk's
    session cookie (`credential_of`). Without one, 401, but on the desk, which shows its
    sign-in page itself; with no resolver (no token configured) the API is open."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[IDENTITY] = None
        if resolver is None or request.path in OPEN_PATHS:
            return await handler(request)
        credential = credential_of(request)
        identity = await resolver.identify(credential) if credential else None
        if identity is None and not is_desk_path(request.path):
            return web.json_response(
                {"error": "missing or wrong bearer token"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        # A cookie rides along on requests other sites make, a header cannot: a POST with the
        # desk's cookie must come from a page of this server (the desk checks its own forms).
        unsafe = by_cookie(request) and request.method not in SAFE_METHODS
        if unsafe and not is_desk_path(request.path) and not same_origin(request, public_url):
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


async def _acknowledgement(request: web.Request) -> tuple[str, str | None]:
    """`by` and `note` of an ack request; HTTPBadRequest when the body is not usable."""
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    by = body.get("by") if isinstance(body, dict) else None
    note = body.get("note") if isinstance(body, dict) else None
    # 128: the width of alerts.acknowledged_by.
    if not isinstance(by, str) or not by.strip() or len(by) > 128:
        raise web.HTTPBadRequest(
            text='{"error": "JSON body needs \\"by\\": who acknowledges (1-128 characters)"}',
            content_type="application/json",
        )
    if note is not None and not isinstance(note, str):
        raise web.HTTPBadRequest(
            text='{"error": "\\"note\\" must be a string"}', content_type="application/json"
        )
    if "\x00" in by or (note is not None and "\x00" in note):  # the database stores no NUL
        raise web.HTTPBadRequest(
            text='{"error": "\\"by\\" and \\"note\\" must not contain the NUL character"}',
            content_type="application/json",
        )
    return by.strip(), note


def _limit(request: web.Request, default: int = 100, most: int = 1000) -> int:
    try:
        return max(1, min(most, int(request.query.get("limit", default))))
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "limit must be a whole number"}', content_type="application/json"
        ) from None


def build_api(
    view: StateView,
    metrics: Metrics,
    token: SecretStr | None,
    engine: Engine | None = None,
    *,
    resolver: IdentityResolver | None = None,
    desk_url: str | None = None,
) -> web.Application:
    """The aiohttp application; the bearer token guards all but /healthz and /metrics, and
    the safety desk's pages are under /desk (streams/http/desk).

    `engine` is the database acknowledgements are stored in; without one the ack route
    answers 503. `resolver` finds who a token belongs to (default: the token itself is
    the service account); `desk_url` is the desk's public base URL.
    """
    routes = web.RouteTableDef()

    @routes.get("/healthz")
    async def healthz(request: web.Request) -> web.Response:
        ok = view.is_consuming()
        return web.json_response({"consuming": ok}, status=200 if ok else 503)

    @routes.get("/metrics")
    async def prometheus(request: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

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
        return web.json_response({"alerts": view.recent_alerts(request.query.get("trial_id"))})

    @routes.post("/alerts/{alert_id}/ack")
    async def acknowledge(request: web.Request) -> web.Response:
        if engine is None:
            return _error(503, "no database configured")
        by, note = await _acknowledgement(request)
        # Imported here: the API without a database loads no database code.
        from cartwatch.streams.storage.errors import AlertNotFound
        from cartwatch.streams.storage.operations import acknowledge_alert

        alert_id = request.match_info["alert_id"]
        if "\x00" in alert_id:  # no alert has one (CONTRACT 1 ids hold none, models/codec.py)
            return _error(404, "unknown alert")
        try:
            alert = await asyncio.to_thread(
                acknowledge_alert, engine, alert_id, actor=by, note=note
            )
        except AlertNotFound:
            return _error(404, "unknown alert")
        return web.json_response(alert)

    @routes.get("/dead-letters")
    async def dead_letters(request: web.Request) -> web.Response:
        if engine is None:
            return _error(503, "no database configured")
        from cartwatch.streams.storage.operations import list_dead_letters

        status = request.query.get("status")
        if status not in (None, "new", "redriven"):
            return _error(400, "status must be new or redriven")
        limit = _limit(request)
        rows = await asyncio.to_thread(list_dead_letters, engine, status=status, limit=limit)
        return web.json_response({"dead_letters": rows})

    if resolver is None and token is not None:
        resolver = ServiceToken(token)
    identify = _identity_middleware(resolver, desk_url)
    app = web.Application(middlewares=[_json_errors, identify])
    app.add_routes(routes)
    add_desk_routes(app, view, engine, metrics, resolver=resolver, public_url=desk_url)
    return app
