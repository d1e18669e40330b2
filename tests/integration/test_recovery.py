"""Nothing lost: two workers in one group, repeated SIGKILLs during a 50,000-event stream,
and a 30-second database outage, each compared in full with the offline reference."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.kafka.topics import create_topics
from tests.integration.kafka_read import read_topic
from tests.integration.streaming import (
    api_report,
    reference,
    split,
    to_workers,
    wait_for_reports,
    wait_processed,
    wait_until_committed,
    wait_until_stored,
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
    wait_until_stored(settings, wanted, database_url)
    wait_until_committed(workers)


def _stream_in_order(trial, settings, worker) -> None:
    """Infusions first, and the rest once a worker reports them all: topics are consumed in
    parallel, and which alerts fire may depend on an infusion preceding its reports."""
    infusions, rest = split(list(trial.lines()))
    to_workers(infusions, settings)
    _wait_for_infused(worker, trial, len({json.loads(raw)["patient_id"] for raw in infusions}))
    to_workers(rest, settings)


def _wait_for_infused(worker, trial, infused: int) -> None:
    """Until the worker reports `infused` patients infused in the trial."""
    deadline = time.monotonic() + 180
    while _infused(worker, trial) != infused:
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, "infusions not processed"
        time.sleep(0.5)


def _infused(worker, trial) -> int | None:
    report = api_report(worker, trial.trial_id, trial.data_cut)
    return report["n_infused"] if report else None


def test_two_workers_share_a_trial_and_one_takes_over_when_the_other_is_killed(
    broker, tmp_path: Path, database_url
):
    settings = worker_settings(broker, "it-pair", free_port(), database_url)
    other = settings.model_copy(update={"api_port": free_port()})
    create_topics(settings)
    first, second = (simulate_trial(seed=s, trial_id=f"PAIR-{s}") for s in (21, 22))
    a, b = WorkerProcess(settings, tmp_path / "a"), WorkerProcess(other, tmp_path / "b")
    try:
        a.start()
        b.start()
        _stream_in_order(first, settings, a)
        _check_everything(settings, [a, b], list(first.lines()), first.data_cut, database_url)
        owned = [_owned_partitions(w) for w in (a, b)]
        assert all(owned) and not set(owned[0]) & set(owned[1])  # the work was shared

        _stream_in_order(second, settings, b)
        time.sleep(random.Random(2027).uniform(0.3, 1.5))  # a point in mid-stream
        assert a.alive(), a.log_tail()
        a.kill()
        _wait_for_partitions(b, sorted(owned[0] + owned[1]))  # b takes a's over
        both = _lines([first, second])
        _check_everything(settings, [b], both, max(first.data_cut, second.data_cut), database_url)
    finally:
        a.stop()
        b.stop()


def _wait_for_partitions(worker: WorkerProcess, wanted: list[str]) -> None:
    """Until the worker consumes exactly the `wanted` input partitions (after a rebalance)."""
    deadline = time.monotonic() + 180
    while (owned := _owned_partitions(worker)) != wanted:
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"owns {owned}, not {wanted}"
        time.sleep(0.5)


def _owned_partitions(worker: WorkerProcess) -> list[str]:
    """The input partitions a worker consumes, from its consumer-lag gauge labels."""
    samples = worker.api.metric_samples()
    return sorted(
        f"{dict(labels)['topic']}:{dict(labels)['partition']}"
        for (name, labels), _ in samples.items()
        if name == "cartwatch_consumer_lag_messages"
    )


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


def _latest_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The broker's answer to ListOffsets(latest) for each partition of `topic`."""

    async def ask() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()
            tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            latest = await consumer.end_offsets(tps)
            return {tp.partition: offset for tp, offset in latest.items()}
        finally:
            await consumer.stop()

    return asyncio.run(ask())


def test_the_tables_come_back_whole_after_a_sigkill(broker, tmp_path: Path, database_url):
    """The embedded broker's "latest" offset is wrong when a partition's last batch holds
    several records, and a table restored from its changelog would then stop short: the
    worker sends every record in a batch of its own there (streams/kafka/faust_settings.py). A
    worker restarted after a SIGKILL reports the whole trial the moment it is ready, before
    any new input; and after a stream the broker's "latest" is right on every changelog
    partition."""
    settings = worker_settings(broker, "it-restore", free_port(), database_url)
    create_topics(settings)
    trial = simulate_trial(seed=41, trial_id="RESTORE-41")
    lines = list(trial.lines())
    wanted = reference(lines, trial.data_cut)
    worker = WorkerProcess(settings, tmp_path)
    try:
        worker.start()
        _stream_in_order(trial, settings, worker)
        wait_for_reports([worker], wanted, trial.data_cut)
        wait_until_committed([worker])
        worker.kill()
        worker.start()  # ready (/healthz 200) once its tables are recovered
        assert [api_report(worker, trial.trial_id, trial.data_cut)] == wanted.report["trials"]
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    bulk: dict[str, list[int]] = {}  # process id -> records read in bulk, read by read
    pattern = r"\[(\d+)\] \[INFO\] patient_to_record: (\d+) changelog records read in bulk"
    for pid, n in re.findall(pattern, log):
        bulk.setdefault(pid, []).append(int(n))

    # the 94 patients' records written at several checkpoints (more than twice each on
    # average: several records a produce batch); the trial's alerts
    written: dict[str, int] = {}
    for table, at_least in (
        ("patient_to_record", 2 * 94),
        ("alert_id_to_alert", len(wanted.alerts)),
    ):
        topic = f"{settings.topic_prefix}-{table}-changelog"
        latest = _latest_offsets(settings.kafka_bootstrap, topic)
        ends = dict.fromkeys(latest, 0)
        for record in read_topic(settings.kafka_bootstrap, topic):  # to the true end
            ends[record.partition] = max(ends[record.partition], record.offset + 1)
        assert latest == ends, topic
        written[table] = sum(ends.values())
        assert written[table] >= at_least, topic
    # the restarted worker read the whole patient changelog in bulk before it joined the group
    # (streams/worker/changelog_store.py): the first start found nothing, each rebalance and
    # each assignment of input partitions nothing new
    first, restarted = bulk.values()
    assert sum(first) == 0, bulk
    assert restarted[0] == written["patient_to_record"] and sum(restarted) == restarted[0], bulk
