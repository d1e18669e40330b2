"""Dead letters a page at a time, with payloads over 64 KiB left out of the list and fetched
whole by id: the storage on SQLite and PostgreSQL, the API and `cartwatch dlq` on top."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, update

from cartwatch.streams.cli.main import main
from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, LocalAccounts
from cartwatch.streams.storage.dead_letters import (
    LISTED_BYTES_MAX,
    dead_letter_page,
    get_dead_letter,
)
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.items import DeadLetter
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.schema import dead_letters
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.storage.users import add_user
from cartwatch.streams.worker.metrics import Metrics
from tests.integration.test_delivery_state import AlertTableView
from tests.integration.test_storage_support import database, free_port, postgres_database

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BAD_LIMIT = "limit must be a whole number from 1 to 1000"
BAD_AFTER = "after must be the next of an earlier page (a whole number)"


def message(size: int, n: int = 0) -> bytes:
    """A lab message of exactly `size` bytes: a producer's runaway free-text field."""
    head = b'{"event_id": "big-%d", "type": "lab", "patient_id": "P1", "note": "' % n
    return head + b"x" * (size - len(head) - 2) + b'"}'


def put(engine: Engine, *values: bytes | None, key: bytes | None = b"P1", first: int = 0):
    """Dead letters of `values` at offsets first, first + 1 ..., in one batch."""
    with engine.begin() as conn:
        write_batch(
            conn,
            [
                DeadLetter("site.labs", 0, first + i, key, value, ["note: too long"])
                for i, value in enumerate(values)
            ],
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    with database(request.param, tmp_path) as engine:
        yield engine


@contextmanager
def database_at(url: str) -> Iterator[Engine]:
    """An engine on the database at `url`, migrated; disposed on exit."""
    upgrade(url)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def test_pages_follow_the_ids_down_and_end_with_no_next(engine: Engine) -> None:
    put(engine, *(message(100, n) for n in range(7)))
    first = dead_letter_page(engine, limit=3)
    second = dead_letter_page(engine, limit=3, after=first.next)
    last = dead_letter_page(engine, limit=3, after=second.next)
    put(engine, message(100, 99), first=7)  # arrives meanwhile: shifts no page
    ids = [[d["id"] for d in page.dead_letters] for page in (first, second, last)]
    assert ids == [[7, 6, 5], [4, 3, 2], [1]]
    assert (first.next, second.next, last.next) == (5, 2, None)
    assert dead_letter_page(engine, limit=3, after=5) == second
    assert dead_letter_page(engine, limit=8).next is None  # exactly all: no empty page after


def test_a_payload_over_64_kib_is_left_out_of_the_list_and_fetched_whole(engine: Engine) -> None:
    at_most, over = message(LISTED_BYTES_MAX, 1), message(LISTED_BYTES_MAX + 1, 2)
    put(engine, at_most, over, None)
    put(engine, b"{}", key=b"k" * (LISTED_BYTES_MAX + 1), first=3)
    huge_key, tombstone, big, kept = dead_letter_page(engine).dead_letters

    assert (kept["value"], kept["value_omitted"], kept["value_size"]) == (
        at_most.decode(),
        False,
        LISTED_BYTES_MAX,
    )
    assert base64.b64decode(kept["value_base64"]) == at_most
    assert (big["value"], big["value_base64"]) == (None, None)
    assert (big["value_omitted"], big["value_size"]) == (True, LISTED_BYTES_MAX + 1)
    assert (tombstone["value"], tombstone["value_omitted"], tombstone["value_size"]) == (
        None,
        False,
        None,
    )
    assert (huge_key["key"], huge_key["key_omitted"], huge_key["value"]) == (None, True, "{}")
    whole = get_dead_letter(engine, big["id"])
    assert (whole["value"], whole["value_omitted"]) == (over.decode(), False)
    assert base64.b64decode(whole["value_base64"]) == over
    assert {k: v for k, v in whole.items() if not k.startswith("value")} == {
        k: v for k, v in big.items() if not k.startswith("value")
    }


def test_a_page_of_new_ones_skips_the_re_driven(engine: Engine) -> None:
    put(engine, *(message(100, n) for n in range(4)))
    with engine.begin() as conn:
        conn.execute(update(dead_letters).where(dead_letters.c.id == 3).values(status="redriven"))
    page = dead_letter_page(engine, status="new", limit=2)
    assert ([d["id"] for d in page.dead_letters], page.next) == ([4, 2], 2)
    assert [d["id"] for d in dead_letter_page(engine, status="new", after=2).dead_letters] == [1]


def _get(engine: Engine, paths: list[str], roles: list[str]) -> list[tuple[int, bytes]]:
    token = add_user(engine, f"user-{'-'.join(roles)}", roles, actor="test")
    identity = Authenticator(local=LocalAccounts(engine))

    async def go() -> list[tuple[int, bytes]]:
        app = build_api(AlertTableView([]), Metrics(CollectorRegistry()), identity, engine)
        answers = []
        async with TestClient(TestServer(app)) as client:
            for path in paths:
                response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                answers.append((response.status, await response.read()))
        return answers

    return asyncio.run(go())


def test_a_thousand_dead_letters_of_a_mib_each_list_in_under_a_megabyte() -> None:
    with postgres_database() as url, database_at(url) as engine:
        for batch in range(20):  # 1 GiB through the worker's writes, 50 MiB at a time
            put(engine, *(message(MIB, batch * 50 + n) for n in range(50)), first=batch * 50)
        put(engine, message(200, 1000), first=1000)  # one small one, newest
        (listed, one, viewer) = _get(
            engine, ["/dead-letters?limit=1000", "/dead-letters/500"], ["data-manager"]
        ) + _get(engine, ["/dead-letters/500"], ["viewer"])

    status, body = listed
    page = json.loads(body)
    assert status == 200 and len(body) < 1_000_000, len(body)
    assert len(page["dead_letters"]) == 1000 and page["next"] == 2
    newest, *large = page["dead_letters"]
    assert newest["value"] == message(200, 1000).decode()
    assert {(d["value"], d["value_omitted"], d["value_size"]) for d in large} == {(None, True, MIB)}
    status, body = one
    whole: dict[str, Any] = json.loads(body)
    assert status == 200 and (whole["id"], whole["value_size"]) == (500, MIB)
    assert base64.b64decode(whole["value_base64"]) == message(MIB, 499)
    assert whole["value"] == message(MIB, 499).decode()
    assert viewer[0] == 403


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/dead-letters?limit=0", 400, BAD_LIMIT),
        ("/dead-letters?limit=1001", 400, BAD_LIMIT),
        ("/dead-letters?limit=ten", 400, BAD_LIMIT),
        ("/dead-letters?limit=%D9%A1", 400, BAD_LIMIT),  # an Arabic-Indic one: no ASCII digit
        ("/dead-letters?after=", 400, BAD_AFTER),
        ("/dead-letters?after=-1", 400, BAD_AFTER),
        ("/dead-letters?after=1e3", 400, BAD_AFTER),
        ("/dead-letters?after=" + "9" * 19, 400, BAD_AFTER),  # beyond any id (a BIGINT)
        ("/dead-letters?status=old", 400, "status must be new or redriven"),
        ("/dead-letters/one", 400, "a dead letter's id is a whole number"),
        ("/dead-letters/0", 400, "a dead letter's id is a whole number"),
        ("/dead-letters/999999999", 404, "unknown dead letter"),
    ],
)
def test_a_bad_page_or_id_is_answered_with_its_reason(
    tmp_path: Path, path: str, status: int, reason: str
) -> None:
    with database("sqlite", tmp_path) as engine:
        ((answered, body),) = _get(engine, [path], ["data-manager"])
    assert (answered, json.loads(body)) == (status, {"error": reason})


