"""GET /trials/{trial_id}/report.pdf: the DMC report of the worker's records, as a viewer;
errors in JSON as every other answer of the API."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, ServiceAccount
from cartwatch.streams.worker.metrics import Metrics
from tests.unit.test_api import ExampleView

REPORT = "/trials/CART19-ALL-01/report.pdf"


def _get(path: str, *, token: str | None = None):
    async def go():
        service = ServiceAccount(SecretStr("s3cret")) if token is not None else None
        app = build_api(ExampleView(), Metrics(CollectorRegistry()), Authenticator(service=service))
        async with TestClient(TestServer(app)) as client:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.get(path, headers=headers)
            return response.status, response.headers, await response.read()

    return asyncio.run(go())


def test_the_report_is_a_pdf_of_the_trial_as_of_the_cut():
    status, headers, body = _get(f"{REPORT}?as_of=2025-06-01T00:00:00Z")
    assert status == 200
    assert headers["Content-Type"] == "application/pdf"
    assert body.startswith(b"%PDF-") and b"%%EOF" in body[-64:]
    assert 'filename="CART19-ALL-01-dmc-report.pdf"' in headers["Content-Disposition"]


def test_an_unknown_trial_is_a_json_404():
    status, _, body = _get("/trials/NOPE/report.pdf")
    assert (status, json.loads(body)) == (404, {"error": "unknown trial"})


def test_a_cut_before_any_data_is_a_json_404():
    status, _, body = _get(f"{REPORT}?as_of=2000-01-01T00:00:00Z")
    assert status == 404 and "no data of the trial" in json.loads(body)["error"]


def test_a_bad_as_of_is_a_json_400():
    status, _, body = _get(f"{REPORT}?as_of=yesterday")
    assert status == 400 and json.loads(body)["error"].startswith("as_of:")


def test_the_report_needs_an_identity_with_the_viewer_role():
    assert _get(REPORT, token="")[0] == 401
    assert _get(REPORT, token="s3cret")[0] == 200  # the service account: viewer
