"""The results of `cartwatch bench`: what one run measured, its targets and its table.

`BenchResult` holds every figure (`WorkloadResult` those of one workload); `targets` sets
them against the targets of docs/BENCHMARKS.md; `report` prints the table and writes the
JSON. The measurements themselves are in bench.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from cartwatch.streams.devtools.bench_latency import Latency
from cartwatch.streams.devtools.bench_report import Target, info_rows, render_table, target_rows
from cartwatch.streams.devtools.bench_restart import Restart

RESTART_TARGET_PATIENTS = 100_000  # target: restart-to-ready <= 30 s for 100,000 patients


@dataclass
class WorkloadResult:
    """The throughput figures of one workload (and the worker's memory on it)."""

    name: str
    messages: int = 0  # published, invalid ones included
    patients: int = 0  # patients with a record after the stream (the core's count)
    raw_events_per_s: float | None = None
    worker_events_per_s: float | None = None
    worker_vs_raw: float | None = None
    core_events_per_s: float | None = None
    json_loads_events_per_s: float | None = None  # json.loads only: the ceiling of any core
    decode_events_per_s: float | None = None  # pydantic decode + validation only
    worker_rss_before_bytes: int | None = None  # VmRSS before the worker processed an event
    worker_rss_after_bytes: int | None = None  # VmRSS once it processed the whole stream
    rss_bytes_per_patient: float | None = None  # (after - before) / patients


@dataclass
class BenchResult:
    """Everything one run measured."""

    machine: dict
    workloads: dict[str, WorkloadResult] = field(default_factory=dict)
    latency: Latency | None = None
    state_workload: str = ""  # the workload the state per patient was measured on
    state_patients: int = 0
    state_bytes_per_patient_stored: float = 0.0  # the table's value (models/record_codec.py)
    state_bytes_per_patient_json: float = 0.0  # the same record as plain JSON, for comparison
    state_bytes_per_patient_record: float = 0.0  # PatientRecord objects (tracemalloc)
    restart: Restart | None = None
    notes: list[str] = field(default_factory=list)


def per_patient(before: int | None, after: int | None, patients: int) -> float | None:
    """Resident memory growth per patient; None when a reading is missing."""
    if before is None or after is None or patients <= 0:
        return None
    return (after - before) / patients


def excess(value: float | None, floor: float | None) -> float | None:
    """`value` above `floor` (both from the same run); None when either is missing."""
    return None if value is None or floor is None else value - floor


def targets(r: BenchResult) -> list[Target]:
    """The targets (docs/BENCHMARKS.md) against this run's figures."""
    lat, rst = r.latency, r.restart
    full = rst is not None and rst.patients >= RESTART_TARGET_PATIENTS
    trials = r.workloads.get("trials")
    rows = [
        Target(f"worker / raw consume+decode [{w.name}]", w.worker_vs_raw, 0.25, True, "ratio")
        for w in r.workloads.values()
    ]
    rows += [
        Target("offline core [trials]", trials and trials.core_events_per_s, 150_000, True,
               "events/s"),
        # The broker's own delivery (inputs alone, same topics, same run) is the floor.
        Target("event-to-alert p99 over inputs delivered alone p99",
               lat and excess(lat.p99_ms, lat.delivery_p99_ms), 50, False, "ms"),
        Target("event-loop lag p99 (latency phase)", lat and lat.loop_lag_p99_ms, 50, False,
               "ms"),
        Target("state per patient (stored)", r.state_bytes_per_patient_stored, 2048, False, "B"),
    ]  # fmt: skip
    rows += [
        Target(f"resident memory per patient [{w.name}]", w.rss_bytes_per_patient, 4096, False,
               "B")
        for w in r.workloads.values()
    ]  # fmt: skip
    # The target is for 100,000 patients; a smaller run is shown in the context rows only.
    rows.append(
        Target("restart to ready, 100,000 patients", rst.ready_s if full else None, 30, False, "s")
    )
    return rows


def workload_context(w: WorkloadResult) -> dict[str, tuple[float | None, str]]:
    """The throughput figures of one workload, reported next to the targets."""
    mib = 1024 * 1024
    before, after = w.worker_rss_before_bytes, w.worker_rss_after_bytes
    return {
        f"[{w.name}] messages": (w.messages, f"messages, {w.patients:,} patients"),
        f"[{w.name}] raw consume+decode": (w.raw_events_per_s, "events/s"),
        f"[{w.name}] worker steady state": (w.worker_events_per_s, "events/s"),
        f"[{w.name}] offline core": (w.core_events_per_s, "events/s"),
        f"[{w.name}] in-process json.loads only": (w.json_loads_events_per_s, "events/s"),
        f"[{w.name}] in-process decode + validation only": (w.decode_events_per_s, "events/s"),
        f"[{w.name}] worker RSS before / after": (
            before and before / mib,
            f"MiB / {after / mib:,.1f} MiB" if after else "MiB / -",
        ),
    }


def context(r: BenchResult) -> dict[str, tuple[float | None, str]]:
    """Figures reported next to the targets."""
    lat, rst = r.latency, r.restart
    figures: dict[str, tuple[float | None, str]] = {}
    for w in r.workloads.values():
        figures |= workload_context(w)
    return figures | {
        "latency input rate achieved": (lat and lat.rate_achieved, "events/s"),
        "event-to-alert p50": (lat and lat.p50_ms, "ms"),
        "event-to-alert p99": (lat and lat.p99_ms, "ms"),
        "inputs delivered alone (bare consumer) p50": (lat and lat.delivery_p50_ms, "ms"),
        "inputs delivered alone (bare consumer) p99": (lat and lat.delivery_p99_ms, "ms"),
        "alerts matched / expected": (
            lat and lat.alerts_matched,
            f"of {lat and lat.alerts_expected}",
        ),
        "event-loop lag p50 (latency phase)": (lat and lat.loop_lag_p50_ms, "ms"),
        "event-loop lag observations (latency phase)": (lat and lat.loop_lag_observations, ""),
        f"state per patient (plain JSON) [{r.state_workload}]": (
            r.state_bytes_per_patient_json,
            "B",
        ),
        f"state per patient (PatientRecord objects) [{r.state_workload}]": (
            r.state_bytes_per_patient_record,
            "B",
        ),
        "restart: patients": (rst and rst.patients, ""),
        "restart: process start -> ready": (rst and rst.ready_s, "s"),
        "restart: Faust's group joined (tables)": (rst and rst.group_join_s, "s"),
        "restart: input group joined": (rst and rst.input_join_s, "s"),
        "restart: input partitions assigned": (rst and rst.assigned_s, "s"),
        "restart: input assigned -> ready": (rst and rst.after_join_s, "s"),
        "restart: first worker load": (rst and rst.load_s, "s"),
    }


def report(result: BenchResult, out: Path | None) -> None:
    """Print the table of figures against targets; write the JSON."""
    rows = target_rows(targets(result)) + info_rows(context(result))
    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough for one line a figure
        console.width = max(console.width, 130)
    console.print(render_table(rows, f"cartwatch bench, {result.machine['date']}"))
    if out is not None:
        data = asdict(result)
        if data["latency"]:
            data["latency"].pop("latencies_ms")
        data["targets"] = [
            dict(zip(("figure", "measured", "target", "verdict"), row, strict=True)) for row in rows
        ]
        out.write_text(json.dumps(data, indent=2) + "\n")