def test_while_the_database_cannot_be_reached_dead_letters_answer_503_saying_so() -> None:
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")

    async def go() -> list[tuple[int, Any]]:
        app = build_api(AlertTableView([]), Metrics(CollectorRegistry()), None, engine)
        async with TestClient(TestServer(app)) as client:
            answers = [await client.get(p) for p in ("/dead-letters", "/dead-letters/1")]
            return [(a.status, await a.json()) for a in answers]

    try:
        unreachable = (503, {"error": "the database cannot be reached; try again"})
        assert asyncio.run(go()) == [unreachable, unreachable]
    finally:
        engine.dispose()


def test_cartwatch_dlq_lists_a_page_and_shows_a_large_one_whole(
    tmp_path: Path, capsysbinary
) -> None:
    url = f"sqlite:///{tmp_path / 'dlq.db'}"
    options = ["--database-url", url]
    assert main(["db", "upgrade", *options]) == 0
    with database_at(url) as engine:
        put(engine, message(100, 0), message(LISTED_BYTES_MAX + 1, 1), message(100, 2))
    capsysbinary.readouterr()

    assert main(["dlq", "list", "--values", "--limit", "2", *options]) == 0
    out, err = (part.decode() for part in capsysbinary.readouterr())
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines[::2]] == ["3", "2"]
    assert lines[3] == f"\t({LISTED_BYTES_MAX + 1} bytes, left out: cartwatch dlq show --id 2)"
    assert "older dead letters: --after 2" in err
    assert main(["dlq", "list", "--after", "2", *options]) == 0
    assert capsysbinary.readouterr().out.decode().split("\t")[0] == "1"
    assert main(["dlq", "show", "--id", "2", *options]) == 0
    assert capsysbinary.readouterr().out == message(LISTED_BYTES_MAX + 1, 1)
    assert main(["dlq", "show", "--id", "9", *options]) == 1
    with pytest.raises(SystemExit):
        main(["dlq", "list", "--limit", "1001", *options])
