"""Who a request acts as: a person (OIDC or a local account) or the service account.

Three sources, tried by the token's shape: the service token (`CARTWATCH_API_TOKEN`,
compared in constant time), a local account's `cw_` token (looked up in the database on
every request, so a new account works and a revoked one stops at once), and a JWT of the
organisation's identity provider (streams/http/oidc.py). Roles: `viewer`, `physician`
(acknowledges alerts), `data-manager` (dead letters), `admin` (everything).
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import SecretStr

from cartwatch.streams.http.errors import IdentityUnavailable, NotAuthenticated

if TYPE_CHECKING:  # the settings import this module: no database or JWT code at import
    from sqlalchemy import Engine

    from cartwatch.streams.http.oidc import OidcVerifier
    from cartwatch.streams.worker.settings import Settings

ROLES = ("viewer", "physician", "data-manager", "admin")
SERVICE_SUBJECT = "service"
T = TypeVar("T")


@dataclass(frozen=True)
class Identity:
    """Who a request acts as, with the roles it holds."""

    subject: str
    roles: frozenset[str]
    kind: Literal["oidc", "local", "service"]

    def may(self, role: str) -> bool:
        """Whether it holds `role`: admin implies every role, any role implies viewer."""
        if "admin" in self.roles or role in self.roles:
            return True
        return role == "viewer" and bool(self.roles & set(ROLES))


def parse_roles(names: str | Iterable[str]) -> frozenset[str]:
    """Role names from a list or a comma-separated string; ValueError names an unknown one."""
    if isinstance(names, str):
        names = names.split(",")
    roles = frozenset(name.strip() for name in names if name.strip())
    unknown = sorted(roles - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})")
    return roles


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header (scheme in any case, RFC 9110)."""
    scheme, _, token = (header or "").strip().partition(" ")
    if not scheme:
        raise NotAuthenticated("no bearer token (Authorization: Bearer <token>)")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("the Authorization header must be: Bearer <token>")
    return token.strip()


class ServiceAccount:
    """`CARTWATCH_API_TOKEN`: a program's token, read-only unless given roles."""

    def __init__(self, token: SecretStr, roles: frozenset[str] = frozenset({"viewer"})) -> None:
        self._expected = _bytes(token.get_secret_value())
        self.identity = Identity(SERVICE_SUBJECT, roles, "service")

    def identify(self, token: str) -> Identity | None:
        """The service identity when `token` is its token (compared in constant time)."""
        return self.identity if hmac.compare_digest(_bytes(token), self._expected) else None


class LocalAccounts:
    """Accounts of `cartwatch users add`, looked up by their token's hash per request."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._exist = False  # once true, true for good: revoked accounts are kept

    async def identify(self, token: str) -> Identity | None:
        """The account's identity; None for a token not of this kind, NotAuthenticated for
        an unknown or revoked one."""
        from cartwatch.streams.storage.users import TOKEN_PREFIX, active_account

        if not token.startswith(TOKEN_PREFIX):
            return None
        account = await self._ask(active_account, self._engine, token)
        if account is None:
            raise NotAuthenticated("unknown or revoked token")
        return Identity(account.name, account.roles & set(ROLES), "local")

    async def exist(self) -> bool:
        """Whether any account was ever created: then the API asks everyone who they are."""
        from cartwatch.streams.storage.users import any_users

        self._exist = self._exist or await self._ask(any_users, self._engine)
        return self._exist

    @staticmethod
    async def _ask(query: Callable[..., T], *args: object) -> T:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return await asyncio.to_thread(query, *args)
        except SQLAlchemyError:
            raise IdentityUnavailable("the account store cannot be read") from None


class OidcAccounts:
    """People signed in at the identity provider, roles from a claim of their token."""

    def __init__(self, verifier: OidcVerifier, roles_claim: str = "roles") -> None:
        self._verifier, self._roles_claim = verifier, roles_claim

    async def identify(self, token: str) -> Identity:
        """The token's subject and roles (roles cartwatch does not know are left out)."""
        from cartwatch.streams.http.oidc import roles_claim

        claims = await self._verifier.claims(token)
        subject = claims["sub"]
        # 128: the width of alerts.acknowledged_by; PostgreSQL stores no NUL.
        if not isinstance(subject, str) or not 0 < len(subject) <= 128 or "\x00" in subject:
            raise NotAuthenticated("the token's subject (sub) is not 1-128 characters")
        roles = frozenset(roles_claim(claims, self._roles_claim)) & set(ROLES)
        return Identity(subject, roles, "oidc")


class Authenticator:
    """Finds the identity of a request among the configured sources."""

    def __init__(
        self,
        *,
        service: ServiceAccount | None = None,
        local: LocalAccounts | None = None,
        oidc: OidcAccounts | None = None,
    ) -> None:
        self.service, self.local, self.oidc = service, local, oidc

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None) -> Authenticator:
        """The sources the settings configure; local accounts when there is a database."""
        service = oidc = None
        if settings.api_token is not None:
            service = ServiceAccount(settings.api_token, parse_roles(settings.api_token_roles))
        if settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks_url:
            from cartwatch.streams.http.oidc import OidcVerifier

            verifier = OidcVerifier(
                settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url
            )
            oidc = OidcAccounts(verifier, settings.oidc_roles_claim)
        local = LocalAccounts(engine) if engine is not None else None
        return cls(service=service, local=local, oidc=oidc)

    async def identify(self, header: str | None) -> Identity:
        """The identity of an Authorization header; NotAuthenticated says why there is none."""
        return await self.identify_token(bearer_token(header))

    async def identify_token(self, token: str) -> Identity:
        """The identity of a presented token; NotAuthenticated says why there is none."""
        if self.service is not None and (found := self.service.identify(token)):
            return found
        if self.local is not None and (found := await self.local.identify(token)):
            return found
        if self.oidc is not None and _looks_like_jwt(token):
            return await self.oidc.identify(token)
        raise NotAuthenticated("unknown bearer token")

    async def for_credential(self, token: str | None) -> Identity | None:
        """The identity of a request's credential (its bearer token or the desk's session
        cookie, `credentials.credential_of`); None when no source is configured (the API is
        open); NotAuthenticated says why there is none."""
        try:
            if token is None:
                raise NotAuthenticated("no bearer token (Authorization: Bearer <token>)")
            return await self.identify_token(token)
        except NotAuthenticated:
            if await self.configured():
                raise
            return None

    async def configured(self) -> bool:
        """Whether any source can identify anyone; with none, the API stays open."""
        if self.service is not None or self.oidc is not None:
            return True
        return self.local is not None and await self.local.exist()


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


_JWT = re.compile(r"[\w-]+\.[\w-]+\.[\w-]*")


def _looks_like_jwt(token: str) -> bool:
    return _JWT.fullmatch(token) is not None
