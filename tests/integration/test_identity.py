"""People signed in at the identity provider: OIDC tokens checked against a real JWKS
server on 127.0.0.1 (keys made with `cryptography`, tokens minted with PyJWT), through the
aiohttp API on a real, migrated SQLite database."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, LocalAccounts, OidcAccounts
from cartwatch.streams.http.oidc import OidcVerifier
from cartwatch.streams.storage.audit import (
    ALERT_ACKNOWLEDGE_REFUSED,
    ALERT_ACKNOWLEDGED,
    list_audit,
)
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.worker.metrics import Metrics
from tests.integration.test_storage_support import alert, free_port, trial
from tests.unit.test_api import ExampleView

pytestmark = pytest.mark.integration

ISSUER = "https://id.example.org/realms/hospital"
AUDIENCE = "cartwatch"


@dataclass(frozen=True)
class SigningKey:
    """One of the provider's keys: it signs tokens and is published as a JWK."""

    kid: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    alg: str

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith("RS") else ECAlgorithm
        public = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return public | {"kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm=self.alg, headers={"kid": self.kid})


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


class JwksServer:
    """The provider's key endpoint: a real HTTP server in a thread, counting its fetches."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}/jwks"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    """The provider's key, its successor, an impostor under the first key's kid, an EC key."""
    first = rsa_key("key-1")
    return {
        "first": first,
        "rotated": rsa_key("key-2"),
        "impostor": rsa_key(first.kid),
        "ec": SigningKey("key-ec", ec.generate_private_key(ec.SECP256R1()), "ES256"),
    }


@pytest.fixture
def provider(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [keys["first"], keys["ec"]]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path_factory.mktemp('identity') / 'cartwatch.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def claims(**changes: Any) -> dict[str, Any]:
    """A physician's claims, valid for five minutes; a change of None drops the claim."""
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dr.ada", "iat": now, "exp": now + 300}
    base["roles"] = ["physician", "offline_access"]
    return {k: v for k, v in (base | changes).items() if v is not None}


def authenticator(
    jwks_url: str, engine: Engine, roles_claim: str = "roles", cooldown_s: float = 0.0
) -> Authenticator:
    verifier = OidcVerifier(ISSUER, AUDIENCE, jwks_url, refetch_cooldown_s=cooldown_s)
    return Authenticator(oidc=OidcAccounts(verifier, roles_claim), local=LocalAccounts(engine))


@asynccontextmanager
async def api(identity: Authenticator, engine: Engine) -> AsyncIterator[TestClient]:
    app = build_api(ExampleView(), Metrics(CollectorRegistry()), identity, engine)
    async with TestClient(TestServer(app)) as client:
        yield client


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


def get(identity: Authenticator, engine: Engine, path: str, headers: dict) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        async with api(identity, engine) as client:
            response = await client.get(path, headers=headers)
            return response.status, await response.json()

    return asyncio.run(go())


def status_of(provider: JwksServer, engine: Engine, token: str) -> int:
    return get(authenticator(provider.url, engine), engine, "/trials", bearer(token))[0]


def _hs256(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """A token signed with HMAC-SHA256 (PyJWT refuses to make one with a PEM key)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signing_input = f"{header}.{part(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


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
    confused = _hs256(claims(), public_pem, kid="key-1")  # "algorithm confusion"
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


def test_the_acknowledger_is_the_tokens_subject_and_a_second_ack_is_409_both_audited(
    provider, keys, engine
) -> None:
    raised = alert(trial(), "P1", level=3)
    with engine.begin() as conn:
        write_batch(conn, [raised])
    ada = keys["first"].sign(claims(sub="dr.ada"))
    bob = keys["first"].sign(claims(sub="dr.bob"))
    identity = authenticator(provider.url, engine)

    async def go() -> list[tuple[int, dict]]:
        answers = []
        async with api(identity, engine) as client:
            for token, body in ((ada, {"by": "dr.mallory", "note": "seen"}), (bob, {})):
                path = f"/alerts/{raised.alert_id}/ack"
                response = await client.post(path, json=body, headers=bearer(token))
                answers.append((response.status, await response.json()))
        return answers

    (first_status, first), (second_status, second) = asyncio.run(go())
    assert first_status == 200
    assert (first["acknowledged_by"], first["ack_note"]) == ("dr.ada", "seen")
    assert second_status == 409
    assert second == {
        "error": f"already acknowledged by dr.ada at {first['acknowledged_at']}",
        "acknowledged_by": "dr.ada",
        "acknowledged_at": first["acknowledged_at"],
    }
    refused, acknowledged = list_audit(engine, subject=f"alert:{raised.alert_id}")
    assert (acknowledged["action"], acknowledged["actor"]) == (ALERT_ACKNOWLEDGED, "dr.ada")
    assert acknowledged["details"]["alert"] == {
        "rule": "crs_grade",
        "level": 3,
        "value": 3.0,
        "severity": "critical",
        "triggered_at": "2025-02-07T13:00:00+00:00",
    }
    assert (refused["action"], refused["actor"]) == (ALERT_ACKNOWLEDGE_REFUSED, "dr.bob")
    assert refused["details"]["acknowledged_by"] == "dr.ada"


def test_only_a_physician_acknowledges_and_only_a_data_manager_sees_dead_letters(
    provider, keys, engine
) -> None:
    identity = authenticator(provider.url, engine)
    raised = alert(trial(), "P1")
    with engine.begin() as conn:
        write_batch(conn, [raised])

    async def go(roles: list[str]) -> tuple[int, int]:
        token = keys["first"].sign(claims(sub=f"someone-{'-'.join(roles)}", roles=roles))
        async with api(identity, engine) as client:
            ack = await client.post(f"/alerts/{raised.alert_id}/ack", headers=bearer(token))
            dead = await client.get("/dead-letters", headers=bearer(token))
            return ack.status, dead.status

    assert asyncio.run(go(["viewer"])) == (403, 403)
    assert asyncio.run(go(["data-manager"])) == (403, 200)
    assert asyncio.run(go(["physician"])) == (200, 403)
    assert asyncio.run(go(["admin"])) == (409, 200)  # the physician acknowledged it first


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b'{"note": ', {}, "the body is not valid JSON"),
        (b'{"note": "\xff"}', {}, "the body is not valid JSON"),
        (b"[" * 100_000, {}, "the body's JSON is nested too deeply"),
        (
            b"{}",
            {"Content-Type": "application/json; charset=no-such-charset"},
            "unknown charset 'no-such-charset'",
        ),
        (
            b"\x1f\x8b not gzip",
            {"Content-Encoding": "gzip"},
            "the body cannot be decoded (Content-Encoding)",
        ),
        (b'["a list"]', {}, "the body must be a JSON object"),
        (b'{"note": 7}', {}, '"note" must be a string'),
        (json.dumps({"note": "a\x00b"}).encode(), {}, '"note" must not contain the NUL character'),
    ],
)
def test_an_unusable_ack_body_is_a_400_with_a_reason(
    provider, keys, engine, body: bytes, headers: dict, reason: str
) -> None:
    raised = alert(trial(), "P1")
    with engine.begin() as conn:
        write_batch(conn, [raised])
    token = keys["first"].sign(claims())
    identity = authenticator(provider.url, engine)

    async def go() -> tuple[int, str, dict]:
        sent = {"Content-Type": "application/json", "Connection": "close"} | headers
        async with api(identity, engine) as client:
            path = f"/alerts/{raised.alert_id}/ack"
            response = await client.post(path, data=body, headers=sent | bearer(token))
            return response.status, response.content_type, await response.json()

    assert asyncio.run(go()) == (400, "application/json", {"error": reason})


def test_gzip_bodies_that_are_valid_are_read(provider, keys, engine) -> None:
    raised = alert(trial(), "P1")
    with engine.begin() as conn:
        write_batch(conn, [raised])
    token = keys["first"].sign(claims())
    identity = authenticator(provider.url, engine)

    async def go() -> tuple[int, dict]:
        sent = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        async with api(identity, engine) as client:
            path = f"/alerts/{raised.alert_id}/ack"
            data = gzip.compress(b'{"note": "zipped"}')
            response = await client.post(path, data=data, headers=sent | bearer(token))
            return response.status, await response.json()

    status, body = asyncio.run(go())
    assert (status, body["ack_note"]) == (200, "zipped")
