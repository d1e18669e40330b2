"""A request's credential (a bearer token, or the desk's session cookie holding one), where
the API's middleware puts the identity it resolves (`IDENTITY`, identity.py's
`Authenticator`), and the same-origin check of requests a browser sends with the cookie.

The desk's handlers read only `request[IDENTITY]`, whatever resolved it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import hdrs, web

from cartwatch.streams.http.identity import Identity, bearer_token

SESSION_COOKIE = "cartwatch_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# Who the request acts as; None when it shows no (valid) credential or the API is open.
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")


def credential_of(request: web.Request) -> str | None:
    """The bearer token of the Authorization header (scheme in any case, RFC 9110; a header
    of another form is NotAuthenticated), or else the token the desk's session cookie
    holds; None without either."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is not None:
        return bearer_token(header)
    return request.cookies.get(SESSION_COOKIE) or None


def by_cookie(request: web.Request) -> bool:
    """Whether the credential came from the session cookie (a browser), not a header."""
    scheme = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")[0]
    return scheme.lower() != "bearer" and SESSION_COOKIE in request.cookies


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute URL, lower-case; None for anything else."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[" and the like: a header that is no URL
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: web.Request, public_url: str | None = None) -> bool:
    """Whether an unsafe request comes from a page of this server: its Origin header (or,
    without one, its Referer's origin) is the origin it was sent to, or that of the desk's
    public URL (behind a TLS-terminating proxy the worker itself sees plain http).

    A browser sets Origin on every cross-site POST and a page cannot forge it, so a form
    on another site cannot act with the session cookie (CSRF, with SameSite=Strict)."""
    claimed = request.headers.get(hdrs.ORIGIN) or request.headers.get(hdrs.REFERER) or ""
    origin = origin_of(claimed)
    allowed = {origin_of(f"{request.scheme}://{request.host}")}
    if public_url:
        allowed.add(origin_of(public_url))
    return origin is not None and origin in allowed
