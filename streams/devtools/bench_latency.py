"""Event-to-alert latency of `cartwatch bench` at a steady input rate.

Fresh trial ids, so the stream meets no earlier state. Each patient gets an infusion, a few
quiet labs and observations, then a CRS grade 2 and an ICANS grade 1 report: each report
crosses its rule's threshold (CONTRACT 4: crs_grade from 2, icans_grade from 1), so one
alert per report. Latency is the alert record's Kafka timestamp minus the timestamp we set
on the causing message when producing it (both CreateTime, one clock: this machine's).

`measure_delivery` gives the floor under it: the same stream on the same topics, read by a
bare consumer with the worker's fetch wait and no worker running. The embedded broker's
fetches slow down as a partition's log grows (raw consumer at 1,500 events/s: p99 16-18 ms
on fresh topics, 99-319 ms on the same topics after 45,000 more messages; 2026-11-30), so
a latency phase that follows the throughput phase on its topics pays that too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from cartwatch.streams.devtools.bench_report import (
    bucket_increase,
    histogram_buckets,
    histogram_quantile,
    percentile,
)
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.kafka.producer import route
from cartwatch.streams.kafka.security import aiokafka_options
from cartwatch.streams.worker.settings import Settings

BASE = datetime(2026, 1, 5, 8, tzinfo=UTC)
LOOP_LAG = "cartwatch_event_loop_lag_seconds"  # the worker's histogram (loop_lag.py)
QUIET = (("lab", "CRP", 5.0, "mg/L"), ("observation", "temperature_c", 37.0, None))


@dataclass
class Latency:
    """What the latency phase measured."""

    rate_target: float
    rate_achieved: float = 0.0
    sent: int = 0
    alerts_expected: int = 0
    alerts_matched: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    complete: bool = True
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    delivery_p50_ms: float | None = None  # the inputs' delivery alone (`measure_delivery`)
    delivery_p99_ms: float | None = None
    # The worker's event-loop lag while the stream was sent (its /metrics histogram).
    loop_lag_observations: int = 0
    loop_lag_p50_ms: float | None = None
    loop_lag_p99_ms: float | None = None


def _event(kind: str, trial: str, patient: str, n: int, at: datetime, **fields) -> dict:
    return {
        "event_id": f"{trial}/{patient}/{n:03d}",
        "type": kind,
        "trial_id": trial,
        "patient_id": patient,
        "occurred_at": at.isoformat(),
        **fields,
    }


def patient_events(trial: str, patient: str, quiet: int = 6) -> list[dict]:
    """Infusion, `quiet` events that raise nothing, then a CRS 2 and an ICANS 1 report."""
    t0 = BASE
    events = [
        _event("infusion", trial, patient, 0, t0, product="CD19 CAR-T", dose_cells_per_kg=1e6)
    ]
    for i in range(quiet):
        kind, code, value, unit = QUIET[i % len(QUIET)]
        at = t0 + timedelta(hours=6 * (i + 1))
        fields = {"analyte": code, "value": value, "unit": unit} if kind == "lab" else {}
        fields = fields or {"code": code, "value": value}
        events.append(_event(kind, trial, patient, i + 1, at, **fields))
    for n, (term, grade, day) in enumerate((("CRS", 2, 3), ("ICANS", 1, 5)), start=quiet + 1):
        onset = t0 + timedelta(days=day)
        events.append(
            _event("adverse_event", trial, patient, n, onset + timedelta(hours=2),
                   ae_id=f"{patient}-{term}", term=term, grade=grade, onset_at=onset.isoformat())
        )  # fmt: skip
    return events


def latency_stream(trial: str) -> Iterator[tuple[bytes, bool]]:
    """(message, raises an alert) for patient after patient, without end."""
    n = 0
    while True:
        for event in patient_events(trial, f"L{n:06d}"):
            yield json.dumps(event).encode(), event["type"] == "adverse_event"
        n += 1


async def produce_steady(
    settings: Settings, rate: float, duration: float
) -> tuple[dict[str, int], list[str], int, float]:
    """Send at `rate`/s for `duration` s: ({event_id: ms}, alerting ids, sent, achieved rate).

    With aiokafka rather than kafka-python (`cartwatch produce`): on two cores the load
    generator shares the machine with the worker and the broker, and kafka-python spent
    125 µs of CPU per message against aiokafka's 33 (20,000 messages, 2026-11-30).
    """
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **aiokafka_options(settings))
    await producer.start()
    try:
        stream = latency_stream(f"LAT-{int(time.time())}")
        sent_at: dict[str, int] = {}
        alerting_ids: list[str] = []
        acks: list[asyncio.Future] = []
        sent, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < duration:
            while sent < rate * elapsed:
                raw, alerting = next(stream)
                routed = route(raw, settings)
                ms = int(time.time() * 1000)
                acks.append(await producer.send(routed.topic, raw, key=routed.key, timestamp_ms=ms))
                event_id = json.loads(raw)["event_id"]
                sent_at[event_id] = ms
                if alerting:
                    alerting_ids.append(event_id)
                sent += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*acks)
        achieved = sent / (time.perf_counter() - start)
    finally:
        await producer.stop()
    return sent_at, alerting_ids, sent, achieved


def assign_all(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Assign every partition of `topics` to `consumer` (no group); the partitions."""
    tps = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(tps)
    return tps


