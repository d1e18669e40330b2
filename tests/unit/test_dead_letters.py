"""A dead letter always fits on its topic: reasons of bounded size, and an original too large
to travel with its headers is kept in the database and named in a header instead."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cartwatch.models.codec import MAX_REASON_CHARS, MAX_REASONS, decode_event
from cartwatch.models.errors import InvalidEvent
from cartwatch.streams.kafka.deadletter import (
    dead_letter_headers,
    dead_letter_record,
    read_dead_letter_headers,
)
from cartwatch.streams.storage.items import DeadLetter
from cartwatch.streams.worker.batch import Batch
from tests.unit.builders import at, infusion
from tests.unit.worker_doubles import Record, processed, worker_with_doubles


def test_a_reason_quoting_a_huge_value_is_clipped():
    with pytest.raises(InvalidEvent) as caught:
        decode_event(json.dumps({**infusion(at(0)), "type": "x" * 100_000}))
    assert all(len(reason) < MAX_REASON_CHARS + 50 for reason in caught.value.reasons)
    assert any("characters more" in reason for reason in caught.value.reasons)


def test_thousands_of_failures_give_a_bounded_list_that_says_how_many_more():
    message = {
        "event_id": "e1",
        "type": "adverse_event",
        "trial_id": "T1",
        "patient_id": "P1",
        "occurred_at": at(1),
        "ae_id": "a1",
        "term": "CRS",
        "grade": 2,
        "onset_at": at(1),
        "treatments": list(range(1_000)),  # a thousand non-strings
    }
    with pytest.raises(InvalidEvent) as caught:
        decode_event(json.dumps(message))
    reasons = caught.value.reasons
    assert len(reasons) == MAX_REASONS + 1
    assert reasons[-1] == f"... and {1_000 - MAX_REASONS} more reasons of the same kinds"


def test_an_original_that_fits_travels_whole():
    headers = dead_letter_headers("t", 0, 5, ["why"])
    assert dead_letter_record(b"k", b"x" * 1_000, headers, 1_000_000) == (b"k", b"x" * 1_000)
    assert read_dead_letter_headers(headers)["value_omitted"] is None


def test_an_original_too_large_with_its_headers_is_omitted_and_named():
    headers = dead_letter_headers("t", 0, 5, ["why"])
    assert dead_letter_record(b"k", b"x" * 999_500, headers, 1_000_000) == (b"k", None)
    note = read_dead_letter_headers(headers)["value_omitted"]
    assert note.startswith("value of 999500 bytes, too large for the topic; kept in the database")


def test_a_key_too_large_goes_too():
    headers = dead_letter_headers("t", 0, 5, ["why"])
    assert dead_letter_record(b"k" * 999_500, b"{}", headers, 1_000_000) == (None, None)
    note = read_dead_letter_headers(headers)["value_omitted"]
    assert note.startswith("value of 2 bytes and key of 999500 bytes, too large for the topic")


def test_the_worker_dead_letters_a_message_the_broker_took_whole_but_too_large_to_forward(
    tmp_path: Path,
):
    # 1,048,391 bytes went onto the input topic; with the headers it no longer fit in the
    # producer's request, the send failed and the batch with it, again and again.
    worker, *_ = worker_with_doubles(tmp_path)
    producer = worker.app.producer.send.__self__
    huge = b'{"junk": "' + b"y" * 1_048_380 + b"!"
    labs = next(t for t, kind in worker.settings.input_topics.items() if kind == "lab")
    event = Record(labs, 1, 0, b"P1", huge)
    asyncio.run(processed(worker, [event]))
    ((topic, partition, key, value),) = producer.sent
    headers = read_dead_letter_headers(producer.headers[0])
    assert (topic, partition, key, value) == (worker.settings.dead_letter_topic, 1, b"P1", None)
    assert headers["offset"] == 0 and headers["reasons"][0].startswith("not valid JSON")
    assert headers["value_omitted"].startswith(f"value of {len(huge)} bytes")
    rows = [item for item in _batch_rows(worker, event) if isinstance(item, DeadLetter)]
    assert [row.value for row in rows] == [huge]  # the database keeps the bytes


def _batch_rows(worker, event):
    batch = Batch()
    batch.add(worker.trial.pipeline.handle(event.value, "lab"), event)
    return list(batch.storage_items(worker.store))


def test_a_dead_letter_is_counted_once_the_broker_has_it_not_per_attempt(tmp_path: Path):
    worker, *_ = worker_with_doubles(tmp_path)
    producer = worker.app.producer.send.__self__
    labs = next(t for t, kind in worker.settings.input_topics.items() if kind == "lab")
    event = Record(labs, 1, 0, b"P1", b"not json")
    accept = producer.send

    async def refuse(topic, *args):
        future = asyncio.get_running_loop().create_future()
        future.set_exception(ConnectionError("broker gone"))
        return future

    def counted() -> float:
        sample = {"source_topic": labs}
        return worker.metrics.registry.get_sample_value("cartwatch_dead_letters_total", sample)

    worker.app.producer.send = refuse
    with pytest.raises(ConnectionError):
        asyncio.run(processed(worker, [event]))
    assert counted() in (None, 0)
    worker.app.producer.send = accept
    asyncio.run(processed(worker, [event]))
    assert counted() == 1
