"""OIDC bearer tokens: JWTs of the organisation's identity provider, checked with PyJWT.

The signature is checked against the provider's published keys (JWKS), fetched in a
thread (urllib blocks) and cached; the issuer, the audience and the expiry are checked
too. Only asymmetric algorithms are accepted: never `none`, and never an HMAC one, which
would let anyone holding the public key sign ("algorithm confusion").
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import jwt

from cartwatch.streams.http.errors import IdentityUnavailable, NotAuthenticated

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Clocks of the provider and of the worker may differ a little; 30 s of an access token's
# usual 5-60 minutes.
LEEWAY_S = 30
# The key set is fetched again after 5 minutes; a token signed by a key not in it (the
# provider rotated its keys) triggers one fetch, at most one per cooldown, so tokens with
# made-up key ids cannot make the worker hammer the provider.
JWKS_LIFESPAN_S = 300.0
REFETCH_COOLDOWN_S = 10.0
FETCH_TIMEOUT_S = 5.0


class OidcVerifier:
    """Verifies a provider's JWTs and returns their claims."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        *,
        refetch_cooldown_s: float = REFETCH_COOLDOWN_S,
    ) -> None:
        self.issuer, self.audience = issuer, audience
        self._keys = jwt.PyJWKClient(
            jwks_url,
            cache_keys=False,  # its per-key cache never expires: a withdrawn key would stay
            lifespan=JWKS_LIFESPAN_S,
            timeout=FETCH_TIMEOUT_S,
            cooldown_duration=refetch_cooldown_s,
        )

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims; NotAuthenticated or IdentityUnavailable otherwise."""
        key = await asyncio.to_thread(self._signing_key, token)
        try:
            return jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("bearer token expired") from None
        except jwt.PyJWTError as exc:  # PyJWT's messages never quote the token
            raise NotAuthenticated(f"bearer token refused: {exc}") from None

    def _signing_key(self, token: str) -> jwt.PyJWK:
        try:
            return self._keys.get_signing_key_from_jwt(token)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError):
            raise IdentityUnavailable("the identity provider's keys cannot be fetched") from None
        except jwt.PyJWKClientError:
            raise NotAuthenticated("bearer token signed by an unknown key") from None
        except jwt.PyJWTError:
            raise NotAuthenticated("bearer token is not a JWT") from None


def roles_claim(claims: dict[str, Any], path: str) -> list[str]:
    """The role names at `path`: a claim's full name (which may hold dots, as Auth0's URL
    names do), else a dotted path (`realm_access.roles`); a list or a spaced string."""
    value: Any = claims.get(path)
    if path not in claims:
        value = claims
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [name for name in re.split(r"[\s,]+", value) if name]
    if isinstance(value, list):
        return [name for name in value if isinstance(name, str)]
    return []
