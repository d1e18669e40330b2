"""Acknowledging an alert as the signed-in person: the name comes from the token, never the
body; a second acknowledgement is 409 naming the first; both are audited with the alert as
shown; only a physician acknowledges; an unusable body is a 400 with a reason."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cartwatch.streams.http.schemas import AlreadyAcknowledged, StoredAlert
from cartwatch.streams.storage.audit import (
    ALERT_ACKNOWLEDGE_REFUSED,
    ALERT_ACKNOWLEDGED,
    list_audit,
)
from cartwatch.streams.storage.upserts import write_batch
from tests.integration.identity_support import (
    JwksServer,
    SigningKey,
    api,
    authenticator,
    bearer,
    claims,
    migrated_sqlite,
    provider_keys,
)
from tests.integration.test_storage_support import alert, trial

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return provider_keys()


@pytest.fixture(scope="module")
def provider(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer(keys["first"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = migrated_sqlite(tmp_path_factory.mktemp("acknowledgement"))
    yield engine
    engine.dispose()


def stored_alert(engine: Engine, level: int = 2) -> str:
    """The id of a new, unacknowledged crs_grade alert in the database."""
    raised = alert(trial(), "P1", level=level)
    with engine.begin() as conn:
        write_batch(conn, [raised])
    return raised.alert_id


def test_the_acknowledger_is_the_tokens_subject_and_a_second_ack_is_409_both_audited(
    provider, keys, engine
) -> None:
    alert_id = stored_alert(engine, level=3)
    ada = keys["first"].sign(claims(sub="dr.ada"))
    bob = keys["first"].sign(claims(sub="dr.bob"))
    identity = authenticator(provider.url, engine)

    async def go() -> list[tuple[int, dict]]:
        answers = []
        async with api(identity, engine) as client:
            for token, body in ((ada, {"by": "dr.mallory", "note": "seen"}), (bob, {})):
                path = f"/alerts/{alert_id}/ack"
                response = await client.post(path, json=body, headers=bearer(token))
                answers.append((response.status, await response.json()))
        return answers

    (first_status, first), (second_status, second) = asyncio.run(go())
    assert first_status == 200
    assert (first["acknowledged_by"], first["ack_note"]) == ("dr.ada", "seen")
    assert second_status == 409
    StoredAlert.model_validate(first)  # as /openapi.json describes them
    AlreadyAcknowledged.model_validate(second)
    assert second == {
        "error": f"already acknowledged by dr.ada at {first['acknowledged_at']}",
        "acknowledged_by": "dr.ada",
        "acknowledged_at": first["acknowledged_at"],
    }
    refused, acknowledged = list_audit(engine, subject=f"alert:{alert_id}")
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
    alert_id = stored_alert(engine)

    async def go(roles: list[str]) -> tuple[int, int]:
        token = keys["first"].sign(claims(sub=f"someone-{'-'.join(roles)}", roles=roles))
        async with api(identity, engine) as client:
            ack = await client.post(f"/alerts/{alert_id}/ack", headers=bearer(token))
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
        # JSON may escape half a surrogate pair; Python reads it, no database stores it
        (b'{"note": "\\ud800"}', {}, '"note" must be text: it holds a lone surrogate'),
    ],
)
def test_an_unusable_ack_body_is_a_400_with_a_reason(
    provider, keys, engine, body: bytes, headers: dict, reason: str
) -> None:
    alert_id = stored_alert(engine)
    token = keys["first"].sign(claims())
    identity = authenticator(provider.url, engine)

    async def go() -> tuple[int, str, dict]:
        sent = {"Content-Type": "application/json", "Connection": "close"} | headers
        async with api(identity, engine) as client:
            path = f"/alerts/{alert_id}/ack"
            response = await client.post(path, data=body, headers=sent | bearer(token))
            return response.status, response.content_type, await response.json()

    assert asyncio.run(go()) == (400, "application/json", {"error": reason})


def test_gzip_bodies_that_are_valid_are_read(provider, keys, engine) -> None:
    alert_id = stored_alert(engine)
    token = keys["first"].sign(claims())
    identity = authenticator(provider.url, engine)

    async def go() -> tuple[int, dict]:
        sent = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        async with api(identity, engine) as client:
            path = f"/alerts/{alert_id}/ack"
            data = gzip.compress(b'{"note": "zipped"}')
            response = await client.post(path, data=data, headers=sent | bearer(token))
            return response.status, await response.json()

    status, body = asyncio.run(go())
    assert (status, body["ack_note"]) == (200, "zipped")
