"""The HTTP API over a state view: routes, the service token, and no patient id in /metrics."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, ServiceAccount
from cartwatch.streams.worker.metrics import Metrics
from tests.unit.api_support import ExampleView


def _call(path: str, token: str | None = None, header: str | None = None, view=None):
    async def go():
        metrics = Metrics(CollectorRegistry())
        metrics.events.labels("lab", "accepted").inc()
        service = ServiceAccount(SecretStr(token)) if token else None
        app = build_api(view or ExampleView(), metrics, Authenticator(service=service))
        async with TestClient(TestServer(app)) as client:
            headers = {"Authorization": header} if header else {}
            response = await client.get(path, headers=headers)
            return response.status, await response.text()

    return asyncio.run(go())


def test_trials_lists_the_known_trial_ids():
    status, body = _call("/trials")
    assert status == 200
    assert json.loads(body) == {"trials": ["CART19-ALL-01"]}


def test_the_report_has_the_contract_shape_as_of_a_given_instant():
    status, body = _call("/trials/CART19-ALL-01/report?as_of=2025-02-08T00:00:00%2B01:00")
    report = json.loads(body)
    assert status == 200
    assert report["trial_id"] == "CART19-ALL-01"
    assert report["efficacy"]["remission"]["n"] == 0  # the marrow comes in March
    assert report["safety"]["crs"]["by_grade"]["2"] == 1


@pytest.mark.parametrize(
    "as_of",
    [
        "2025-02-08T00:00:00+01:00",  # "+" unencoded: the query string makes it a space
        "2025-02-07T23:00:00z",  # RFC 3339 allows a lowercase z (and t), as events do
        "2025-02-07t23:00:00Z",
        "2025-02-07T23:00:00.000000Z",
    ],
)
def test_as_of_is_read_as_events_timestamps_are_also_unencoded(as_of: str):
    expected = _call("/trials/CART19-ALL-01/report?as_of=2025-02-08T00:00:00%2B01:00")
    assert _call(f"/trials/CART19-ALL-01/report?as_of={as_of}") == expected


def test_as_of_without_an_offset_is_a_clear_400():
    status, body = _call("/trials/CART19-ALL-01/report?as_of=2025-02-08T00:00:00")
    assert status == 400
    assert "offset" in body


@pytest.mark.parametrize("as_of", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00%2B14:00"])
def test_as_of_beyond_the_years_1_to_9999_in_utc_is_a_clear_400(as_of: str):
    for path in ("report", "patients/S01-0007", "toxicity-boundary"):
        status, body = _call(f"/trials/CART19-ALL-01/{path}?as_of={as_of}")
        assert (status, json.loads(body)["error"][:8]) == (400, "as_of: '")
        assert "out of range" in body


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nonexistent", 404),
        ("GET", "/trials/T/patients/S/01", 404),
        ("POST", "/trials", 405),
    ],
)
def test_errors_aiohttp_raises_itself_are_json_too(method: str, path: str, status: int):
    async def go():
        app = build_api(ExampleView(), Metrics(CollectorRegistry()), None)
        async with TestClient(TestServer(app)) as client:
            response = await client.request(method, path)
            return response.status, response.content_type, await response.json()

    answer, content_type, body = asyncio.run(go())
    assert (answer, content_type) == (status, "application/json")
    assert body["error"] in {"not found", "method not allowed"}


def test_an_unknown_trial_or_patient_is_404():
    assert _call("/trials/NOPE/report")[0] == 404
    assert _call("/trials/CART19-ALL-01/patients/NOPE")[0] == 404


def test_a_patients_state_shows_response_and_worst_grades():
    status, body = _call("/trials/CART19-ALL-01/patients/S01-0007")
    state = json.loads(body)
    assert status == 200
    assert state["best_response"] == "CR"
    assert state["mrd_negative"] is True
    assert (state["crs_worst_grade"], state["icans_worst_grade"]) == (2, 2)


def test_alerts_are_newest_first_and_filter_by_trial():
    alerts = json.loads(_call("/alerts?trial_id=CART19-ALL-01")[1])["alerts"]
    graded = [a["rule"] for a in alerts if a["rule"] in ("crs_grade", "icans_grade")]
    assert graded == ["icans_grade", "crs_grade"]
    assert json.loads(_call("/alerts?trial_id=OTHER")[1])["alerts"] == []


def test_alerts_without_a_database_say_nothing_of_their_delivery():
    alerts = json.loads(_call("/alerts")[1])["alerts"]
    assert alerts and {(a["delivery_status"], a["delivered_at"]) for a in alerts} == {(None, None)}


def test_with_a_token_every_endpoint_but_healthz_and_metrics_answers_401_without_it():
    for path in ("/trials", "/alerts", "/trials/CART19-ALL-01/report"):
        assert _call(path, token="s3cret")[0] == 401
        assert _call(path, token="s3cret", header="Bearer wrong")[0] == 401
        assert _call(path, token="s3cret", header="Bearer s3cret")[0] == 200
    assert _call("/healthz", token="s3cret")[0] == 200
    assert _call("/metrics", token="s3cret")[0] == 200


def test_the_bearer_scheme_is_read_in_any_case():
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert _call("/trials", token="s3cret", header=f"{scheme} s3cret")[0] == 200
    assert _call("/trials", token="s3cret", header="Basic s3cret")[0] == 401


def test_a_401_is_json_with_a_reason_and_asks_for_a_bearer_token():
    async def go():
        service = ServiceAccount(SecretStr("s3cret"))
        app = build_api(ExampleView(), Metrics(CollectorRegistry()), Authenticator(service=service))
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/trials", headers={"Authorization": "Bearer wrong"})
            return response.status, response.headers["WWW-Authenticate"], await response.json()

    status, challenge, body = asyncio.run(go())
    assert (status, challenge) == (401, "Bearer")
    assert body == {"error": "unknown bearer token"}


def test_the_service_token_reads_but_does_not_see_dead_letters_unless_given_the_role():
    async def go(roles: frozenset[str]) -> int:
        service = ServiceAccount(SecretStr("s3cret"), roles)
        app = build_api(ExampleView(), Metrics(CollectorRegistry()), Authenticator(service=service))
        async with TestClient(TestServer(app)) as client:
            response = await client.get("/dead-letters", headers={"Authorization": "Bearer s3cret"})
            return response.status

    assert asyncio.run(go(frozenset({"viewer"}))) == 403
    assert asyncio.run(go(frozenset({"data-manager"}))) == 503  # allowed; no database here


def test_healthz_is_503_until_the_worker_consumes():
    assert _call("/healthz", view=ExampleView(consuming=False))[0] == 503


def test_metrics_expose_the_counters_in_prometheus_format():
    status, body = _call("/metrics")
    assert status == 200
    assert 'cartwatch_events_processed_total{outcome="accepted",type="lab"} 1.0' in body


def test_the_toxicity_boundary_shows_its_table_and_where_the_trial_stands():
    status, body = _call("/trials/CART19-ALL-01/toxicity-boundary")
    boundary = json.loads(body)
    assert status == 200
    assert boundary["status"]["n_dlt"] == 0
    table = boundary["table"]
    assert [row["n_evaluable"] for row in table] == list(range(1, boundary["max_patients"] + 1))
    stops = [row["stop_at_dlt"] for row in table]
    assert all(s is None or 1 <= s <= n for n, s in enumerate(stops, start=1))
    assert any(s is not None for s in stops)
    assert _call("/trials/NOPE/toxicity-boundary")[0] == 404
