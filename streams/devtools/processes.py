"""A `cartwatch worker` child process, for the demo and the integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Self

from cartwatch.streams.http.client import ApiClient
from cartwatch.streams.worker.settings import Settings


class WorkerProcess:
    """Start, stop (SIGTERM) or kill (SIGKILL) one worker with the given settings."""

    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        extra_env: dict | None = None,
        api_cafile: str | None = None,
    ) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        # With CARTWATCH_API_TLS_CERT set the API speaks HTTPS only; `api_cafile` is the CA
        # the client trusts for it.
        scheme = "https" if settings.api_tls_cert else "http"
        base_url = f"{scheme}://127.0.0.1:{settings.api_port}"
        self.api = ApiClient(base_url, settings.api_token, cafile=api_cafile)

    def environment(self) -> dict[str, str]:
        """The child's environment: ours, then the settings as CARTWATCH_* variables."""
        s = self.settings
        env = os.environ | {
            "CARTWATCH_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "CARTWATCH_TOPIC_PREFIX": s.topic_prefix,
            "CARTWATCH_API_PORT": str(s.api_port),
            "CARTWATCH_TOPIC_PARTITIONS": str(s.topic_partitions),
            "CARTWATCH_SESSION_TIMEOUT_S": str(s.session_timeout_s),
            "CARTWATCH_GAUGE_INTERVAL_S": str(s.gauge_interval_s),
            "CARTWATCH_DATA_DIR": str(self.data_dir / "faust"),
            "CARTWATCH_DATABASE_URL": self.database_url(),
        }
        if s.embedded_broker is not None:
            env["CARTWATCH_EMBEDDED_BROKER"] = "true" if s.embedded_broker else "false"
        if s.api_token is not None:
            env["CARTWATCH_API_TOKEN"] = s.api_token.get_secret_value()
            env["CARTWATCH_API_TOKEN_ROLES"] = s.api_token_roles
        if s.api_tls_cert is not None and s.api_tls_key is not None:
            env |= {
                "CARTWATCH_API_TLS_CERT": s.api_tls_cert,
                "CARTWATCH_API_TLS_KEY": s.api_tls_key,
            }
        return env | self.extra_env

    def database_url(self) -> str:
        """The configured database, or (when none was set) SQLite next to the worker's data."""
        if "database_url" in self.settings.model_fields_set:
            return self.settings.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'cartwatch.db'}"

    def start(self, wait_healthy: float | None = 180.0) -> Self:
        """Start the worker; by default wait until it consumes (/healthz is 200)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "worker.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cartwatch.streams.cli.main", "worker"],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_healthy:
            try:
                self.api.wait_healthy(wait_healthy, alive=self.alive)
            except BaseException:
                self.kill()  # never leave a half-started worker behind
                raise
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no commit; the crash a restart must survive."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def dump(self, lines: int = 150) -> str:
        """The log's tail after asking the worker for its diagnostic dump (SIGUSR1: its
        asyncio tasks and consumer offsets, streams/worker/diagnostics.py)."""
        if self.alive():
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(2)
        return self.log_tail(lines)

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir / "worker.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
