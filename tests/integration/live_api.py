"""A live worker for the API's fuzzing (no tests here): the embedded broker, a PostgreSQL
database, a small simulated trial processed and its alerts stored, and a service token that
holds every role."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import func, select

from cartwatch.streams.devtools.broker import EmbeddedBroker
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.storage import schema
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.worker.settings import Settings
from tests.integration.streaming import split, to_workers, wait_processed
from tests.integration.test_storage_support import free_port, postgres_database

TOKEN = "fuzzing-token"
ALL_ROLES = "viewer,physician,data-manager,admin"
PATIENTS = 12  # of the simulated trial's 94: enough for every kind of answer, quick to process


@dataclass(frozen=True)
class LiveWorker:
    url: str
    database_url: str
    worker: WorkerProcess


def small_trial() -> list[bytes]:
    """The first patients of a simulated trial, with the trial's invalid messages (dead
    letters) kept."""
    trial = simulate_trial(seed=2027, trial_id="FUZZ-01")
    kept = {plan.patient_id for plan in trial.plans[:PATIENTS]}
    return [line for line in trial.lines() if _patient_of(line) in kept or line in trial.invalid]


def _patient_of(line: bytes) -> str | None:
    try:
        return json.loads(line).get("patient_id")
    except (ValueError, AttributeError):
        return None


@contextmanager
def live_worker(broker: EmbeddedBroker, data_dir: Path) -> Iterator[LiveWorker]:
    """A `cartwatch worker` over PostgreSQL with the small trial processed and stored."""
    with postgres_database() as database_url:
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            embedded_broker=True,
            topic_prefix="it-fuzz",
            database_url=SecretStr(database_url),
            api_port=free_port(),
            api_token=SecretStr(TOKEN),
            api_token_roles=ALL_ROLES,
            session_timeout_s=6,
            gauge_interval_s=1,
        )
        create_topics(settings)
        worker = WorkerProcess(settings, data_dir).start()
        try:
            first, rest = split(small_trial())
            expected = to_workers(first, settings)
            wait_processed(worker, expected)
            wait_processed(worker, expected + to_workers(rest, settings))
            _wait_stored(worker, database_url)
            yield LiveWorker(f"http://127.0.0.1:{settings.api_port}", database_url, worker)
        finally:
            worker.stop()


def _wait_stored(worker: WorkerProcess, database_url: str, timeout: float = 120.0) -> None:
    """Until the database holds every alert the worker lists and a dead letter (the
    acknowledgement and the dead-letter list read it)."""
    listed = len(worker.api.json("/alerts")["alerts"])
    engine = make_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                alerts = conn.scalar(select(func.count()).select_from(schema.alerts))
                dead = conn.scalar(select(func.count()).select_from(schema.dead_letters))
            if listed and alerts >= listed and dead:
                return
            assert time.monotonic() < deadline, f"{alerts}/{listed} alerts, {dead} dead letters"
            time.sleep(0.5)
    finally:
        engine.dispose()
