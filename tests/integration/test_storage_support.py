"""Shared parts of the storage tests (no tests here): real databases and row builders.

PostgreSQL is the machine's cluster at 127.0.0.1:5432 (trust auth); each test module
gets its own uniquely named database, dropped afterwards, so runs never collide.
`ThrowawayPostgres` is a second, private cluster a test may stop and start at will.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from cartwatch.alerts.model import AlertRaised, alert_id
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.items import DeadLetter, PatientSnapshot
from cartwatch.streams.storage.migrate import upgrade

ADMIN_URL = os.environ.get(
    "CARTWATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the shared cluster; dropped on exit."""
    name = f"cartwatch_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[Engine]:
    """A migrated, empty database of `backend` ('sqlite' or 'postgresql')."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'cartwatch.db'}"
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """A private PostgreSQL cluster (initdb in a temp dir, run as the postgres user)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cartwatch-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust")

    def _as_postgres(self, tool: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "log")
        self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def trial() -> str:
    """A trial id no other test uses, so tests can share a module's database."""
    return f"T-{uuid.uuid4().hex[:8]}"


def snapshot(trial_id: str, patient_id: str, accepted: int) -> PatientSnapshot:
    """A snapshot whose record says how many events it holds."""
    record = {"t": trial_id, "p": patient_id, "n": accepted}
    return PatientSnapshot(trial_id, patient_id, record, accepted)


def alert(trial_id: str, patient_id: str, level: int = 2) -> AlertRaised:
    """A crs_grade alert of `level`."""
    return AlertRaised(
        alert_id=alert_id(trial_id, patient_id, "crs_grade", level),
        rule="crs_grade",
        severity="warning" if level == 2 else "critical",
        trial_id=trial_id,
        patient_id=patient_id,
        level=level,
        value=level,
        threshold=2,
        triggered_at="2025-02-07T14:00:00+01:00",
        detected_at=datetime.now(UTC).isoformat(),
        source_event_id=f"{patient_id}-ae-{level}",
        message=f"CRS grade {level}",
    )


def dead_letter(topic: str, offset: int, value: bytes | None = b"{not json") -> DeadLetter:
    """A dead letter from partition 0 of `topic`."""
    return DeadLetter(topic, 0, offset, b"P1", value, ["not valid JSON"])
