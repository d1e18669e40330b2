"""`cartwatch bench`: throughput, latency, memory and restart time, measured in one run.

Every figure is measured on the same machine in the same run, against the same topics:
- raw: aiokafka consume + json decode of the pre-loaded inputs (the limit here);
- worker: a `cartwatch worker` process on the pre-loaded stream, its rate between 10% and
  90% of the stream (so the group join does not count);
- core: the offline processing core (`replay`'s path) on the same messages in-process;
- latency: event-to-alert at a steady rate (Kafka timestamp of the causing message to
  the alert record's timestamp), p50 and p99 (streams/devtools/bench_latency.py), and under it the
  inputs' delivery alone: the same stream read by a bare consumer, the worker stopped;
- memory: state per patient (the stored record and the Python objects);
- restart: from process start to /healthz ready with the state of many patients, the
  group join apart (streams/devtools/bench_restart.py).
The targets and the method are in docs/BENCHMARKS.md, with the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from rich.console import Console

from cartwatch.alerts.pipeline import Pipeline, decode
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.patient import PatientRecord
from cartwatch.models.record_codec import decode_record, encode_record
from cartwatch.streams.devtools.bench_latency import (
    Latency,
    assign_all,
    measure_delivery,
    measure_latency,
)
from cartwatch.streams.devtools.bench_report import (
    Target,
    info_rows,
    rate_between,
    render_table,
    target_rows,
)
from cartwatch.streams.devtools.bench_restart import Restart, measure_restart
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.kafka.faust_settings import fetch_wait_ms, uses_embedded_broker
from cartwatch.streams.kafka.producer import kafka_producer, publish_line
from cartwatch.streams.kafka.security import aiokafka_options
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.worker.settings import Settings

RESTART_TARGET_PATIENTS = 100_000  # target: restart-to-ready <= 30 s for 100,000 patients
PY_SPY = str(Path(sys.executable).with_name("py-spy"))  # `pip install -e .[dev]` puts it here


@dataclass
class BenchOptions:
    """What to run: the CLI options of `cartwatch bench`."""

    trials: int = 3
    latency_rate: float = 2000.0
    latency_duration_s: float = 25.0
    latency_drain_s: float = 60.0
    restart_patients: int = 100_000
    skip_restart: bool = False
    profile_dir: Path | None = None
    out: Path | None = None


@dataclass
class BenchResult:
    """Everything one run measured."""

    machine: dict
    messages: int
    raw_events_per_s: float = 0.0
    worker_events_per_s: float = 0.0
    worker_vs_raw: float = 0.0
    core_events_per_s: float = 0.0
    json_loads_events_per_s: float = 0.0  # in-process json.loads only: the ceiling of any core
    decode_events_per_s: float = 0.0  # in-process pydantic decode + validation only
    latency: Latency | None = None
    state_patients: int = 0
    state_bytes_per_patient_stored: float = 0.0  # the table's value (models/record_codec.py)
    state_bytes_per_patient_json: float = 0.0  # the same record as plain JSON, for comparison
    state_bytes_per_patient_record: float = 0.0  # PatientRecord objects (tracemalloc)
    restart: Restart | None = None
    notes: list[str] = field(default_factory=list)


def machine() -> dict:
    """What the numbers were measured on, and how busy it was."""
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_avg_at_start": os.getloadavg(),
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
        consumer = AIOKafkaConsumer(**aiokafka_options(settings))
        await consumer.start()
        try:
            await consumer.seek_to_beginning(*assign_all(consumer, settings.input_topics))
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


def measure_core(lines: list[bytes], profile_dir: Path | None = None) -> float:
    """The offline core on the same messages, events/s (profiled in a second, untimed pass)."""
    pipeline = Pipeline({}, RuleThresholds())
    start = time.perf_counter()
    for raw in lines:
        pipeline.handle(raw)
    rate = len(lines) / (time.perf_counter() - start)
    if profile_dir is not None:
        profiler, pipeline = cProfile.Profile(), Pipeline({}, RuleThresholds())
        profiler.runcall(lambda: [pipeline.handle(raw) for raw in lines])
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        (profile_dir / "core-cprofile.txt").write_text(text.getvalue())
    return rate


def measure_decode_ceilings(lines: list[bytes]) -> tuple[float, float]:
    """Events/s of json.loads alone and of decoding and validating alone (the core's floor)."""
    start = time.perf_counter()
    for raw in lines:
        with contextlib.suppress(ValueError):  # the simulator's few invalid lines
            json.loads(raw)
    json_rate = len(lines) / (time.perf_counter() - start)
    start = time.perf_counter()
    for raw in lines:
        with contextlib.suppress(InvalidEvent):
            decode(raw)
    return json_rate, len(lines) / (time.perf_counter() - start)


def _py_spy(pid: int, out: Path, seconds: int) -> subprocess.Popen:
    """py-spy sampling the worker for `seconds` (raw collapsed stacks and a flame graph)."""
    return subprocess.Popen(
        [PY_SPY, "record", "--pid", str(pid), "--duration", str(seconds), "--nonblocking",
         "--format", "raw", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def measure_worker(
    worker: WorkerProcess, expected: int, profile_dir: Path | None = None, timeout: float = 1800
) -> float:
    """Steady-state events/s of a worker between 10% and 90% of the pre-loaded stream."""
    samples: list[tuple[float, float]] = []
    spy: subprocess.Popen | None = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and worker.alive():
            done = worker.api.processed_total()
            samples.append((time.perf_counter(), done))
            if done >= expected:
                break
            if profile_dir is not None and spy is None and done >= 0.1 * expected:
                spy = _py_spy(worker.process.pid, profile_dir / "worker-pyspy.txt", 15)
            time.sleep(0.25)
    finally:
        if spy is not None:
            spy.wait(60)
    return rate_between(samples, expected)


def _traced_bytes(build) -> tuple[object, int]:
    """What `build()` returns and the bytes it keeps allocated (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        gc.collect()
        return built, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def state_per_patient(lines: list[bytes]) -> tuple[int, float, float, float]:
    """Patients, and per patient: stored bytes, plain JSON bytes, PatientRecord objects.

    The table and its changelog hold the stored bytes; the worker also keeps the parsed
    PatientRecord of every patient it reads (streams/worker/tables.py), measured as built from them.
    """
    records: dict[str, PatientRecord] = {}
    pipeline = Pipeline(records, RuleThresholds())
    for raw in lines:
        pipeline.handle(raw)
    stored = [encode_record(r) for r in records.values()]
    as_json = [json.dumps(r.to_dict(), separators=(",", ":")) for r in records.values()]
    _, record_bytes = _traced_bytes(lambda: [decode_record(b) for b in stored])
    n = len(stored)
    stored_mean, json_mean = statistics.mean(map(len, stored)), statistics.mean(map(len, as_json))
    return n, stored_mean, json_mean, record_bytes / n


def targets(r: BenchResult) -> list[Target]:
    """The targets (docs/BENCHMARKS.md) against this run's figures."""
    lat, rst = r.latency, r.restart
    full = rst is not None and rst.patients >= RESTART_TARGET_PATIENTS
    return [
        Target("worker / raw consume+decode", r.worker_vs_raw, 0.25, True, "ratio"),
        Target("offline core", r.core_events_per_s, 300_000, True, "events/s"),
        Target("event-to-alert p99", lat and lat.p99_ms, 100, False, "ms"),
        Target("state per patient (stored)", r.state_bytes_per_patient_stored, 2048, False, "B"),
        # The target is for 100,000 patients; a smaller run is shown in the context rows only.
        Target("restart to ready, 100,000 patients", rst.ready_s if full else None, 30, False, "s"),
    ]


def context(r: BenchResult) -> dict[str, tuple[float | None, str]]:
    """Figures reported next to the targets."""
    lat, rst = r.latency, r.restart
    return {
        "raw consume+decode": (r.raw_events_per_s, "events/s"),
        "worker steady state": (r.worker_events_per_s, "events/s"),
        "in-process json.loads only": (r.json_loads_events_per_s, "events/s"),
        "in-process decode + validation only": (r.decode_events_per_s, "events/s"),
        "latency input rate achieved": (lat and lat.rate_achieved, "events/s"),
        "event-to-alert p50": (lat and lat.p50_ms, "ms"),
        "inputs delivered alone (bare consumer) p50": (lat and lat.delivery_p50_ms, "ms"),
        "inputs delivered alone (bare consumer) p99": (lat and lat.delivery_p99_ms, "ms"),
        "alerts matched / expected": (
            lat and lat.alerts_matched,
            f"of {lat and lat.alerts_expected}",
        ),
        "state per patient (plain JSON)": (r.state_bytes_per_patient_json, "B"),
        "state per patient (PatientRecord objects)": (r.state_bytes_per_patient_record, "B"),
        "restart: patients": (rst and rst.patients, ""),
        "restart: process start -> ready": (rst and rst.ready_s, "s"),
        "restart: group joined": (rst and rst.group_join_s, "s"),
        "restart: partitions assigned": (rst and rst.assigned_s, "s"),
        "restart: assigned -> ready": (rst and rst.after_join_s, "s"),
        "restart: first worker load": (rst and rst.load_s, "s"),
    }


def report(result: BenchResult, out: Path | None) -> None:
    """Print the table of figures against targets; write the JSON."""
    rows = target_rows(targets(result)) + info_rows(context(result))
    Console().print(render_table(rows, f"cartwatch bench, {result.machine['date']}"))
    if out is not None:
        data = asdict(result)
        if data["latency"]:
            data["latency"].pop("latencies_ms")
        data["targets"] = [
            dict(zip(("figure", "measured", "target", "verdict"), row, strict=True)) for row in rows
        ]
        out.write_text(json.dumps(data, indent=2) + "\n")


def run_bench(settings: Settings, options: BenchOptions) -> BenchResult:
    """Run every measurement against the configured Kafka; print and write the result."""
    profile = options.profile_dir
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    lines = bench_lines(options.trials)
    result = BenchResult(machine=machine(), messages=len(lines))
    settings = settings.model_copy(update={"topic_prefix": f"bench{int(time.time())}"})
    create_topics(settings)
    expected = publish(lines, settings)
    result.raw_events_per_s = measure_raw(settings, expected)
    result.core_events_per_s = measure_core(lines, profile)
    result.json_loads_events_per_s, result.decode_events_per_s = measure_decode_ceilings(lines)
    (
        result.state_patients,
        result.state_bytes_per_patient_stored,
        result.state_bytes_per_patient_json,
        result.state_bytes_per_patient_record,
    ) = state_per_patient(lines)
    with tempfile.TemporaryDirectory(prefix="cartwatch-bench-") as tmp:
        worker = WorkerProcess(settings, Path(tmp) / "worker").start(wait_healthy=None)
        try:
            result.worker_events_per_s = measure_worker(worker, expected, profile)
            spy = None
            if profile is not None:  # the worker under steady input, not a backlog
                seconds = max(1, int(options.latency_duration_s))
                spy = _py_spy(worker.process.pid, profile / "latency-pyspy.txt", seconds)
            result.latency = measure_latency(
                settings, options.latency_rate, options.latency_duration_s,
                options.latency_drain_s,
            )  # fmt: skip
            if spy is not None:
                spy.wait(60)
        finally:
            worker.stop()
        if result.latency is not None:  # the floor under it, on the same topics, no worker
            # The worker's fetch wait where one is set; else aiokafka's 500 ms (the worker's
            # is Faust's 1,500 ms there, but Apache Kafka answers as soon as records come).
            fetch_wait = fetch_wait_ms(settings, uses_embedded_broker(settings)) or 500
            seconds = min(options.latency_duration_s, 10.0)
            try:
                result.latency.delivery_p50_ms, result.latency.delivery_p99_ms = measure_delivery(
                    settings, options.latency_rate, seconds, fetch_wait
                )
            except (KafkaError, OSError) as exc:  # the other figures are still worth reporting
                result.notes.append(f"delivery phase: {exc!r}")
        if not options.skip_restart:
            try:  # the other figures are worth reporting even if this phase runs out of time
                result.restart = measure_restart(
                    settings, options.restart_patients, Path(tmp) / "restart", timeout=1800
                )
            except (TimeoutError, RuntimeError) as exc:
                result.notes.append(f"restart phase: {exc}")
    result.machine["load_avg_at_end"] = os.getloadavg()
    result.worker_vs_raw = result.worker_events_per_s / result.raw_events_per_s
    report(result, options.out)
    return result
