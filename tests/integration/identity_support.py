"""Shared parts of the identity tests (no tests here): a real OIDC provider's key endpoint
(a JWKS server on 127.0.0.1, keys made with `cryptography`, tokens minted with PyJWT) and
the aiohttp API with OIDC and local accounts on a migrated SQLite database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, LocalAccounts, OidcAccounts
from cartwatch.streams.http.oidc import OidcVerifier
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.worker.metrics import Metrics
from tests.unit.test_api import ExampleView

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


def provider_keys() -> dict[str, SigningKey]:
    """The provider's key, its successor, an impostor under the first key's kid, an EC key."""
    first = rsa_key("key-1")
    return {
        "first": first,
        "rotated": rsa_key("key-2"),
        "impostor": rsa_key(first.kid),
        "ec": SigningKey("key-ec", ec.generate_private_key(ec.SECP256R1()), "ES256"),
    }


class JwksServer:
    """The provider's key endpoint: a real HTTP server in a thread, counting its fetches."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
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


def migrated_sqlite(tmp: Path) -> Engine:
    """An engine on a new SQLite database at the latest migration."""
    url = f"sqlite:///{tmp / 'cartwatch.db'}"
    upgrade(url)
    return make_engine(url)


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


def hs256_token(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """A token signed with HMAC-SHA256 (PyJWT refuses to make one with a PEM key)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    signing_input = f"{header}.{part(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"
