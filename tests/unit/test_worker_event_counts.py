"""`cartwatch_events_processed_total` after a worker batch: every message counted once
under its type and outcome, an invalid one under the type it can be read as."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cartwatch.streams.worker.app import Worker
from tests.unit.builders import at, infusion
from tests.unit.worker_doubles import Record, processed, settle, worker_with_doubles


def _on(worker: Worker, suffix: str, raw: bytes | None, offset: int) -> Record:
    """A message as read from `<prefix>.<suffix>`, keyed by patient P1."""
    return Record(worker.settings.topic(suffix), 0, offset, b"P1", raw)  # type: ignore[arg-type]


def _run_batch(worker: Worker, changelogs: list, events: list[Record]) -> None:
    async def run() -> None:
        task = asyncio.ensure_future(processed(worker, events))
        while not task.done():
            for changelog in changelogs:
                changelog.ack_all()
            await settle()
        task.result()

    asyncio.run(run())


def _counts(worker: Worker) -> dict[tuple[str, str], float]:
    (family,) = [
        m for m in worker.metrics.registry.collect() if m.name == "cartwatch_events_processed"
    ]
    return {
        (s.labels["type"], s.labels["outcome"]): s.value
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_invalid_messages_count_under_their_named_type_else_their_topics(tmp_path: Path):
    worker, *changelogs = worker_with_doubles(tmp_path)
    bad_lab = json.dumps({"event_id": "l1", "type": "lab", "patient_id": "P1"}).encode()
    unnamed = json.dumps({"event_id": "o1", "type": "vitals", "patient_id": "P1"}).encode()
    good = json.dumps(infusion(at(0))).encode()
    events = [
        _on(worker, "infusions", good, 0),
        _on(worker, "labs", bad_lab, 1),
        _on(worker, "infusions", bad_lab, 2),  # the wrong topic: still a lab message
        _on(worker, "observations", unnamed, 3),  # names no known type: its topic's
        _on(worker, "dispositions", b"not json", 4),
        _on(worker, "adverse-events", None, 5),  # a tombstone
    ]
    _run_batch(worker, changelogs, events)

    assert _counts(worker) == {
        ("infusion", "accepted"): 1,
        ("lab", "invalid"): 2,
        ("observation", "invalid"): 1,
        ("disposition", "invalid"): 1,
        ("adverse_event", "invalid"): 1,
    }


def test_a_message_from_a_topic_of_no_type_naming_none_counts_as_unknown(tmp_path: Path):
    worker, *changelogs = worker_with_doubles(tmp_path)
    named = json.dumps({"type": "observation", "patient_id": "P1"}).encode()
    free_text = json.dumps({"type": "P1 had CRS grade 3", "patient_id": "P1"}).encode()
    _run_batch(
        worker,
        changelogs,
        [_on(worker, "legacy", named, 0), _on(worker, "legacy", free_text, 1)],
    )

    # The label holds one of six fixed values, never text from a message.
    assert _counts(worker) == {("observation", "invalid"): 1, ("unknown", "invalid"): 1}
