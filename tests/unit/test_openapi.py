"""GET /openapi.json: a valid OpenAPI 3.1 document, open to anyone, naming every route of
the application; and the handlers' answers are what it says (each through its model)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, get_args

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, SecretStr

from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import ROLES, Authenticator, ServiceAccount
from cartwatch.streams.http.openapi import openapi_document, operations
from cartwatch.streams.http.schemas import Role
from cartwatch.streams.worker.metrics import Metrics
from tests.unit.api_support import ExampleView

TOKEN = "s3cret"
VIEWER = {"Authorization": f"Bearer {TOKEN}"}
TRIAL = "/trials/CART19-ALL-01"


def _app(view: ExampleView | None = None):
    service = ServiceAccount(SecretStr(TOKEN), frozenset({"viewer"}))
    return build_api(
        view or ExampleView(), Metrics(CollectorRegistry()), Authenticator(service=service)
    )


def _get(path: str, headers: dict[str, str] | None = None, view: ExampleView | None = None):
    async def go() -> tuple[int, str, Any]:
        async with TestClient(TestServer(_app(view))) as client:
            response = await client.get(path, headers=headers)
            return response.status, response.content_type, await response.json()

    return asyncio.run(go())


def _model(operation_id: str, status: int) -> type[BaseModel]:
    """The model the document gives the operation's answer with that status."""
    (op,) = [op for op in operations() if op.operation_id == operation_id]
    body = op.all_responses()[status].body
    assert isinstance(body, type), f"{operation_id} {status} has no JSON model"
    return body


def test_the_document_is_valid_openapi_3_1():
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_document_names_every_route_of_the_application_and_nothing_else():
    routes = {
        (route.method, route.resource.canonical)
        for route in _app().router.routes()
        if route.method != "HEAD"  # every GET takes HEAD too (aiohttp's default), by HTTP
    }
    described = {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
    }
    assert described == routes


def test_the_document_is_open_to_anyone_even_when_a_token_is_configured():
    status, content_type, document = _get("/openapi.json")
    assert (status, content_type) == (200, "application/json")
    assert document == json.loads(json.dumps(openapi_document()))
    assert document["paths"]["/openapi.json"]["get"]["security"] == []


def test_every_operation_asks_for_a_bearer_token_and_says_401_and_403_but_the_open_ones():
    open_paths = {"/healthz", "/metrics", "/openapi.json", "/desk/sign-in", "/desk/sign-out"}
    for path, item in openapi_document()["paths"].items():
        for method, op in item.items():
            if path in open_paths:
                assert op["security"] == [], (method, path)
                continue
            assert {"bearerAuth": []} in op["security"], (method, path)
            if "desk" not in op["tags"]:
                assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_the_desks_pages_are_operations_tagged_desk_that_answer_html():
    desk = [
        op
        for path, item in openapi_document()["paths"].items()
        if path.startswith("/desk")
        for op in item.values()
    ]
    assert len(desk) == 8
    for op in desk:
        assert op["tags"] == ["desk"]
        media = {m for answer in op["responses"].values() for m in answer.get("content", {})}
        assert media <= {"text/html", "text/plain"}, op["operationId"]


def test_every_json_error_answer_has_a_schema_with_a_string_error():
    schemas = openapi_document()["components"]["schemas"]
    for item in openapi_document()["paths"].values():
        for op in item.values():
            for status, answer in op["responses"].items():
                content = answer.get("content", {}).get("application/json")
                if int(status) < 400 or content is None:
                    continue
                schema = schemas[content["schema"]["$ref"].rsplit("/", 1)[1]]
                assert schema["properties"]["error"]["type"] == "string"
                assert "error" in schema["required"] or op["operationId"] == "getHealth"


@pytest.mark.parametrize(
    ("path", "operation_id"),
    [
        ("/healthz", "getHealth"),
        ("/trials", "listTrials"),
        (f"{TRIAL}/report", "getTrialReport"),
        (f"{TRIAL}/report?as_of=2020-01-01T00:00:00Z", "getTrialReport"),  # nobody infused
        (f"{TRIAL}/patients/S01-0007", "getPatient"),
        (f"{TRIAL}/patients/S01-0007?as_of=2020-01-01T00:00:00Z", "getPatient"),  # not yet
        (f"{TRIAL}/toxicity-boundary", "getToxicityBoundary"),
        ("/alerts", "listAlerts"),
    ],
)
def test_each_answer_is_exactly_what_its_model_says(path: str, operation_id: str):
    status, content_type, body = _get(path, VIEWER)
    assert (status, content_type) == (200, "application/json")
    _model(operation_id, 200).model_validate(body)


def test_not_consuming_is_a_503_with_a_reason():
    status, _, body = _get("/healthz", view=ExampleView(consuming=False))
    assert status == 503
    assert _model("getHealth", 503).model_validate(body).error


@pytest.mark.parametrize(
    ("path", "headers", "status", "operation_id"),
    [
        ("/trials", {}, 401, "listTrials"),
        ("/dead-letters", VIEWER, 403, "listDeadLetters"),
        (f"{TRIAL}/report?as_of=yesterday", VIEWER, 400, "getTrialReport"),
        ("/trials/NOPE/report", VIEWER, 404, "getTrialReport"),
        (f"{TRIAL}/patients/NOPE", VIEWER, 404, "getPatient"),
        ("/trials/NOPE/toxicity-boundary", VIEWER, 404, "getToxicityBoundary"),
    ],
)
def test_each_error_is_exactly_what_its_model_says(path, headers, status, operation_id):
    answer, content_type, body = _get(path, headers)
    assert (answer, content_type) == (status, "application/json")
    assert _model(operation_id, status).model_validate(body)


def test_the_documents_roles_are_the_roles_identity_knows():
    assert get_args(Role) == ROLES


def test_a_403_names_the_role_the_operation_needs():
    _, _, body = _get("/dead-letters", VIEWER)
    assert body == {"error": "this needs the data-manager role", "role": "data-manager"}
