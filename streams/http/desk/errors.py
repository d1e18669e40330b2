"""The desk's answers as a browser needs them: errors as HTML pages (not JSON), and the
headers every page carries."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from cartwatch.streams.http.desk.guard import is_desk_path
from cartwatch.streams.http.desk.pages import render

log = logging.getLogger(__name__)

TITLES = {
    400: "That request could not be used",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    503: "Not available right now",
}
MESSAGES = {
    404: "There is no such page on the safety desk.",
    405: "This page does not take that kind of request.",
    500: "Something went wrong on the server. The error was logged; please try again.",
}


def error_page(status: int, message: str | None = None) -> web.Response:
    """A page saying what went wrong, in words (never an exception's text)."""
    title = TITLES.get(status, "Something went wrong")
    body = render("error.html", status=status, title=title, message=message or MESSAGES.get(status))
    return web.Response(text=body, status=status, content_type="text/html")


# Pages hold patient data: no cache keeps them, no other site frames them or learns their
# address (it holds ids), no script or style loads from elsewhere (the few lines of the
# live inbox are inline).
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


@web.middleware
async def html_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Desk answers with the page headers; HTTP errors as HTML pages, unexpected exceptions
    as a 500 page."""
    if not is_desk_path(request.path):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # a redirect, or the page that re-opens a link from another site
            exc.headers.update(PAGE_HEADERS)
            raise
        response = _page_for(exc)
    except Exception:
        log.exception("desk page %s failed", request.method)  # the path may hold a patient id
        response = error_page(500)
    response.headers.update(PAGE_HEADERS)
    return response


def _page_for(exc: web.HTTPException) -> web.Response:
    message = exc.text if exc.content_type == "text/plain" and exc.text else None
    if message and message.startswith(f"{exc.status}: "):  # aiohttp's own default text
        message = None
    page = error_page(exc.status, message)
    for name in ("Allow", "WWW-Authenticate"):
        if name in exc.headers:
            page.headers[name] = exc.headers[name]
    return page
