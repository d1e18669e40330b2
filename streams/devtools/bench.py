"""`cartwatch bench`: throughput, latency, memory and restart time, measured in one run.

The throughput figures are measured for each workload (`WORKLOADS`): the simulated trials
in time order (`bench_lines`) and many patients interleaved at random
(streams/devtools/bench_workload.py), each on its own topics. Every figure is measured on
the same machine in the same run:
- raw: aiokafka consume + json decode of the pre-loaded inputs (the limit here);
- worker: a fresh `cartwatch worker` process on the pre-loaded stream, its rate between
  10% and 90% of the stream (so the group join does not count), and its resident memory
  (VmRSS) before and after, per patient;
- core: the offline processing core (`replay`'s path) on the same messages in-process;
- latency: event-to-alert at a steady rate (Kafka timestamp of the causing message to
  the alert record's timestamp), p50 and p99 (streams/devtools/bench_latency.py), and under it the
  inputs' delivery alone: the same stream read by a bare consumer, the worker stopped; the
  worker's event-loop lag while the stream is sent (`cartwatch_event_loop_lag_seconds`);
- memory: state per patient (the stored record and the Python objects);
- restart: from process start to /healthz ready with the state of many patients, the
  group join apart (streams/devtools/bench_restart.py).
The targets and the method are in docs/BENCHMARKS.md, with the results; the figures,
targets and table are in streams/devtools/bench_results.py.
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
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from cartwatch.alerts.pipeline import Pipeline, decode
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.patient import PatientRecord
from cartwatch.models.record_codec import decode_record, encode_record
from cartwatch.streams.devtools.bench_latency import (
    assign_all,
    loop_lag,
    measure_delivery,
    measure_latency,
    observe_loop_lag,
)
from cartwatch.streams.devtools.bench_report import rate_between
from cartwatch.streams.devtools.bench_restart import measure_restart
from cartwatch.streams.devtools.bench_results import (
    BenchResult,
    WorkloadResult,
    per_patient,
    report,
)
from cartwatch.streams.devtools.bench_workload import WORKLOADS, interleaved_lines
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.kafka.faust_settings import fetch_wait_ms, uses_embedded_broker
from cartwatch.streams.kafka.producer import kafka_producer, publish_line
from cartwatch.streams.kafka.security import aiokafka_options
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.worker.settings import Settings

PY_SPY = str(Path(sys.executable).with_name("py-spy"))  # `pip install -e .[dev]` puts it here


@dataclass
class BenchOptions:
    """What to run: the CLI options of `cartwatch bench`."""

    trials: int = 3
    workloads: tuple[str, ...] = WORKLOADS
    interleaved_patients: int = 2000
    events_per_patient: int = 100
    seed: int = 2026  # of the interleaved workload
    latency_rate: float = 2000.0
    latency_duration_s: float = 25.0
    latency_drain_s: float = 60.0
    restart_patients: int = 100_000
    skip_restart: bool = False
    profile_dir: Path | None = None
    out: Path | None = None


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


def measure_core(lines: list[bytes], profile_to: Path | None = None) -> tuple[float, int]:
    """The offline core on the same messages: events/s and the patients it holds after
    them (profiled in a second, untimed pass, written to `profile_to`)."""
    records: dict = {}
    pipeline = Pipeline(records, RuleThresholds())
    start = time.perf_counter()
    for raw in lines:
        pipeline.handle(raw)
    rate = len(lines) / (time.perf_counter() - start)
    if profile_to is not None:
        profiler, pipeline = cProfile.Profile(), Pipeline({}, RuleThresholds())
        profiler.runcall(lambda: [pipeline.handle(raw) for raw in lines])
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        profile_to.write_text(text.getvalue())
    return rate, len(records)


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


def rss_bytes(pid: int) -> int | None:
    """The resident set size of process `pid` (Linux /proc/PID/status VmRSS), or None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # kB
    return None


@dataclass
class WorkerRun:
    """What `measure_worker` saw: the steady-state rate and the resident memory around it."""

    events_per_s: float
    rss_before: int | None  # the last reading before the first event was processed
    rss_after: int | None  # the reading once every event was processed


SAMPLE_S = 0.1  # how often the worker's counts are read


def measure_worker(
    worker: WorkerProcess, expected: int, profile_to: Path | None = None, timeout: float = 1800
) -> WorkerRun:
    """Steady-state events/s of a worker between 10% and 90% of the pre-loaded stream, and
    its resident memory before it processed anything and once it processed everything."""
    samples: list[tuple[float, float]] = []
    spy: subprocess.Popen | None = None
    rss_before = rss_after = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and worker.alive():
            rss = rss_bytes(worker.process.pid)
            done = worker.api.processed_total()  # counted at checkpoints
            # the rate from the count per batch: a checkpoint can hold a short stream whole
            applied = worker.api.processed_total("cartwatch_events_applied_total")
            samples.append((time.perf_counter(), applied))
            if done == 0:
                rss_before = rss  # read before the count: no event processed yet then
            if done >= expected:
                rss_after = rss_bytes(worker.process.pid)
                break
            if profile_to is not None and spy is None and done >= 0.1 * expected:
                spy = _py_spy(worker.process.pid, profile_to, 15)
            time.sleep(SAMPLE_S)
    finally:
        if spy is not None:
            spy.wait(60)
    return WorkerRun(rate_between(samples, expected), rss_before, rss_after)


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

    The table and its changelog hold the stored bytes; a parsed PatientRecord (measured as
    built from them) is what applying events or a reader costs while it is held; the worker
    keeps the bytes and small summaries, not parsed records (streams/worker/tables.py).
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


