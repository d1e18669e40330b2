"""Who may see and do what on the desk, and the checks every form goes through.

No identity: the pages redirect to the sign-in page (no patient data, no patient id, not
even in the redirect: where to return to waits in a cookie, not in a query string). An
identity without the role: a readable 403 page. A form posted from another site: 403; one
whose body cannot be read: 400.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_request import FileField
from multidict import MultiDictProxy

from cartwatch.alerts.sinks.links import DESK_PATH
from cartwatch.streams.http.credentials import IDENTITY, same_origin
from cartwatch.streams.http.desk.context import desk_of
from cartwatch.streams.http.desk.pages import render
from cartwatch.streams.http.identity import Identity

SIGN_IN_PATH = f"{DESK_PATH}/sign-in"
# Where to go after signing in: a desk path, kept for 15 min (Lax: it is set while following
# a link from an email, a cross-site navigation).
NEXT_COOKIE = "cartwatch_next"
NEXT_MAX_AGE_S = 900


def is_desk_path(path: str) -> bool:
    """Whether a request path is one of the desk's (its answers are HTML)."""
    return path == DESK_PATH or path.startswith(DESK_PATH + "/")


def identity_of(request: web.Request) -> Identity | None:
    """The identity the API's middleware resolved; None when nobody is signed in."""
    return request.get(IDENTITY)


def viewer(request: web.Request) -> Identity:
    """The signed-in identity; else a redirect to the sign-in page (remembering the page)."""
    identity = identity_of(request)
    if identity is None and arrived_from_another_site(request):
        raise web.HTTPOk(text=render("bounce.html"), content_type="text/html")
    if identity is None:
        redirect = web.HTTPSeeOther(SIGN_IN_PATH)
        if request.method == "GET" and local_path(request.path) is not None:
            redirect.set_cookie(
                NEXT_COOKIE,
                request.path,
                path=DESK_PATH,
                max_age=NEXT_MAX_AGE_S,
                httponly=True,
                samesite="Lax",
            )
        raise redirect
    if not identity.may("viewer"):
        raise web.HTTPForbidden(text="Your account holds no role that may see the safety desk.")
    return identity


def arrived_from_another_site(request: web.Request) -> bool:
    """A page opened from another site (a link in an email): the browser kept the SameSite=
    Strict session cookie back, so nobody seems signed in. The desk then answers a page that
    opens the same address again from itself, which sends the cookie (or, signed out, leads
    to the sign-in page). Browsers say where a navigation came from in Sec-Fetch-Site."""
    return (
        request.method == "GET"
        and request.headers.get("Sec-Fetch-Site") == "cross-site"
        and request.headers.get("Sec-Fetch-Mode") == "navigate"
    )


def physician(request: web.Request) -> Identity:
    """The signed-in identity when it may acknowledge alerts; else 403 (or sign-in)."""
    identity = viewer(request)
    if not identity.may("physician"):
        raise web.HTTPForbidden(
            text=f"Acknowledging alerts needs the physician role; {identity.subject} "
            "does not hold it. Ask an administrator if you should."
        )
    return identity


def from_this_desk(request: web.Request) -> None:
    """Refuse a form posted by a page of another origin (CSRF): 403."""
    if not same_origin(request, desk_of(request).public_url):
        raise web.HTTPForbidden(
            text="This form was not sent from a page of this safety desk, so it was refused. "
            "Open the desk and try again."
        )


async def form_of(request: web.Request) -> MultiDictProxy[str | bytes | FileField]:
    """The posted form; 400 when its body cannot be read (an unknown charset, a multipart
    body without its boundary): a request no page of the desk sends."""
    try:
        return await request.post()
    except (LookupError, ValueError):  # UnicodeDecodeError too
        raise web.HTTPBadRequest(text="The form could not be read.") from None


def local_path(path: str | None) -> str | None:
    """`path` when it is a path of this desk (never another site: `//host` or `/\\host`)."""
    if not path or not path.startswith(DESK_PATH) or "//" in path or "\\" in path:
        return None
    if path != DESK_PATH and not path.startswith(DESK_PATH + "/"):
        return None
    return path
