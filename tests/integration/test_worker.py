"""The worker through the real embedded broker: same figures as replay, dead letters,
alerts, database rows, and a SIGKILL in mid-stream that changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.deadletter import read_dead_letter_headers
from streams.processes import WorkerProcess
from streams.simulator import simulate_trial
from streams.topics import create_topics
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
