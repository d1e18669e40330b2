"""Sign-in: a person pastes their personal access token; the desk checks it with the API's
resolver and keeps it in an HttpOnly, SameSite=Strict session cookie. Sign-out clears it."""

from __future__ import annotations

from aiohttp import web

from cartwatch.alerts.sinks.links import DESK_PATH
from cartwatch.streams.http.credentials import SESSION_COOKIE
from cartwatch.streams.http.desk.context import desk_of
from cartwatch.streams.http.desk.guard import (
    NEXT_COOKIE,
    SIGN_IN_PATH,
    form_of,
    from_this_desk,
    identity_of,
    local_path,
)
from cartwatch.streams.http.desk.pages import render
from cartwatch.streams.http.errors import IdentityUnavailable, NotAuthenticated

sign_in_routes = web.RouteTableDef()

# A session lasts a working day; then the token is asked for again.
SESSION_MAX_AGE_S = 12 * 3600
TOKEN_MAX = 4096  # a JWT with many claims stays well under this


async def _page(
    request: web.Request, status: int = 200, problem: str | None = None
) -> web.Response:
    try:
        configured = await desk_of(request).authenticator.configured()
    except IdentityUnavailable:
        configured = True  # the account store is away; the form can say so when used
    html = render(
        "sign_in.html", identity=identity_of(request), configured=configured, problem=problem
    )
    return web.Response(text=html, status=status, content_type="text/html")


@sign_in_routes.get(SIGN_IN_PATH)
async def sign_in_form(request: web.Request) -> web.Response:
    return await _page(request)


@sign_in_routes.post(SIGN_IN_PATH)
async def sign_in(request: web.Request) -> web.Response:
    """Check the token; on success set the session cookie and go where the person was going."""
    from_this_desk(request)
    authenticator = desk_of(request).authenticator
    token = str((await form_of(request)).get("token", "")).strip()
    if not await authenticator.configured():
        return await _page(request, 503, "Sign-in is not configured on this worker.")
    usable = 0 < len(token) <= TOKEN_MAX and token.isprintable() and " " not in token
    try:
        identity = await authenticator.identify_token(token) if usable else None
    except NotAuthenticated:
        identity = None
    except IdentityUnavailable:
        return await _page(request, 503, "Accounts cannot be checked right now; try again.")
    if identity is None:
        return await _page(
            request, 401, "That token was not recognised. Check it and paste it again."
        )
    response = web.HTTPSeeOther(local_path(request.cookies.get(NEXT_COOKIE)) or DESK_PATH)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path="/",
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    response.del_cookie(NEXT_COOKIE, path=DESK_PATH)
    raise response


@sign_in_routes.post(f"{DESK_PATH}/sign-out")
async def sign_out(request: web.Request) -> web.Response:
    from_this_desk(request)
    response = web.HTTPSeeOther(SIGN_IN_PATH)
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response
