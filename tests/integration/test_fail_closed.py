"""A real `cartwatch worker` with no identity configured: refused beyond loopback, warned
once on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cartwatch.streams.devtools.broker import free_port
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.worker.settings import Settings

pytestmark = pytest.mark.integration
WARNING = "has no identity configured: anyone on this machine may read it"


def _without_identity() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CARTWATCH_")}


def test_a_worker_listening_beyond_loopback_with_no_identity_refuses_to_start(tmp_path: Path):
    env = _without_identity() | {
        "CARTWATCH_API_HOST": "0.0.0.0",
        "CARTWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'cartwatch.db'}",
        "CARTWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # never reached: it stops before Kafka
    }
    done = subprocess.run(
        [sys.executable, "-m", "cartwatch.streams", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "0.0.0.0 with no identity configured" in lines[0]


def test_a_worker_on_loopback_with_no_identity_starts_and_warns_once(broker, tmp_path: Path):
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        embedded_broker=True,
        topic_prefix="fail-closed",
        api_port=free_port(),
        session_timeout_s=6,
    )
    create_topics(settings)
    worker = WorkerProcess(settings, tmp_path, extra_env={"CARTWATCH_API_HOST": "127.0.0.1"})
    try:
        worker.start()
        assert worker.api.get("/trials")[0] == 200  # open: nobody configured
    finally:
        worker.stop()
    log = (tmp_path / "worker.log").read_text()
    assert log.count(WARNING) == 1
