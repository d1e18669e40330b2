"""The API over HTTPS: the worker's ApiServer with a certificate from a test CA (trustme),
asked by real clients on 127.0.0.1 that trust that CA, trust another one, or speak HTTP;
and once through a real `cartwatch worker` on the embedded broker."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from prometheus_client import CollectorRegistry

from cartwatch.streams.cli.main import main
from cartwatch.streams.devtools.broker import free_port
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.client import ApiClient
from cartwatch.streams.http.tls import server_context
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.worker.main import ApiServer
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.settings import Settings
from tests.unit.test_api import ExampleView

TRIAL = "CART19-ALL-01"  # the contract's example trial (docs/examples/events.jsonl)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The server's chain and key, and the CA a client trusts, as the operator mounts them."""
    where = tmp_path_factory.mktemp("tls")
    issued = ca.issue_cert("127.0.0.1", "localhost")
    paths = {name: where / name for name in ("api.crt", "api.key", "ca.crt")}
    paths["api.crt"].write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(paths["api.key"]))
    ca.cert_pem.write_to_path(str(paths["ca.crt"]))
    return {name: str(path) for name, path in paths.items()}


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def serve(files: dict[str, str], scenario: Callable[[int], Awaitable[Any]]) -> Any:
    """Run `scenario(port)` against an ApiServer serving HTTPS, as the worker runs it."""

    async def run() -> Any:
        port = free_port()
        app = build_api(ExampleView(), Metrics(CollectorRegistry()), None)
        server = ApiServer(
            app, "127.0.0.1", port, server_context(files["api.crt"], files["api.key"])
        )
        await server.start()
        try:
            return await scenario(port)
        finally:
            await server.stop()

    return asyncio.run(run())


def test_a_client_trusting_the_ca_gets_the_trial_report_over_https(ca, files):
    async def scenario(port: int) -> tuple[int, dict]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"https://127.0.0.1:{port}/trials/{TRIAL}/report", ssl=trusting(ca)
            ) as response,
        ):
            return response.status, await response.json()

    status, report = serve(files, scenario)
    assert status == 200 and report["trial_id"] == TRIAL


def test_the_blocking_api_client_verifies_the_server_against_the_given_ca(files):
    async def scenario(port: int) -> dict:
        client = ApiClient(f"https://127.0.0.1:{port}", cafile=files["ca.crt"])
        return await asyncio.to_thread(client.json, "/healthz")

    assert serve(files, scenario) == {"consuming": True}


def test_plain_http_to_the_tls_port_gets_no_http_answer(files):
    async def scenario(port: int) -> BaseException | int:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/healthz") as response,
            ):
                return response.status
        except aiohttp.ClientError as exc:
            return exc

    answer = serve(files, scenario)
    assert isinstance(answer, aiohttp.ClientError), answer


def test_a_client_that_does_not_trust_the_ca_refuses_the_server(files):
    async def scenario(port: int) -> BaseException | int:
        other = trusting(trustme.CA())  # a CA that did not issue the server's certificate
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"https://127.0.0.1:{port}/healthz", ssl=other) as response,
            ):
                return response.status
        except aiohttp.ClientError as exc:
            return exc

    answer = serve(files, scenario)
    assert isinstance(answer, aiohttp.ClientConnectorCertificateError), answer
    assert answer.certificate_error.verify_message == "unable to get local issuer certificate"


@pytest.mark.parametrize(
    ("newest", "answered"),
    [("TLSv1_1", False), ("TLSv1_2", True), ("TLSv1_3", True)],
)
def test_the_server_speaks_tls_1_2_and_newer_only(ca, files, newest: str, answered: bool):
    client = trusting(ca)
    client.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets this client offer TLS 1.1 at all
    with warnings.catch_warnings():  # naming TLS 1.0 and 1.1 is deprecated: that's the point
        warnings.simplefilter("ignore", DeprecationWarning)
        client.minimum_version = ssl.TLSVersion.TLSv1
        client.maximum_version = getattr(ssl.TLSVersion, newest)

    async def scenario(port: int) -> BaseException | int:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"https://127.0.0.1:{port}/healthz", ssl=client) as response,
            ):
                return response.status
        except aiohttp.ClientError as exc:
            return exc

    answer = serve(files, scenario)
    if answered:
        assert answer == 200
    else:  # the server ends the handshake (a protocol_version alert, then the reset)
        assert isinstance(answer, aiohttp.ClientConnectorError), answer


def test_the_worker_stops_at_once_naming_a_missing_certificate(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("CARTWATCH_API_TLS_CERT", str(tmp_path / "missing.crt"))
    monkeypatch.setenv("CARTWATCH_API_TLS_KEY", str(tmp_path / "missing.key"))
    monkeypatch.setenv("CARTWATCH_KAFKA_BOOTSTRAP", "127.0.0.1:1")  # never reached
    assert main(["worker"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cartwatch worker: error: No such file or directory")


def test_a_cartwatch_worker_with_tls_settings_serves_https_only(broker, files, tmp_path: Path):
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        embedded_broker=True,
        topic_prefix="it-api-tls",
        api_port=free_port(),
        api_tls_cert=files["api.crt"],
        api_tls_key=files["api.key"],
    )
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path, api_cafile=files["ca.crt"])
    worker.start()  # waits for /healthz 200, over https, trusting the test CA only
    try:
        assert worker.api.json("/trials") == {"trials": []}
        plain = ApiClient(f"http://127.0.0.1:{settings.api_port}")
        with pytest.raises(OSError):  # no HTTP answer on the TLS port
            plain.get("/healthz")
        untrusting = ApiClient(f"https://127.0.0.1:{settings.api_port}")  # the system's CAs
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.get("/healthz")
    finally:
        worker.stop()
