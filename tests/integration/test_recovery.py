"""Nothing lost: two workers in one group, repeated SIGKILLs during a 50,000-event stream,
and a 30-second database outage, each compared in full with the offline reference."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.processes import WorkerProcess
from streams.simulator import simulate_trial
from streams.topics import create_topics
from tests.integration.kafka_read import read_topic
from tests.integration.streaming import (
    alert_ids,
    assert_database_matches,
    reference,
    split,
    to_workers,
    wait_for_reports,
    wait_processed,
    worker_settings,
)
from tests.integration.test_storage_support import ThrowawayPostgres, free_port, postgres_database


@pytest.fixture
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _trials(seeds: range, prefix: str):
    return [simulate_trial(seed=s, trial_id=f"{prefix}-{s}") for s in seeds]


def _lines(trials) -> list[bytes]:
    return [line for trial in trials for line in trial.lines()]


def _check_everything(settings, workers, lines, as_of, database_url) -> None:
    wanted = reference(lines, as_of)
    wait_for_reports(workers, wanted, as_of)
    on_topic = alert_ids(settings)
    assert set(on_topic) == {a.alert_id for a in wanted.alerts}
    dead = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
    assert_database_matches(database_url, wanted, on_topic, dead)


def test_either_of_two_workers_reports_the_whole_trial_and_one_takes_over(
    broker, tmp_path: Path, database_url
):
    settings = worker_settings(broker, "it-pair", free_port(), database_url)
    other = settings.model_copy(update={"api_port": free_port()})
    create_topics(settings)
    first_trial, second_trial = _trials(range(21, 23), "PAIR")
    a, b = WorkerProcess(settings, tmp_path / "a"), WorkerProcess(other, tmp_path / "b")
    try:
        a.start()
        b.start()
        infusions, rest = split(list(first_trial.lines()))
        to_workers(infusions, settings)
        time.sleep(2)
        to_workers(rest, settings)
        _check_everything(
            settings, [a, b], list(first_trial.lines()), first_trial.data_cut, database_url
        )

        a.kill()
        infusions, rest = split(list(second_trial.lines()))
        to_workers(infusions, settings)
        time.sleep(2)
        to_workers(rest, settings)
        lines = _lines([first_trial, second_trial])
        _check_everything(settings, [b], lines, second_trial.data_cut, database_url)
    finally:
        a.stop()
        b.stop()


def test_three_sigkills_during_a_50000_event_stream_lose_nothing(
    broker, tmp_path: Path, database_url
):
    settings = worker_settings(broker, "it-crash", free_port(), database_url)
    create_topics(settings)
    trials = _trials(range(31, 37), "CRASH")
    lines = _lines(trials)
    assert len(lines) >= 50_000
    worker = WorkerProcess(settings, tmp_path)
    try:
        worker.start()
        infusions, rest = split(lines)
        wait_processed(worker, to_workers(infusions, settings))
        to_workers(rest, settings)
        chance = random.Random(2026)
        for _ in range(3):
            time.sleep(chance.uniform(1.0, 4.0))  # a random point of the stream
            assert worker.alive(), worker.log_tail()
            worker.kill()
            worker.start()
        as_of = max(t.data_cut for t in trials)
        _check_everything(settings, [worker], lines, as_of, database_url)
        dead = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
        assert {r.value for r in dead} == {line for t in trials for line in t.invalid}
    finally:
        worker.stop()


def test_a_30_second_database_outage_mid_stream_loses_nothing(broker, tmp_path: Path):
    postgres = ThrowawayPostgres()
    postgres.start()
    try:
        settings = worker_settings(broker, "it-dbdown", free_port(), postgres.url)
        create_topics(settings)
        trial = simulate_trial(seed=41, trial_id="DBDOWN")
        worker = WorkerProcess(settings, tmp_path)
        try:
            worker.start()
            infusions, rest = split(list(trial.lines()))
            wait_processed(worker, to_workers(infusions, settings))
            half = len(rest) // 2
            to_workers(rest[:half], settings)
            postgres.stop(mode="immediate")
            to_workers(rest[half:], settings)
            time.sleep(30)
            assert worker.alive(), worker.log_tail()
            postgres.start()
            _check_everything(settings, [worker], list(trial.lines()), trial.data_cut, postgres.url)
        finally:
            worker.stop()
    finally:
        if _running(postgres):
            postgres.stop(mode="immediate")
        postgres.remove()


def _running(postgres: ThrowawayPostgres) -> bool:
    return (postgres.data / "postmaster.pid").exists()
