"""HTML error pages for the desk's paths: a browser gets a page, not JSON."""

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


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors on desk paths as HTML pages; unexpected exceptions as a 500 page."""
    if not is_desk_path(request.path):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.content_type == "text/plain" and exc.text else None
        if message and message.startswith(f"{exc.status}: "):  # aiohttp's own default text
            message = None
        page = error_page(exc.status, message)
        for name in ("Allow", "WWW-Authenticate"):
            if name in exc.headers:
                page.headers[name] = exc.headers[name]
        return page
    except Exception:
        log.exception("desk page %s failed", request.method)  # the path may hold a patient id
        return error_page(500)
