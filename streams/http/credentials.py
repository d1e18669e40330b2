"""Who a request is: its credential (a bearer token, or the desk's session cookie holding
one), the resolver that turns a token into an identity, and the same-origin check.

The API's middleware calls `credential_of` and its resolver, and puts what it finds in
`request[IDENTITY]`; the desk's handlers read only that, whatever resolved it. Today the
one resolver is the service token (`CARTWATCH_API_TOKEN`); person identities (local
accounts, OIDC) plug in as other `IdentityResolver`s.
"""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from pydantic import SecretStr

SESSION_COOKIE = "cartwatch_session"
ROLES = frozenset({"viewer", "physician", "data-manager", "admin"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Identity(Protocol):
    """What a handler may know of who acts: a subject and roles."""

    subject: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Person:
    """An identity a resolver found."""

    subject: str
    roles: frozenset[str]


# Who the request acts as; None when it shows no (valid) credential or the API is open.
IDENTITY: web.RequestKey[Identity | None] = web.RequestKey("identity")


def credential_of(request: web.Request) -> str | None:
    """The bearer token of the Authorization header (scheme in any case, RFC 9110), or else
    the token the desk's session cookie holds; None without either."""
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def by_cookie(request: web.Request) -> bool:
    """Whether the credential came from the session cookie (a browser), not a header."""
    scheme = request.headers.get(hdrs.AUTHORIZATION, "").strip().partition(" ")[0]
    return scheme.lower() != "bearer" and SESSION_COOKIE in request.cookies


def may(identity: Identity | None, role: str) -> bool:
    """Whether `identity` holds `role`: admin holds every role, any role holds viewer."""
    if identity is None:
        return False
    if "admin" in identity.roles or role in identity.roles:
        return True
    return role == "viewer" and bool(identity.roles & ROLES)


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute URL, lower-case; None for anything else."""
    parts = urlsplit(url)
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


class IdentityResolver(ABC):
    """Turns a presented token into an identity."""

    @abstractmethod
    async def identify(self, token: str) -> Identity | None:
        """The token's identity; None when the token is not one this resolver knows."""


class ServiceToken(IdentityResolver):
    """`CARTWATCH_API_TOKEN`: whoever holds it may do everything the API offers, as today
    (an acknowledgement names the subject `service`)."""

    def __init__(self, token: SecretStr, subject: str = "service") -> None:
        self._expected = token.get_secret_value().encode("utf-8", "surrogatepass")
        self._identity = Person(subject, ROLES)

    async def identify(self, token: str) -> Identity | None:
        given = token.encode("utf-8", "surrogatepass")
        return self._identity if hmac.compare_digest(given, self._expected) else None
