"""The worker through the real embedded broker: same figures as replay, dead letters,
alerts, database rows, and a SIGKILL in mid-stream that changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.kafka.deadletter import read_dead_letter_headers
from cartwatch.streams.kafka.topics import create_topics
from tests.integration.kafka_read import read_topic
from tests.integration.streaming import (
    alert_ids,
    api_report,
    assert_database_matches,
    reference,
    split,
    to_workers,
    wait_for_reports,
    wait_processed,
    wait_until_committed,
    wait_until_stored,
    worker_settings,
)
from tests.integration.test_storage_support import postgres_database


@pytest.fixture(scope="module")
def trial():
    return simulate_trial(seed=7)


@pytest.fixture
def database_url() -> Iterator[str]:
    """A new PostgreSQL database on the machine's cluster, dropped afterwards."""
    with postgres_database() as url:
        yield url


def test_the_worker_reports_what_replay_reports(broker, trial, tmp_path: Path, database_url):
    settings = worker_settings(broker, "it-same", 16101, database_url)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        first, rest = split(list(trial.lines()))
        expected = to_workers(first, settings)
        wait_processed(worker, expected)
        expected += to_workers(rest, settings)
        wait_processed(worker, expected)
        wanted = reference(trial.lines(), trial.data_cut)

        assert api_report(worker, trial.trial_id, trial.data_cut) == wanted.report["trials"][0]

        on_topic = alert_ids(settings)
        assert sorted(set(on_topic)) == sorted(a.alert_id for a in wanted.alerts)
        api_alerts = worker.api.json(f"/alerts?trial_id={trial.trial_id}")["alerts"]
        assert sorted(a["alert_id"] for a in api_alerts) == sorted(set(on_topic))

        dead = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
        assert sorted(r.value for r in dead) == sorted(trial.invalid)
        for record in dead:
            headers = read_dead_letter_headers(record.headers)
            assert headers["reasons"], record.value
            assert headers["topic"] in (*settings.input_topics, "test")

        assert_database_matches(database_url, wanted, on_topic, dead)
        listed = worker.api.json("/dead-letters")["dead_letters"]
        from_worker = [r for r in dead if read_dead_letter_headers(r.headers)["partition"] >= 0]
        assert sorted(d["reasons"] for d in listed) == sorted(
            read_dead_letter_headers(r.headers)["reasons"] for r in from_worker
        )

        metrics = worker.api.get("/metrics")[1].decode()
        assert "cartwatch_events_processed_total" in metrics
        patients = {json.loads(raw)["patient_id"] for raw in first}
        assert not [p for p in patients if p in metrics]
        log = (tmp_path / "worker.log").read_text()
        assert " [INFO] " in log
        assert not [p for p in patients if p in log]  # no patient id in the worker's logs

        assert worker.api.get("/healthz")[0] == 200
        anonymous = type(worker.api)(worker.api.base_url)
        assert anonymous.get("/trials")[0] == 401
        assert anonymous.get(f"/trials/{trial.trial_id}/report")[0] == 401
        assert anonymous.get("/metrics")[0] == 200
        assert anonymous.get("/dead-letters")[0] == 401
    finally:
        worker.stop()


def test_a_sigkill_in_mid_stream_changes_no_figure_and_no_alert_id(
    broker, trial, tmp_path, database_url
):
    settings = worker_settings(broker, "it-kill", 16102, database_url)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        first, rest = split(list(trial.lines()))
        expected = to_workers(first, settings)
        wait_processed(worker, expected)
        expected += to_workers(rest, settings)
        while worker.api.processed_total() < expected / 2:
            assert worker.alive(), worker.log_tail()
            time.sleep(0.1)
        worker.kill()
        worker.start()  # a new process: its counters start at zero, so wait on the figures
        wanted = reference(trial.lines(), trial.data_cut)
        wait_for_reports([worker], wanted, trial.data_cut)
        wait_until_stored(settings, wanted, database_url)
        wait_until_committed([worker])
    finally:
        worker.stop()


def _infusion(patient: str, event_id: str, occurred_at: str = "2025-02-05T10:00:00+01:00") -> dict:
    return {
        "event_id": event_id,
        "type": "infusion",
        "trial_id": "T-BAD",
        "patient_id": patient,
        "occurred_at": occurred_at,
        "product": "CD19 CAR-T",
        "dose_cells_per_kg": 1e6,
    }


def test_bad_input_next_to_good_input_is_dead_lettered_and_stops_nothing(
    broker, tmp_path: Path, database_url
):
    # Each of these once stalled or lost good events (a robustness probe, 2026-11-30): a
    # message too large to forward as a dead letter failed every batch, and the events
    # read meanwhile were acknowledged unprocessed; a timestamp out of range in UTC or a NUL
    # in an id jammed the database writes (PostgreSQL); a patient keyed otherwise got a
    # second record that a restart overwrote.
    settings = worker_settings(broker, "it-bad", 16103, database_url)
    create_topics(settings)
    labs, infusions = settings.topic("labs"), settings.topic("infusions")
    huge = b'{"junk": "' + b"y" * 1_048_380 + b"!"
    bad = [
        (labs, b"P1", huge),
        (infusions, b"P2", json.dumps(_infusion("P2", "b1", "9999-12-31T20:00:00-12:00"))),
        (infusions, b"P3\x00x", json.dumps(_infusion("P3\x00x", "b2"))),
        (infusions, b"someone-else", json.dumps(_infusion("P4", "b3"))),
    ]
    good = [(infusions, p.encode(), json.dumps(_infusion(p, f"g-{p}"))) for p in ("P1", "P5")]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for topic, key, value in [*bad, *good]:
        producer.send(topic, key=key, value=value if isinstance(value, bytes) else value.encode())
    producer.flush()
    producer.close()
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        wait_processed(worker, len(bad) + len(good))
        patients = worker.api.json("/trials/T-BAD/report")["n_infused"]
        assert patients == 2  # P1 and P5, and no other
        dead = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
        reasons = {r.key: read_dead_letter_headers(r.headers) for r in dead}
        assert set(reasons) == {key for _, key, _ in bad}
        assert reasons[b"P1"]["value_omitted"].startswith(f"value of {len(huge)} bytes")
        assert "out of range" in reasons[b"P2"]["reasons"][0]
        assert reasons[b"P3\x00x"]["reasons"] == [
            "patient_id: must not contain the NUL character (U+0000)"
        ]
        assert reasons[b"someone-else"]["reasons"] == [
            "Kafka key: not the message's patient_id (it must be)"
        ]
        listed = worker.api.json("/dead-letters")["dead_letters"]
        assert len(listed) == len(bad)
        assert worker.api.get("/healthz")[0] == 200
    finally:
        worker.stop()
