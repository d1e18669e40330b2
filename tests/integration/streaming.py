"""Shared parts of the streaming integration tests: settings, publishing, waiting,
the offline reference, and the checks of topics and database rows against it."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from pydantic import SecretStr
from sqlalchemy import select

from cartwatch.alerts.replay import replay
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.patient import PatientRecord
from cartwatch.models.summary import patient_summary
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.kafka.deadletter import read_dead_letter_headers
from cartwatch.streams.kafka.producer import produce_lines
from cartwatch.streams.storage import schema
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.worker.settings import Settings
from tests.integration.kafka_read import read_topic

TOKEN = "integration-token"


def worker_settings(broker, prefix: str, port: int, database_url: str) -> Settings:
    return Settings(
        kafka_bootstrap=broker.bootstrap,
        embedded_broker=True,
        topic_prefix=prefix,
        database_url=SecretStr(database_url),
        api_port=port,
        api_token=SecretStr(TOKEN),
        api_token_roles="viewer,data-manager",  # the tests read the dead letters too
        session_timeout_s=6,
        gauge_interval_s=1,
    )


def is_infusion(raw: bytes) -> bool:
    try:
        return json.loads(raw).get("type") == "infusion"
    except (ValueError, AttributeError):
        return False


def split(lines: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Infusions first, then the rest: a worker consumes topics in parallel, and alerts may
    depend on whether an infusion was processed before its adverse events (CONTRACT 4)."""
    return [r for r in lines if is_infusion(r)], [r for r in lines if not is_infusion(r)]


def to_workers(lines: list[bytes], settings: Settings) -> int:
    sent = produce_lines(lines, settings, source="test")
    return sum(n for topic, n in sent.items() if topic != settings.dead_letter_topic)


