"""Local accounts: `cartwatch users add|revoke|list` against a real database while the API
runs on it; a new token works at once, a revoked one stops at once, only hashes are kept."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, select

from cartwatch.streams.cli.main import main
from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, LocalAccounts
from cartwatch.streams.storage.schema import metadata
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.worker.metrics import Metrics
from tests.integration.test_storage_support import alert, database, trial
from tests.unit.test_api import ExampleView

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with database(request.param, tmp_path) as engine:
        yield engine


def users(engine: Engine, *argv: str) -> int:
    """`cartwatch users ...` against the engine's database."""
    url = engine.url.render_as_string(hide_password=False)
    return main(["users", *argv, "--database-url", url])


def add(engine: Engine, capsys: pytest.CaptureFixture, name: str, *roles: str) -> str:
    """`cartwatch users add`; returns the token it printed."""
    assert users(engine, "add", name, *(arg for role in roles for arg in ("--role", role))) == 0
    return capsys.readouterr().out.strip()


def test_a_new_token_works_at_once_and_a_revoked_one_is_refused_at_once(
    engine: Engine, capsys: pytest.CaptureFixture
) -> None:
    raised = alert(trial(), "P1")
    with engine.begin() as conn:
        write_batch(conn, [raised])
    identity = Authenticator(local=LocalAccounts(engine))
    app = build_api(ExampleView(), Metrics(CollectorRegistry()), identity, engine)

    async def scenario() -> list[tuple[int, dict]]:
        answers = []
        async with TestClient(TestServer(app)) as client:

            async def call(method: str, path: str, token: str | None = None) -> None:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = await client.request(method, path, headers=headers, json={"by": "x"})
                answers.append((response.status, await response.json()))

            await call("GET", "/trials")  # no account yet, no other source: open, as before
            await call("POST", f"/alerts/{raised.alert_id}/ack")  # but nobody to name
            token = await asyncio.to_thread(add, engine, capsys, "dr.lee", "physician")
            await call("GET", "/trials")  # the first account closes the API
            await call("GET", "/trials", token)
            await call("POST", f"/alerts/{raised.alert_id}/ack", token)
            assert await asyncio.to_thread(users, engine, "revoke", "dr.lee") == 0
            await call("GET", "/trials", token)
        return answers

    opened, anonymous, closed, allowed, acknowledged, revoked = asyncio.run(scenario())
    assert opened[0] == allowed[0] == 200
    assert anonymous[0] == 401 and "no identity source is configured" in anonymous[1]["error"]
    assert closed == (401, {"error": "no bearer token (Authorization: Bearer <token>)"})
    assert acknowledged[0] == 200 and acknowledged[1]["acknowledged_by"] == "dr.lee"
    assert revoked == (401, {"error": "unknown or revoked token"})


def test_only_the_tokens_hash_is_stored(engine: Engine, capsys: pytest.CaptureFixture) -> None:
    token = add(engine, capsys, "dr.lee", "physician", "viewer")
    assert token.startswith("cw_") and len(token) > 40
    stored = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            stored += [repr(tuple(row)) for row in conn.execute(select(table))]
    everything = "\n".join(stored)
    assert token not in everything and token[3:] not in everything
    assert hashlib.sha256(token.encode()).hexdigest() in everything
    if engine.dialect.name == "sqlite":  # the file itself, journal and all
        path = Path(engine.url.database)
        for file in path.parent.glob(f"{path.name}*"):
            assert token[3:].encode() not in file.read_bytes()


def test_users_list_shows_names_roles_and_revocations_but_no_token(
    engine: Engine, capsys: pytest.CaptureFixture
) -> None:
    ada = add(engine, capsys, "dr.ada", "physician")
    add(engine, capsys, "dm.bo", "data-manager", "viewer")
    assert users(engine, "revoke", "dr.ada") == 0
    capsys.readouterr()
    assert users(engine, "list") == 0
    lines = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(name, roles) for name, roles, *_ in lines] == [
        ("dm.bo", "data-manager,viewer"),
        ("dr.ada", "physician"),
    ]
    assert lines[0][3] == "active" and lines[1][3].startswith("revoked 20")
    assert ada not in repr(lines)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["add", "dr.lee", "--role", "physician"], "user dr.lee exists"),
        (["add", "dr.new", "--role", "surgeon"], "unknown role 'surgeon'"),
        (["add", "dr.new"], "give the account a role"),
        (["add", "dr new", "--role", "viewer"], "name 'dr new'"),
        (["revoke", "nobody"], "no user nobody"),
    ],
)
def test_a_users_command_that_cannot_be_done_says_why_in_one_line_and_exits_1(
    engine: Engine, capsys: pytest.CaptureFixture, argv: list[str], reason: str
) -> None:
    add(engine, capsys, "dr.lee", "physician")
    assert users(engine, *argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"cartwatch users {argv[0]}: error: ") and reason in line
