"""The safety desk: server-rendered pages for trial safety physicians, under /desk.

- `inbox.py`: the alert inbox (open and acknowledged, live), acknowledgement with a note;
- `patient.py`, `trial.py`: a patient's course and alerts; a trial's figures and charts;
- `sign_in.py`: the sign-in form that sets the session cookie, and sign-out;
- `guard.py`: who may see and do what, the same-origin check of every form;
- `pages.py`: the templates (jinja2, autoescaped) and their filters; `errors.py`: HTML errors;
- the charts come from `streams/charts/` (shared with the DMC report), as inline SVG.

Handlers read the identity the API's middleware resolved (`request[IDENTITY]`), never how
it was resolved. Data comes from the state view (records, in the event loop: cheap reads
of the worker's table) and the database (alerts, in a thread); figures, charts and HTML
are computed in a thread, so a page never holds up the stream processing in the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from cartwatch.streams.http.desk.context import DESK, Desk
from cartwatch.streams.http.desk.errors import html_pages
from cartwatch.streams.http.desk.guard import is_desk_path
from cartwatch.streams.http.desk.inbox import inbox_routes
from cartwatch.streams.http.desk.patient import patient_routes
from cartwatch.streams.http.desk.sign_in import sign_in_routes
from cartwatch.streams.http.desk.trial import trial_routes
from cartwatch.streams.http.identity import Authenticator
from cartwatch.streams.worker.metrics import Metrics

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from cartwatch.streams.http.api import StateView

__all__ = ["add_desk_routes", "is_desk_path"]


def add_desk_routes(
    app: web.Application,
    view: StateView,
    engine: Engine | None,
    metrics: Metrics,
    *,
    authenticator: Authenticator | None = None,
    public_url: str | None = None,
) -> None:
    """Register the desk's routes and its HTML error pages on the API's application."""
    app[DESK] = Desk(view, engine, metrics, authenticator or Authenticator(), public_url)
    app.middlewares.append(html_pages)
    for routes in (inbox_routes, patient_routes, trial_routes, sign_in_routes):
        app.router.add_routes(routes)