def wait_processed(worker: WorkerProcess, expected: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while worker.api.processed_total() < expected:
        assert worker.alive(), worker.log_tail()
        assert time.monotonic() < deadline, f"processed {worker.api.processed_total()}"
        time.sleep(0.5)


def reference(lines, as_of):
    """What an uninterrupted, offline run of the same lines reports."""
    return replay(lines, as_of, RuleThresholds())


def api_report(worker: WorkerProcess, trial_id: str, as_of) -> dict | None:
    """The worker's report of a trial as of an instant; None while the trial is unknown."""
    status, body = worker.api.get(f"/trials/{trial_id}/report?as_of={quote(as_of.isoformat())}")
    return json.loads(body) if status == 200 else None


def api_reports(worker: WorkerProcess, trial_ids, as_of) -> list[dict | None]:
    return [api_report(worker, t, as_of) for t in sorted(trial_ids)]


def wait_for_reports(workers, wanted, as_of, timeout: float = 180.0) -> None:
    """Until every worker's report of every trial equals the reference's."""
    wanted_reports = wanted.report["trials"]
    trial_ids = [t["trial_id"] for t in wanted_reports]
    deadline = time.monotonic() + timeout
    for worker in workers:
        while (got := api_reports(worker, trial_ids, as_of)) != wanted_reports:
            assert worker.alive(), worker.log_tail()
            if time.monotonic() > deadline:
                difference = _difference(got, wanted_reports)
                patients = _patients_differing(worker, wanted, as_of)
                raise AssertionError(f"{difference}\n{patients}\n{worker.dump()}")
            time.sleep(1)


def _patients_differing(worker, wanted, as_of, most: int = 10) -> str:
    """Patients whose accepted events differ from the reference's (for a failure message)."""
    rows = []
    for record in wanted.records.values():
        path = f"/trials/{record.trial_id}/patients/{record.patient_id}"
        status, body = worker.api.get(f"{path}?as_of={quote(as_of.isoformat())}")
        got = json.loads(body)["events_accepted"] if status == 200 else None
        if got != len(record.seen):
            rows.append(f"{record.trial_id}/{record.patient_id}: {got} of {len(record.seen)}")
    return f"{len(rows)} patients differ: " + "; ".join(rows[:most])


def _difference(got: list[dict | None], wanted: list[dict]) -> str:
    """The first figures that differ, readable in a failure message."""
    for mine, theirs in zip(got, wanted, strict=True):
        if mine is None:
            return f"{theirs['trial_id']}: unknown to the worker"
        for part in ("efficacy", "safety"):
            for key, value in theirs[part].items():
                if mine[part][key] != value:
                    return f"{theirs['trial_id']} {part}.{key}: {mine[part][key]} != {value}"
        if mine != theirs:
            return f"{theirs['trial_id']}: n_infused {mine['n_infused']} != {theirs['n_infused']}"
    return "no difference"


def wait_until_stored(settings: Settings, wanted, database_url: str, timeout: float = 120.0):
    """Until the alerts topic and the database hold what the reference says, after a crash.
    The figures can be right before the last
    observations and labs are processed again (they move no figure), so poll, and fail
    with the difference still there at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        on_topic = alert_ids(settings)
        dead = read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)
        try:
            assert_alerts_after_a_crash(on_topic, wanted)
            assert_database_matches(database_url, wanted, on_topic, dead)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def wait_until_committed(workers, timeout: float = 60.0) -> None:
    """Until each worker has committed every input message (its consumer-lag gauges at 0):
    after a restart its commits must catch up, not crawl (streams/kafka/input_consumer.py)."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        while (lag := _lag(worker)) != 0:
            assert worker.alive(), worker.log_tail()
            if time.monotonic() > deadline:
                raise AssertionError(f"{lag} input messages not committed\n{worker.dump()}")
            time.sleep(1)


def _lag(worker: WorkerProcess) -> float:
    samples = worker.api.metric_samples()
    return sum(v for (name, _), v in samples.items() if name == "cartwatch_consumer_lag_messages")


def alert_ids(settings: Settings) -> list[str]:
    records = read_topic(settings.kafka_bootstrap, settings.alerts_topic)
    return [json.loads(r.value)["alert_id"] for r in records]


def assert_database_matches(url: str, reference, alert_ids, dead_letters) -> None:
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
    differing = [k for k in wanted if not same_record(snapshots[k], wanted[k])]
    assert differing == [], _record_difference(snapshots[differing[0]], wanted[differing[0]])
    assert stored_alerts == set(alert_ids)
    worker_dead = {
        (h["topic"], h["partition"], h["offset"])
        for h in (read_dead_letter_headers(r.headers) for r in dead_letters)
        if h["partition"] >= 0  # those the worker dead-lettered (not the producer)
    }
    assert stored_dead == worker_dead


def same_record(stored: dict, replayed: PatientRecord) -> bool:
    """The same accepted events and the same derived clinical state (list order follows
    arrival). The levels already alerted are left out: they follow the order alerts fired
    in, which CONTRACT 4 lets depend on arrival; the alerts are compared on their own."""
    record = PatientRecord.from_dict(stored)
    as_of = max(replayed.event_times)

    def state(r: PatientRecord) -> dict:
        return {k: v for k, v in patient_summary(r, as_of).items() if k != "alerted_levels"}

    return record.seen == replayed.seen and state(record) == state(replayed)


def _record_difference(stored: dict, replayed: PatientRecord) -> str:
    """How a stored record differs from the replayed one, readable in a failure message."""
    record = PatientRecord.from_dict(stored)
    as_of = max(replayed.event_times)
    mine, theirs = patient_summary(record, as_of), patient_summary(replayed, as_of)
    return (
        f"{replayed.patient_id}: events missing {sorted(replayed.seen - record.seen)}, "
        f"extra {sorted(record.seen - replayed.seen)}; differing "
        f"{ {k: (mine[k], theirs[k]) for k in theirs if mine.get(k) != theirs[k]} }"
    )


def assert_alerts_after_a_crash(on_topic, wanted) -> None:
    """A crash changes no alert: each patient rule reads one input topic (and the
    infusions, streamed first), whose order per patient survives a restart, and a record
    restored from the changelog holds every event it had applied, so the alert ids are
    those of an uninterrupted run; re-sent ones carry the same id (CONTRACT 4)."""
    wanted_ids = {a.alert_id for a in wanted.alerts}
    assert set(on_topic) == wanted_ids, (
        f"missing {sorted(wanted_ids - set(on_topic))}, new {sorted(set(on_topic) - wanted_ids)}"
    )
