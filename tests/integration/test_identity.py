"""People signed in at the identity provider: OIDC tokens checked against a real JWKS
server on 127.0.0.1 (keys made with `cryptography`, tokens minted with PyJWT), through the
aiohttp API on a real, migrated SQLite database (tests/integration/identity_support.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine

from tests.integration.identity_support import (
    JwksServer,
    SigningKey,
    api,
    authenticator,
    bearer,
    claims,
    get,
    hs256_token,
    migrated_sqlite,
    provider_keys,
    rsa_key,
    status_of,
)
from tests.integration.test_storage_support import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return provider_keys()


@pytest.fixture
def provider(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer(keys["first"], keys["ec"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = migrated_sqlite(tmp_path_factory.mktemp("identity"))
    yield engine
    engine.dispose()


def test_a_valid_token_of_the_provider_reads_the_api(provider, keys, engine) -> None:
    assert status_of(provider, engine, keys["first"].sign(claims())) == 200
    assert status_of(provider, engine, keys["ec"].sign(claims())) == 200


def test_the_bearer_scheme_in_lowercase_is_accepted(provider, keys, engine) -> None:
    identity = authenticator(provider.url, engine)
    token = keys["first"].sign(claims())
    assert get(identity, engine, "/trials", bearer(token, "bearer"))[0] == 200


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": int(time.time()) - 120}, "bearer token expired"),
        ({"aud": "another-service"}, "bearer token refused: Audience doesn't match"),
        ({"iss": "https://evil.example.org"}, "bearer token refused: Invalid issuer"),
        ({"sub": None}, 'bearer token refused: Token is missing the "sub" claim'),
        ({"sub": "x" * 129}, "the token's subject (sub) is not 1-128 characters"),
    ],
)
def test_a_token_expired_or_for_another_audience_or_issuer_is_401(
    provider, keys, engine, changes: dict, reason: str
) -> None:
    token = keys["first"].sign(claims(**changes))
    status, body = get(authenticator(provider.url, engine), engine, "/trials", bearer(token))
    assert (status, body) == (401, {"error": reason})


def test_a_token_signed_by_another_key_under_the_same_kid_is_401(provider, keys, engine) -> None:
    token = keys["impostor"].sign(claims())
    status, body = get(authenticator(provider.url, engine), engine, "/trials", bearer(token))
    assert (status, body) == (401, {"error": "bearer token refused: Signature verification failed"})


def test_unsigned_tokens_and_hmac_signed_with_the_public_key_are_401(
    provider, keys, engine
) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "key-1"})
    public_pem = (
        keys["first"]
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    confused = hs256_token(claims(), public_pem, kid="key-1")  # "algorithm confusion"
    refused = (401, {"error": "bearer token refused: The specified alg value is not allowed"})
    for token in (unsigned, confused):
        assert get(authenticator(provider.url, engine), engine, "/trials", bearer(token)) == refused


def test_a_rotated_key_is_fetched_once_when_a_token_names_it(provider, keys, engine) -> None:
    identity = authenticator(provider.url, engine)
    first, rotated = keys["first"].sign(claims()), keys["rotated"].sign(claims())

    async def go() -> list[tuple[int, int]]:
        seen = []
        async with api(identity, engine) as client:
            for token in (first, first, None, rotated, rotated):
                if token is None:
                    provider.keys = [keys["rotated"]]  # the provider rotates its keys
                    continue
                response = await client.get("/trials", headers=bearer(token))
                seen.append((response.status, provider.fetches))
        return seen

    # Cached after the first fetch; the new kid fetches once; the old key is gone.
    assert asyncio.run(go()) == [(200, 1), (200, 1), (200, 2), (200, 2)]
    assert status_of(provider, engine, first) == 401


def test_made_up_key_ids_do_not_make_the_worker_fetch_the_keys_again_and_again(
    provider, keys, engine
) -> None:
    identity = authenticator(provider.url, engine, cooldown_s=60.0)
    tokens = [keys["first"].sign(claims())]
    tokens += [rsa_key(f"made-up-{n}").sign(claims()) for n in range(3)]
    statuses = [get(identity, engine, "/trials", bearer(token))[0] for token in tokens]
    assert statuses == [200, 401, 401, 401]
    assert provider.fetches == 1


def test_a_token_without_a_cartwatch_role_is_403(provider, keys, engine) -> None:
    token = keys["first"].sign(claims(roles=["offline_access", "uma_authorization"]))
    status, body = get(authenticator(provider.url, engine), engine, "/trials", bearer(token))
    assert (status, body) == (403, {"error": "this needs the viewer role", "role": "viewer"})


def test_roles_come_from_the_configured_claim_a_dotted_path_too(provider, keys, engine) -> None:
    keycloak = claims(roles=None, realm_access={"roles": ["data-manager"]})
    token = keys["first"].sign(keycloak)
    for roles_claim, expected in (("realm_access.roles", 200), ("roles", 403)):
        identity = authenticator(provider.url, engine, roles_claim=roles_claim)
        assert get(identity, engine, "/dead-letters", bearer(token))[0] == expected


def test_without_a_token_it_is_401_but_healthz_and_metrics_stay_open(provider, engine) -> None:
    identity = authenticator(provider.url, engine)

    async def go() -> list[tuple[int, str | None]]:
        async with api(identity, engine) as client:
            answers = []
            for path in ("/trials", "/alerts", "/healthz", "/metrics"):
                response = await client.get(path)
                answers.append((response.status, response.headers.get("WWW-Authenticate")))
            return answers

    assert asyncio.run(go()) == [(401, "Bearer"), (401, "Bearer"), (200, None), (200, None)]


def test_an_unreachable_identity_provider_is_a_503_not_a_500(keys, engine) -> None:
    identity = authenticator(f"http://127.0.0.1:{free_port()}/jwks", engine)
    token = keys["first"].sign(claims())
    status, body = get(identity, engine, "/trials", bearer(token))
    assert (status, body) == (503, {"error": "the identity provider's keys cannot be fetched"})