async def _read_alerts(
    settings: Settings, causes: dict[str, int], expected: int, deadline: float
) -> dict[str, tuple[str, int]]:
    """alert_id -> (cause, Kafka timestamp ms) of alerts citing our events, until all or deadline.

    The cause is usually the report, but an infusion read after its patient's report (another
    topic, so no order between them) raises the alert and is cited instead.

    Read until every wanted cause is seen rather than up to the end offsets: the embedded
    broker's "latest" offset can be wrong (streams/kafka/faust_settings.py).
    """
    consumer = AIOKafkaConsumer(**aiokafka_options(settings))
    await consumer.start()
    try:
        await consumer.seek_to_beginning(*assign_all(consumer, [settings.alerts_topic]))
        found: dict[str, tuple[str, int]] = {}
        while len(found) < expected and time.monotonic() < deadline:
            for rows in (await consumer.getmany(timeout_ms=200, max_records=5000)).values():
                for record in rows:
                    alert = json.loads(record.value)
                    if alert["source_event_id"] in causes:
                        found.setdefault(
                            alert["alert_id"], (alert["source_event_id"], record.timestamp)
                        )
        return found
    finally:
        await consumer.stop()


def measure_latency(
    settings: Settings,
    rate: float,
    duration: float,
    drain: float,
    after_stream: Callable[[], None] = lambda: None,
) -> Latency:
    """Stream at `rate`, wait up to `drain` s for every alert, match alerts to their causes.

    `after_stream` is called once the stream is sent, before the wait for the last alerts."""
    sent_at, alerting, sent, achieved = asyncio.run(produce_steady(settings, rate, duration))
    after_stream()
    deadline = time.monotonic() + drain
    found = asyncio.run(_read_alerts(settings, sent_at, len(alerting), deadline))
    cut_ms = int(time.time() * 1000)
    values = [float(ts - sent_at[cause]) for cause, ts in found.values()]
    # An alert that had not arrived by the cut took at least until the cut: counted as such
    # (from the latest reports not cited, the smallest bound), so a backlog shows in the
    # percentiles as a lower bound instead of vanishing.
    missing = max(0, len(alerting) - len(found))
    cited = {cause for cause, _ in found.values()}
    uncited = sorted(sent_at[e] for e in alerting if e not in cited)
    values += [float(cut_ms - ms) for ms in uncited[len(uncited) - missing :]] if missing else []
    return Latency(
        rate_target=rate,
        rate_achieved=achieved,
        sent=sent,
        alerts_expected=len(alerting),
        alerts_matched=len(found),
        p50_ms=percentile(values, 50),
        p99_ms=percentile(values, 99),
        max_ms=max(values) if values else None,
        complete=not missing,
        latencies_ms=values,
    )


def loop_lag(worker: WorkerProcess) -> dict[float, float]:
    """The worker's event-loop lag histogram now ({upper bound: cumulative count})."""
    return histogram_buckets(worker.api.metric_samples(), LOOP_LAG)


def observe_loop_lag(latency: Latency, before: dict, after: dict) -> None:
    """The lag observed between two readings, into the latency phase's figures."""
    seen = bucket_increase(before, after)
    latency.loop_lag_observations = int(seen.get(float("inf"), 0))
    for q, name in ((0.5, "loop_lag_p50_ms"), (0.99, "loop_lag_p99_ms")):
        value = histogram_quantile(q, seen)
        setattr(latency, name, None if value is None else value * 1000)


async def _delivery(settings: Settings, rate: float, duration: float, fetch_wait: int) -> list:
    """Milliseconds from each produced record's timestamp to its arrival at a bare consumer."""
    consumer = AIOKafkaConsumer(fetch_max_wait_ms=fetch_wait, **aiokafka_options(settings))
    await consumer.start()
    try:
        await consumer.seek_to_end(*assign_all(consumer, settings.input_topics))
        start_ms, ages = int(time.time() * 1000), []
        producing = asyncio.ensure_future(produce_steady(settings, rate, duration))
        deadline = time.monotonic() + duration + 30
        while time.monotonic() < deadline:
            if producing.done() and len(ages) >= producing.result()[2]:
                break
            batch = await consumer.getmany(timeout_ms=100)
            now_ms = time.time() * 1000
            for rows in batch.values():  # "latest" can be early here: older rows skipped
                ages.extend(now_ms - r.timestamp for r in rows if r.timestamp >= start_ms)
        await producing
        return ages
    finally:
        await consumer.stop()


def measure_delivery(
    settings: Settings, rate: float, duration: float, fetch_wait: int
) -> tuple[float | None, float | None]:
    """p50 and p99 (ms) of the latency stream at `rate` to the same input topics, read by a
    bare consumer (run it with no worker consuming): the broker's and client's part."""
    ages = asyncio.run(_delivery(settings, rate, duration, fetch_wait))
    return percentile(ages, 50), percentile(ages, 99)
