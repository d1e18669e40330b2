"""Restart-to-ready of `cartwatch bench`: a worker holding many patients is stopped and restarted.

A first worker processes one infusion and one lab for each of N patients (its own topic
prefix, so its own group and changelogs), then stops (SIGTERM). A second worker starts on
the same topics; ready is /healthz 200, which needs the partitions assigned and the global
tables restored from their changelogs. The group joins (Faust's, for the tables, then the
input consumer's) are timed apart from the worker log (aiokafka's "Joined group" lines),
since on the embedded broker they are mostly a wait.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaProducer

from cartwatch.streams.devtools.bench_report import first_log_time
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.kafka.input_consumer import input_group
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.worker.settings import Settings

TRIALS = 10  # patients spread over 10 trials, as a multi-trial deployment would hold them


@dataclass
class Restart:
    """What the restart phase measured."""

    patients: int
    load_s: float = 0.0  # first worker: processing every patient's events
    ready_s: float | None = None  # process start -> /healthz 200
    group_join_s: float | None = None  # process start -> Faust's group joined (the tables)
    input_join_s: float | None = None  # process start -> the input group joined
    assigned_s: float | None = None  # process start -> input partitions assigned
    after_join_s: float | None = None  # input assignment -> ready: the tables' catch-up


def restart_lines(patients: int) -> Iterator[tuple[str, bytes, bytes]]:
    """(topic suffix, key, message): an infusion and a lab for each patient."""
    for n in range(patients):
        trial, patient = f"RST-{n % TRIALS:02d}", f"R{n:07d}"
        base = {"trial_id": trial, "patient_id": patient}
        infusion = base | {
            "event_id": f"{trial}/{patient}/1",
            "type": "infusion",
            "occurred_at": "2026-01-05T08:00:00+00:00",
            "product": "CD19 CAR-T",
            "dose_cells_per_kg": 1e6,
        }
        lab = base | {
            "event_id": f"{trial}/{patient}/2",
            "type": "lab",
            "occurred_at": "2026-01-06T08:00:00+00:00",
            "analyte": "CRP",
            "value": 12.0,
            "unit": "mg/L",
        }
        yield "infusions", patient.encode(), json.dumps(infusion).encode()
        yield "labs", patient.encode(), json.dumps(lab).encode()


def preload(settings: Settings, patients: int) -> int:
    """Publish the restart stream in large batches (input topics only); returns messages."""
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks=1, linger_ms=20, batch_size=256 * 1024
    )
    sent = 0
    for suffix, key, value in restart_lines(patients):
        producer.send(settings.topic(suffix), key=key, value=value)
        sent += 1
    producer.flush()
    producer.close()
    return sent


def _wait_processed(worker: WorkerProcess, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while worker.api.processed_total() < expected:
        if time.monotonic() > deadline or not worker.alive():
            raise TimeoutError(f"restart phase: worker did not process {expected} in time")
        time.sleep(1.0)


def _wait_ready(worker: WorkerProcess, timeout: float) -> float:
    """Epoch seconds at the first /healthz 200 (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.alive():
        try:
            if worker.api.get("/healthz")[0] == 200:
                return time.time()
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("restart phase: the restarted worker was not ready in time")


def measure_restart(settings: Settings, patients: int, data_dir: Path, timeout: float) -> Restart:
    """Load N patients through a first worker, stop it, time the second worker's start."""
    settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}-restart"})
    create_topics(settings)
    expected = preload(settings, patients)
    result = Restart(patients=patients)
    start = time.perf_counter()
    first = WorkerProcess(settings, data_dir / "first").start(wait_healthy=None)
    try:
        _wait_processed(first, expected, timeout)
        result.load_s = time.perf_counter() - start
    finally:
        first.stop()
    second = WorkerProcess(settings, data_dir / "second")
    started = time.time()
    second.start(wait_healthy=None)
    try:
        ready = _wait_ready(second, timeout)
    finally:
        second.stop()
    log = (data_dir / "second" / "worker.log").read_text(errors="replace")
    result.ready_s = ready - started
    group = settings.topic_prefix
    joined = first_log_time(log, f"Joined group '{group}'")
    input_joined = first_log_time(log, f"Joined group '{input_group(group)}'")
    # aiokafka logs the partitions over several lines: the input group's assignment is the
    # first after its join
    after_join = log[log.find(f"Joined group '{input_group(group)}'") :]
    assigned = first_log_time(after_join, "Setting newly assigned partitions")
    result.group_join_s = None if joined is None else joined - started
    result.input_join_s = None if input_joined is None else input_joined - started
    result.assigned_s = None if assigned is None else assigned - started
    if assigned is not None:
        result.after_join_s = ready - assigned
    return result
