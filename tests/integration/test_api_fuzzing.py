"""Schemathesis against a live worker, from the worker's own /openapi.json: no request gets
a 5xx, and every answer is one the document describes (status, media type, schema); every
4xx is JSON with a string `error`.

Each JSON-API operation runs positive and negative cases (up to CASES_PER_OPERATION of
Hypothesis's, plus schemathesis's examples and coverage cases), then a stateful run follows
the document's links (GET /alerts -> POST /alerts/{alert_id}/ack with a listed alert's id,
GET /trials -> the report...). The desk's pages are fuzzed too, for 5xx, status and media
type only: their bodies are HTML, which no schema describes beyond "a string".

Cases run are counted per operation and printed at the end (`-s` shows them) and checked:
every operation ran, and the stateful run acknowledged a real alert.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.live_api import TOKEN, LiveWorker, live_worker

pytestmark = pytest.mark.integration

CASES_PER_OPERATION = 60
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CASES: Counter[str] = Counter()  # operation -> cases run one by one
LINKED: Counter[str] = Counter()  # operation -> steps of the stateful run
STATUSES: Counter[tuple[str, int]] = Counter()  # (operation, status) -> answers


def error_answers_say_why(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every 4xx of the JSON API is a JSON object with a string `error`."""
    if not 400 <= response.status_code < 500 or case.operation.path.startswith("/desk"):
        return None
    body = json.loads(response.content)
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    return True


API_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_answers_say_why,
]
DESK_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
BOUNDED = settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,  # the same cases every run: a failure here is not a flake
)


@pytest.fixture(scope="module")
def live(broker, tmp_path_factory) -> Iterator[LiveWorker]:
    with live_worker(broker, tmp_path_factory.mktemp("fuzzing")) as running:
        yield running


@pytest.fixture(scope="module")
def api_schema(live: LiveWorker) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "cache": {"enabled": False},
            "auth": {"openapi": {"bearerAuth": {"bearer": TOKEN}}},
        }
    )
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=config)


json_api = schemathesis.pytest.from_fixture("api_schema").exclude(tag="desk")
desk = schemathesis.pytest.from_fixture("api_schema").include(tag="desk")


def _count(case: schemathesis.Case, status: int, cases: Counter[str] = CASES) -> None:
    cases[case.operation.label] += 1
    STATUSES[(case.operation.label, status)] += 1


@json_api.parametrize()
@BOUNDED
def test_no_request_gets_a_5xx_or_an_answer_the_document_does_not_describe(case):
    response = case.call_and_validate(headers=AUTH, checks=API_CHECKS)
    _count(case, response.status_code)


@desk.parametrize()
@settings(BOUNDED, max_examples=CASES_PER_OPERATION // 3)
def test_no_request_to_the_desk_gets_a_5xx_or_an_undescribed_status(case, live: LiveWorker):
    # The Origin a page of the desk sends: its forms are read, not refused as another site's.
    headers = AUTH | {"Origin": live.url}
    response = case.call_and_validate(headers=headers, checks=DESK_CHECKS)
    _count(case, response.status_code)


def test_following_the_links_acknowledges_a_listed_alert_once(api_schema):
    workflow = api_schema.exclude(tag="desk").as_state_machine()
    acknowledgements: Counter[int] = Counter()

    class CountedWorkflow(workflow):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):
            return {"headers": AUTH}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            _count(case, response.status_code, LINKED)
            if case.operation.label == "POST /alerts/{alert_id}/ack":
                acknowledgements[response.status_code] += 1
            case.validate_response(response, checks=API_CHECKS, transport_kwargs=kwargs)

    CountedWorkflow.run(settings=settings(BOUNDED, max_examples=40, stateful_step_count=6))
    # GET /alerts lists the newest first: the link reaches a real alert and its first
    # acknowledgement stands; a later one along the link is a 409 (how many the seeded run
    # makes depends on the document's operations; the 409 itself: test_acknowledgement.py).
    assert acknowledgements[200] == 1, acknowledgements
    assert set(acknowledgements) <= {200, 400, 401, 404, 409}, acknowledgements


def test_every_operation_ran_and_the_counts_are_shown(api_schema, capsys):
    operations = {result.ok().label for result in api_schema.get_all_operations()}
    assert operations <= set(CASES), operations - set(CASES)
    with capsys.disabled():
        print(f"\nschemathesis: {CASES.total()} cases one by one, {LINKED.total()} linked steps")
        for label in sorted(CASES):
            statuses = {s: n for (op, s), n in sorted(STATUSES.items()) if op == label}
            print(f"  {CASES[label]:5d} {LINKED[label]:5d}  {label}  {statuses}")
