"""The alert inbox: open alerts first, then the latest acknowledged, newest first; a live
fragment the page polls; acknowledgement with a note (post, then redirect back)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from aiohttp import web

from cartwatch.alerts.sinks.links import DESK_PATH
from cartwatch.streams.http.desk.context import Desk, desk_of
from cartwatch.streams.http.desk.guard import (
    form_of,
    from_this_desk,
    identity_of,
    local_path,
    physician,
    viewer,
)
from cartwatch.streams.http.desk.pages import render

inbox_routes = web.RouteTableDef()

# Open alerts are all shown up to this many (more: the page says so); of the acknowledged
# ones, the latest few, as a record of what was done.
OPEN_SHOWN = 500
ACKNOWLEDGED_SHOWN = 50
NOTE_MAX = 2000
INBOX_VERSION = "X-Inbox-Version"


async def alerts_of(desk: Desk, **where: Any) -> tuple[list[dict], list[dict]]:
    """(open, acknowledged) alerts newest first, from the database; none without one."""
    if desk.engine is None:
        return [], []
    from cartwatch.streams.storage.operations import list_alerts

    opened = await desk.query(
        list_alerts, desk.engine, acknowledged=False, limit=OPEN_SHOWN, **where
    )
    done = await desk.query(
        list_alerts, desk.engine, acknowledged=True, limit=ACKNOWLEDGED_SHOWN, **where
    )
    return opened, done


def version_of(opened: list[dict], done: list[dict]) -> str:
    """Changes when an alert arrives or is acknowledged: the page then swaps its tables."""
    keys = [a["alert_id"] for a in opened] + [
        f"{a['alert_id']}@{a['acknowledged_at']}" for a in done
    ]
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def _inbox_context(request: web.Request, opened: list[dict], done: list[dict]) -> dict:
    identity = identity_of(request)
    return {
        "open_alerts": opened,
        "acknowledged_alerts": done,
        "open_capped": len(opened) >= OPEN_SHOWN,
        "now": time.time(),
        "back": DESK_PATH,
        "identity": identity,
        "version": version_of(opened, done),
    }


@inbox_routes.get(DESK_PATH)
async def inbox_page(request: web.Request) -> web.Response:
    viewer(request)
    desk = desk_of(request)
    opened, done = await alerts_of(desk)
    context = _inbox_context(request, opened, done)
    context |= {"trials": desk.view.trial_ids(), "has_database": desk.engine is not None}
    html = await desk.timed("inbox", lambda: render("inbox.html", **context))
    return web.Response(text=html, content_type="text/html")


@inbox_routes.get(f"{DESK_PATH}/inbox")
async def inbox_fragment(request: web.Request) -> web.Response:
    """The inbox's tables alone, for the page's live refresh (401 once signed out)."""
    if identity_of(request) is None:
        return web.Response(status=401, text="signed out", content_type="text/plain")
    viewer(request)
    desk = desk_of(request)
    opened, done = await alerts_of(desk)
    context = _inbox_context(request, opened, done)
    html = await desk.timed("inbox_fragment", lambda: render("_inbox.html", **context))
    headers = {INBOX_VERSION: context["version"], "Cache-Control": "no-store"}
    return web.Response(text=html, content_type="text/html", headers=headers)


@inbox_routes.post(f"{DESK_PATH}/alerts/{{alert_id}}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    """Acknowledge as the signed-in person, with the form's note; back to the page it came from."""
    from_this_desk(request)
    identity = physician(request)
    desk = desk_of(request)
    form = await form_of(request)
    note = str(form.get("note", "")).strip()
    alert_id = request.match_info["alert_id"]
    if len(note) > NOTE_MAX or "\x00" in note or "\x00" in alert_id:
        raise web.HTTPBadRequest(text=f"A note holds at most {NOTE_MAX} characters, and no NUL.")
    if desk.engine is None:
        raise web.HTTPServiceUnavailable(
            text="This worker has no database to record acknowledgements in."
        )
    from cartwatch.streams.storage.errors import AlertAlreadyAcknowledged, AlertNotFound
    from cartwatch.streams.storage.operations import acknowledge_alert

    try:
        alert = await desk.query(
            acknowledge_alert, desk.engine, alert_id, actor=identity.subject, note=note or None
        )
    except AlertNotFound:
        raise web.HTTPNotFound(text="There is no such alert.") from None
    except AlertAlreadyAcknowledged as first:
        raise web.HTTPConflict(
            text=f"This alert was acknowledged already, by {first.by} at {first.at}."
        ) from None
    desk.metrics.observe_acknowledgement(alert)  # this form acknowledged it
    back = local_path(str(form.get("back", ""))) or DESK_PATH
    raise web.HTTPSeeOther(back)
