"""The worker through the real embedded broker: same figures as replay, dead letters,
alerts, and a SIGKILL in mid-stream that changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from alerts.rules import RuleThresholds
from models.patient import PatientRecord
from models.summary import patient_summary
from streams.deadletter import read_dead_letter_headers
from streams.processes import WorkerProcess
from streams.producer import produce_lines
from streams.replay import replay
from streams.settings import Settings
from streams.simulator import simulate_trial
from streams.storage import schema
from streams.storage.engine import make_engine
from streams.topics import create_topics
from tests.integration.kafka_read import read_topic
from tests.integration.test_storage_support import postgres_database

TOKEN = "integration-token"


@pytest.fixture(scope="module")
def trial():
    return simulate_trial(seed=7)


@pytest.fixture
def database_url() -> Iterator[str]:
    """A new PostgreSQL database on the machine's cluster, dropped afterwards."""
    with postgres_database() as url:
        yield url


def _settings(broker, prefix: str, port: int, database_url: str) -> Settings:
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=prefix,
        database_url=SecretStr(database_url),
        api_port=port,
        api_token=SecretStr(TOKEN),
        session_timeout_s=6,
        gauge_interval_s=1,
    )


def _is_infusion(raw: bytes) -> bool:
    try:
        return json.loads(raw).get("type") == "infusion"
    except (ValueError, AttributeError):
        return False


def _split(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Infusions first, then the rest: a worker consumes topics in parallel, and alerts may
    depend on whether an infusion was processed before its adverse events (CONTRACT 4)."""
    return [r for r in lines if _is_infusion(r)], [r for r in lines if not _is_infusion(r)]


def _to_workers(lines: list[bytes], settings: Settings) -> int:
    sent = produce_lines(lines, settings, source="test")
    return sum(n for topic, n in sent.items() if topic != settings.dead_letter_topic)


def _wait_processed(worker: WorkerProcess, expected: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.api.processed_total() < expected:
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"processed {worker.api.processed_total()}"
        time.sleep(0.5)


def _reference(trial):
    return replay(trial.lines(), trial.data_cut, RuleThresholds())


def _api_report(worker: WorkerProcess, trial) -> dict:
    return worker.api.json(
        f"/trials/{trial.trial_id}/report?as_of={quote(trial.data_cut.isoformat())}"
    )


def _alert_ids(settings: Settings) -> list[str]:
    records = read_topic(settings.kafka_bootstrap, settings.alerts_topic)
    return [json.loads(r.value)["alert_id"] for r in records]


def _assert_database_matches(url: str, reference, alert_ids, dead_letters) -> None:
    """Snapshots equal the replayed records; alerts and dead letters equal the topics'."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            snapshots = {
                (row.trial_id, row.patient_id): row.record
                for row in conn.execute(select(schema.patient_snapshots))
            }
            stored_alerts = {row.alert_id for row in conn.execute(select(schema.alerts))}
            stored_dead = {
                (row.source_topic, row.source_partition, row.source_offset)
                for row in conn.execute(select(schema.dead_letters))
            }
    finally:
        engine.dispose()
    wanted = {(r.trial_id, r.patient_id): r for r in reference.records.values()}
    assert snapshots.keys() == wanted.keys()
    differing = [k for k in wanted if not _same_record(snapshots[k], wanted[k])]
    assert differing == []
    assert stored_alerts == set(alert_ids)
    worker_dead = {
        (h["topic"], h["partition"], h["offset"])
        for h in (read_dead_letter_headers(r.headers) for r in dead_letters)
        if h["partition"] >= 0  # those the worker dead-lettered (not the producer)
    }
    assert stored_dead == worker_dead


def _same_record(stored: dict, replayed: PatientRecord) -> bool:
    """The same accepted events and the same derived state (list order follows arrival)."""
    record = PatientRecord.from_dict(stored)
    as_of = max(replayed.event_times)
    return record.seen == replayed.seen and patient_summary(record, as_of) == patient_summary(
        replayed, as_of
    )


def test_the_worker_reports_what_replay_reports(broker, trial, tmp_path: Path, database_url):
    settings = _settings(broker, "it-same", 16101, database_url)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        first, rest = _split(list(trial.lines()))
        expected = _to_workers(first, settings)
        _wait_processed(worker, expected)
        expected += _to_workers(rest, settings)
        _wait_processed(worker, expected)
        reference = _reference(trial)

        assert _api_report(worker, trial) == reference.report["trials"][0]

        on_topic = _alert_ids(settings)
        assert sorted(set(on_topic)) == sorted(a.alert_id for a in reference.alerts)
        api_alerts = worker.api.json(f"/alerts?trial_id={trial.trial_id}")["alerts"]
        assert sorted(a["alert_id"] for a in api_alerts) == sorted(set(on_topic))

        dead = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
        assert sorted(r.value for r in dead) == sorted(trial.invalid)
        for record in dead:
            headers = read_dead_letter_headers(record.headers)
            assert headers["reasons"], record.value
            assert headers["topic"] in (*settings.input_topics, "test")

        _assert_database_matches(database_url, reference, on_topic, dead)

        metrics = worker.api.get("/metrics")[1].decode()
        assert "cartwatch_events_processed_total" in metrics
        patients = {json.loads(raw)["patient_id"] for raw in first}
        assert not [p for p in patients if p in metrics]

        assert worker.api.get("/healthz")[0] == 200
        anonymous = type(worker.api)(worker.api.base_url)
        assert anonymous.get("/trials")[0] == 401
        assert anonymous.get(f"/trials/{trial.trial_id}/report")[0] == 401
        assert anonymous.get("/metrics")[0] == 200
    finally:
        worker.stop()


def test_a_sigkill_in_mid_stream_changes_no_figure_and_no_alert_id(
    broker, trial, tmp_path, database_url
):
    settings = _settings(broker, "it-kill", 16102, database_url)
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path).start()
    try:
        first, rest = _split(list(trial.lines()))
        expected = _to_workers(first, settings)
        _wait_processed(worker, expected)
        expected += _to_workers(rest, settings)
        while worker.api.processed_total() < expected / 2:
            assert worker.alive(), worker.log_tail()
            time.sleep(0.1)
        worker.kill()
        worker.start()  # a new process: its counters start at zero, so wait on the figures
        wanted = _reference(trial)
        deadline = time.monotonic() + 180
        while _api_report(worker, trial) != wanted.report["trials"][0]:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(1)
        on_topic, wanted_ids = set(_alert_ids(settings)), {a.alert_id for a in wanted.alerts}
        assert on_topic == wanted_ids, (
            sorted(wanted_ids - on_topic),
            sorted(on_topic - wanted_ids),
        )
        dead = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
        _assert_database_matches(database_url, wanted, on_topic, dead)
    finally:
        worker.stop()
