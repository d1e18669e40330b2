"""A small client of the worker's HTTP API, for the demo and the tests."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr


class ApiClient:
    """Blocking JSON client (stdlib only) of one worker's API."""

    def __init__(
        self, base_url: str, token: SecretStr | None = None, cafile: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        # https: the server's certificate is verified against `cafile` (the system's CAs
        # when None), host name included.
        self._tls = (
            ssl.create_default_context(cafile=cafile) if base_url.startswith("https") else None
        )

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of a GET."""
        return self._send(urllib.request.Request(self.base_url + path))

    def post_json(self, path: str, body: dict) -> tuple[int, dict]:
        """Status and JSON answer of a POST of `body` as JSON."""
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        status, answer = self._send(request)
        return status, json.loads(answer)

    def _send(self, request: urllib.request.Request) -> tuple[int, bytes]:
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token.get_secret_value()}")
        try:
            with urllib.request.urlopen(request, timeout=10, context=self._tls) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, path: str) -> dict:
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:200]!r}")
        return json.loads(body)

    def wait_healthy(self, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
        """Wait until /healthz answers 200 (the worker is consuming)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError("the worker exited before it was ready")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.base_url}/healthz not ready after {timeout:.0f} s")

    def report(self, trial_id: str, as_of: str | None = None) -> dict:
        query = f"?as_of={urllib.request.quote(as_of)}" if as_of else ""
        return self.json(f"/trials/{urllib.request.quote(trial_id)}/report{query}")

    def report_or_none(self, trial_id: str) -> dict | None:
        try:
            return self.report(trial_id)
        except (RuntimeError, OSError):
            return None

    def metric_samples(self) -> dict[tuple[str, tuple], float]:
        """Every sample of /metrics: (name, sorted labels) -> value."""
        _, body = self.get("/metrics")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }

    def processed_total(self, metric: str = "cartwatch_events_processed_total") -> float:
        """Input messages the worker has processed (at checkpoints; or `metric`, e.g.
        `cartwatch_events_applied_total`), whatever their outcome."""
        try:
            samples = self.metric_samples()
        except OSError:
            return 0.0
        return sum(v for (name, _), v in samples.items() if name == metric)