def workload_lines(name: str, options: BenchOptions) -> list[bytes]:
    """The messages of one workload, in the order they are published."""
    if name == "trials":
        return bench_lines(options.trials)
    if name == "interleaved":
        return interleaved_lines(
            options.interleaved_patients, options.events_per_patient, options.seed
        )
    raise ValueError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")


def prepare(
    name: str, options: BenchOptions, settings: Settings, state_wanted: bool, result: BenchResult
) -> tuple[Settings, int]:
    """Publish one workload to its own topics and measure what needs no worker: raw, core,
    decode ceilings (and the state per patient when wanted). Its settings and input count."""
    lines = workload_lines(name, options)
    workload = result.workloads[name] = WorkloadResult(name, messages=len(lines))
    settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}-{name}"})
    create_topics(settings)
    expected = publish(lines, settings)
    workload.raw_events_per_s = measure_raw(settings, expected)
    profile = options.profile_dir and options.profile_dir / f"core-{name}-cprofile.txt"
    workload.core_events_per_s, workload.patients = measure_core(lines, profile)
    workload.json_loads_events_per_s, workload.decode_events_per_s = measure_decode_ceilings(lines)
    if state_wanted:
        result.state_workload = name
        (
            result.state_patients,
            result.state_bytes_per_patient_stored,
            result.state_bytes_per_patient_json,
            result.state_bytes_per_patient_record,
        ) = state_per_patient(lines)
    return settings, expected


def latency_phase(
    worker: WorkerProcess, settings: Settings, options: BenchOptions, result: BenchResult
) -> None:
    """Event-to-alert latency on `worker` (and its event-loop lag meanwhile), then, with the
    worker stopped, the inputs delivered alone on the same topics."""
    spy = None
    if options.profile_dir is not None:  # the worker under steady input, not a backlog
        seconds = max(1, int(options.latency_duration_s))
        spy = _py_spy(worker.process.pid, options.profile_dir / "latency-pyspy.txt", seconds)
    lag_before = loop_lag(worker)
    lag_after: dict[float, float] = {}
    result.latency = measure_latency(
        settings, options.latency_rate, options.latency_duration_s, options.latency_drain_s,
        after_stream=lambda: lag_after.update(loop_lag(worker)),
    )  # fmt: skip
    observe_loop_lag(result.latency, lag_before, lag_after)
    if spy is not None:
        spy.wait(60)
    worker.stop()
    # The worker's fetch wait where one is set; else aiokafka's 500 ms (the worker's is
    # Faust's 1,500 ms there, but Apache Kafka answers as soon as records come).
    fetch_wait = fetch_wait_ms(settings, uses_embedded_broker(settings)) or 500
    seconds = min(options.latency_duration_s, 10.0)
    try:
        result.latency.delivery_p50_ms, result.latency.delivery_p99_ms = measure_delivery(
            settings, options.latency_rate, seconds, fetch_wait
        )
    except (KafkaError, OSError) as exc:  # the other figures are still worth reporting
        result.notes.append(f"delivery phase: {exc!r}")


def run_bench(settings: Settings, options: BenchOptions) -> BenchResult:
    """Run every measurement against the configured Kafka; print and write the result.

    Each workload gets its own topics and a fresh worker; the latency phase follows the
    first workload's throughput phase on that worker and those topics."""
    if options.profile_dir is not None:
        options.profile_dir.mkdir(parents=True, exist_ok=True)
    result = BenchResult(machine=machine())
    settings = settings.model_copy(update={"topic_prefix": f"bench{int(time.time())}"})
    state_from = "trials" if "trials" in options.workloads else options.workloads[0]
    prepared = {
        name: prepare(name, options, settings, name == state_from, result)
        for name in options.workloads
    }
    with tempfile.TemporaryDirectory(prefix="cartwatch-bench-") as tmp:
        for index, (name, (workload_settings, expected)) in enumerate(prepared.items()):
            workload = result.workloads[name]
            worker = WorkerProcess(workload_settings, Path(tmp) / f"worker-{name}")
            worker.start(wait_healthy=None)
            try:
                profile = options.profile_dir and options.profile_dir / f"worker-{name}-pyspy.txt"
                run = measure_worker(worker, expected, profile)
                workload.worker_events_per_s = run.events_per_s
                workload.worker_vs_raw = run.events_per_s / workload.raw_events_per_s
                workload.worker_rss_before_bytes = run.rss_before
                workload.worker_rss_after_bytes = run.rss_after
                workload.rss_bytes_per_patient = per_patient(
                    run.rss_before, run.rss_after, workload.patients
                )
                if index == 0:
                    latency_phase(worker, workload_settings, options, result)
            finally:
                worker.stop()
        if not options.skip_restart:
            try:  # the other figures are worth reporting even if this phase runs out of time
                result.restart = measure_restart(
                    settings, options.restart_patients, Path(tmp) / "restart", timeout=1800
                )
            except (TimeoutError, RuntimeError) as exc:
                result.notes.append(f"restart phase: {exc}")
    result.machine["load_avg_at_end"] = os.getloadavg()
    report(result, options.out)
    return result
