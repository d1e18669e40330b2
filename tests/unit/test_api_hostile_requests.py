"""Requests no browser or client of ours sends: each gets a 4xx with a reason (JSON on the
API, a page on the desk), never a 5xx (CONTRACT 7: no request gets a 5xx for what it sent)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, ServiceAccount
from cartwatch.streams.worker.metrics import Metrics
from tests.unit.api_support import ExampleView

TOKEN = "s3cret"
COOKIE = {"cartwatch_session": TOKEN}


def _post(path: str, headers: dict[str, str], data: bytes = b"", own_origin: bool = False):
    """(status, media type, body) of a POST with the session cookie (and, when
    `own_origin`, the Origin a page of this server sends)."""

    async def go() -> tuple[int, str, str]:
        service = ServiceAccount(SecretStr(TOKEN), frozenset({"admin"}))
        app = build_api(ExampleView(), Metrics(CollectorRegistry()), Authenticator(service=service))
        async with TestClient(TestServer(app)) as client:
            if own_origin:
                headers["Origin"] = str(client.make_url("/")).rstrip("/")
            response = await client.post(
                path, data=data, headers=headers, cookies=COOKIE, allow_redirects=False
            )
            return response.status, response.content_type, await response.text()

    return asyncio.run(go())


@pytest.mark.parametrize(
    "header", [{"Origin": "http://["}, {"Origin": "http://[zz]/"}, {"Referer": "http://[::1"}]
)
def test_an_origin_that_is_no_url_is_another_site_on_the_api_and_the_desk(header):
    status, media, body = _post("/alerts/T:P:crs_grade:2/ack", dict(header))
    assert (status, media) == (403, "application/json")
    assert "cross-origin" in body
    for path in ("/desk/alerts/T:P:crs_grade:2/ack", "/desk/sign-in", "/desk/sign-out"):
        status, media, body = _post(path, dict(header))
        assert (status, media) == (403, "text/html"), path
        assert "not sent from a page of this safety desk" in body


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=no-such-charset",
        "multipart/form-data; boundary=nowhere",  # a body without the boundary
        "multipart/form-data",  # no boundary at all (schemathesis sent it)
    ],
)
def test_a_desk_form_that_cannot_be_read_is_a_400_page(content_type: str):
    for path in ("/desk/alerts/T:P:crs_grade:2/ack", "/desk/sign-in"):
        headers = {"Content-Type": content_type}
        status, media, body = _post(path, headers, b"note=seen&token=x", own_origin=True)
        assert (status, media) == (400, "text/html"), path
        assert "The form could not be read" in body
