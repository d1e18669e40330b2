"""`cartwatch bench`: throughput, latency, memory and restart time, measured in one run.

Every figure is measured on the same machine in the same run, against the same topics:
- raw: aiokafka consume + json decode of the pre-loaded inputs (the limit here);
- worker: a `cartwatch worker` process on the pre-loaded stream, its rate between 10% and
  90% of the stream (so the group join does not count);
- core: the offline processing core (`replay`'s path) on the same messages in-process;
- latency: event-to-alert at a steady rate (Kafka timestamp of the causing message to
  the alert record's timestamp), p50 and p99;
- memory: state per patient (the serialized record and the Python objects);
- restart: from process start to /healthz ready with the state of many patients.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from alerts.rules import RuleThresholds
from models.patient import PatientRecord
from streams.pipeline import Pipeline
from streams.processes import WorkerProcess
from streams.producer import kafka_producer, publish_line
from streams.settings import Settings
from streams.simulator import simulate_trial
from streams.topics import create_topics


@dataclass
class BenchResult:
    """Everything one run measured."""

    machine: dict
    messages: int
    raw_events_per_s: float = 0.0
    worker_events_per_s: float = 0.0
    worker_vs_raw: float = 0.0
    core_events_per_s: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_rate_per_s: float = 0.0
    state_bytes_per_patient_json: float = 0.0
    restart_ready_s: float | None = None
    restart_patients: int = 0
    notes: list[str] = field(default_factory=list)


def machine() -> dict:
    """What the numbers were measured on."""
    import os

    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }


def bench_lines(trials: int) -> list[bytes]:
    """`trials` simulated trials (distinct ids), interleaved in time order."""
    lines: list[tuple[str, bytes]] = []
    for i in range(trials):
        trial = simulate_trial(seed=1000 + i, trial_id=f"BENCH-{i:03d}")
        for raw in trial.lines():
            try:
                at = json.loads(raw)["occurred_at"]
            except (ValueError, KeyError, TypeError):
                at = ""
            lines.append((at, raw))
    lines.sort(key=lambda row: row[0])
    return [raw for _, raw in lines]


def publish(lines: list[bytes], settings: Settings) -> int:
    """Pre-load the stream; returns how many messages went to the input topics."""
    producer = kafka_producer(settings)
    to_inputs = 0
    for number, raw in enumerate(lines, start=1):
        routed = publish_line(producer, raw, settings, "bench", number)
        to_inputs += routed.reasons is None
    producer.flush()
    producer.close()
    return to_inputs


def measure_raw(settings: Settings, expected: int) -> float:
    """aiokafka consume + json decode of every input message, events/s."""

    async def go() -> float:
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        await consumer.start()
        try:
            tps = [
                TopicPartition(t, p)
                for t in settings.input_topics
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            n, start = 0, time.perf_counter()
            while n < expected:
                for rows in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    for record in rows:
                        json.loads(record.value)
                    n += len(rows)
            return n / (time.perf_counter() - start)
        finally:
            await consumer.stop()

    return asyncio.run(go())


def measure_core(lines: list[bytes]) -> float:
    """The offline core on the same messages, events/s."""
    pipeline = Pipeline({}, RuleThresholds())
    start = time.perf_counter()
    for raw in lines:
        pipeline.handle(raw)
    return len(lines) / (time.perf_counter() - start)


def measure_worker(worker: WorkerProcess, expected: int, timeout: float = 900) -> float:
    """Steady-state events/s of a worker between 10% and 90% of the pre-loaded stream."""
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = worker.api.processed_total()
        samples.append((time.perf_counter(), done))
        if done >= expected:
            break
        time.sleep(0.1)
    t10 = next(t for t, n in samples if n >= 0.1 * expected)
    n10 = next(n for t, n in samples if n >= 0.1 * expected)
    t90, n90 = next((t, n) for t, n in samples if n >= 0.9 * expected)
    return (n90 - n10) / (t90 - t10)


def state_per_patient(lines: list[bytes]) -> float:
    """Mean size of a patient's serialized record, bytes."""
    records: dict[str, PatientRecord] = {}
    pipeline = Pipeline(records, RuleThresholds())
    for raw in lines:
        pipeline.handle(raw)
    sizes = [len(json.dumps(r.to_dict()).encode()) for r in records.values()]
    return statistics.mean(sizes)


def run_bench(settings: Settings, trials: int, out: Path | None) -> BenchResult:
    """Run every measurement against the configured Kafka; print and write the result."""
    lines = bench_lines(trials)
    result = BenchResult(machine=machine(), messages=len(lines))
    settings = settings.model_copy(update={"topic_prefix": f"bench{int(time.time())}"})
    create_topics(settings)
    expected = publish(lines, settings)
    result.raw_events_per_s = measure_raw(settings, expected)
    result.core_events_per_s = measure_core(lines)
    result.state_bytes_per_patient_json = state_per_patient(lines)
    with tempfile.TemporaryDirectory(prefix="cartwatch-bench-") as tmp:
        worker = WorkerProcess(settings, Path(tmp)).start(wait_healthy=None)
        try:
            result.worker_events_per_s = measure_worker(worker, expected)
        finally:
            worker.stop()
    result.worker_vs_raw = result.worker_events_per_s / result.raw_events_per_s
    text = json.dumps(asdict(result), indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")
    return result
