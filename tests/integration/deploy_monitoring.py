"""Prometheus and Alertmanager (Debian's packages) run from deploy/'s own configuration,
with only the addresses rewritten to 127.0.0.1 (and SMTP without TLS to the local sink)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Self

import yaml

from cartwatch.streams.devtools.broker import free_port
from tests.integration.deploy_queries import DEPLOY


class Daemon:
    """A Prometheus-family server on 127.0.0.1; ready when GET /-/ready is 200."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        self.argv, self.port, self.log = argv, port, log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Self:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{self.argv[0]} not ready: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get_json(self, path: str, **params: str) -> dict:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=10) as response:
            return json.loads(response.read())


def start_prometheus(
    work: Path, worker_port: int, alertmanager_port: int, pending: dict[str, str] | None = None
) -> Daemon:
    """deploy/prometheus as is, scraping and evaluating every second, targets on 127.0.0.1;
    `pending` shortens the `for:` of the named alerting rules (alert name -> duration)."""
    port = free_port()
    config_dir = work / "prometheus"
    shutil.copytree(DEPLOY / "prometheus", config_dir)
    for rules in (config_dir / "rules").glob("*.yml"):
        groups = yaml.safe_load(rules.read_text())
        for rule in (r for g in groups["groups"] for r in g["rules"]):
            if rule.get("alert") in (pending or {}):
                rule["for"] = pending[rule["alert"]]
        rules.write_text(yaml.safe_dump(groups))
    config = yaml.safe_load((config_dir / "prometheus.yml").read_text())
    local = {
        "worker-1:6066": f"127.0.0.1:{worker_port}",
        "worker-2:6066": None,  # one worker in the test
        "localhost:9090": f"127.0.0.1:{port}",
        "alertmanager:9093": f"127.0.0.1:{alertmanager_port}",
    }
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    for block in (*config["alerting"]["alertmanagers"], *config["scrape_configs"]):
        for static in block["static_configs"]:
            assert set(static["targets"]) <= local.keys(), static["targets"]
            static["targets"] = [local[t] for t in static["targets"] if local[t]]
    (config_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
    argv = [
        "prometheus",
        f"--config.file={config_dir / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return Daemon(argv, port, work / "prometheus.log").start()


def start_alertmanager(work: Path, webhook_url: str, smtp_port: int) -> Daemon:
    """deploy/alertmanager as is; webhooks to `webhook_url/<receiver>`, mail to the sink."""
    port = free_port()
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    config["global"] |= {"smtp_smarthost": f"127.0.0.1:{smtp_port}", "smtp_require_tls": False}
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = f"{webhook_url}/{receiver['name']}"
    path = work / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        "prometheus-alertmanager",
        f"--config.file={path}",
        f"--storage.path={work / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port: a single instance, 127.0.0.1 only
    ]
    return Daemon(argv, port, work / "alertmanager.log").start()


def instant(prometheus: Daemon, expr: str) -> list[dict]:
    """The result vector of an instant query."""
    answer = prometheus.get_json("/api/v1/query", query=expr)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]
