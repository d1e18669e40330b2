"""The monitoring of deploy/, for real: a worker fed a simulated trial through the embedded
broker, scraped by Prometheus configured from deploy/prometheus, alerting through
Alertmanager configured from deploy/alertmanager to a local webhook and mailbox."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from cartwatch.streams.devtools.broker import free_port
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.kafka.producer import produce_lines
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.worker.settings import Settings
from tests.integration.deploy_monitoring import (
    Daemon,
    instant,
    start_alertmanager,
    start_prometheus,
)
from tests.integration.deploy_queries import (
    Query,
    exported_series,
    names_in,
    panel_queries,
    rule_queries,
)
from tests.integration.deploy_receivers import SmtpSink, WebhookReceiver

# Series only issue 6 (acknowledgement, stopping boundary) moves, and the lag, which is 0
# once the trial is consumed: their panels must find the series, at any value.
SERIES_MAY_BE_ZERO = {
    "cartwatch_alerts_open",
    "cartwatch_alert_ack_seconds_bucket",
    "cartwatch_alert_ack_seconds_count",
    "cartwatch_toxicity_boundary_patients",
    "cartwatch_consumer_lag_messages",
}


@dataclass
class Stack:
    trial_id: str
    report: dict
    worker: WorkerProcess
    prometheus: Daemon
    alertmanager: Daemon
    webhook: WebhookReceiver
    mailbox: SmtpSink


@pytest.fixture(scope="module")
def stack(broker, tmp_path_factory) -> Iterator[Stack]:
    work: Path = tmp_path_factory.mktemp("deploy-monitoring")
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        embedded_broker=True,
        topic_prefix="deploy-monitoring",
        api_port=free_port(),
        api_token=SecretStr("deploy-token"),
        session_timeout_s=6,
        gauge_interval_s=1,
    )
    create_topics(settings)
    trial = simulate_trial(seed=11)
    started: list = []
    try:
        webhook, mailbox = WebhookReceiver().start(), SmtpSink().start()
        started += [webhook, mailbox]
        alertmanager = start_alertmanager(work, webhook.url, mailbox.port)
        started.append(alertmanager)
        prometheus = start_prometheus(work, settings.api_port, alertmanager.port)
        started.append(prometheus)
        worker = WorkerProcess(settings, work / "worker")
        started.append(worker)
        worker.start()
        sent = produce_lines(trial.lines(), settings, source="deploy-test")
        expected = sum(n for topic, n in sent.items() if topic in settings.input_topics)
        _wait(lambda: worker.api.processed_total() >= expected, 240, worker.log_tail)
        path = f"/trials/{trial.trial_id}/report"
        _wait(
            lambda: _scraped_figures(prometheus, trial.trial_id) == _figures(worker.api.json(path)),
            60,
        )
        report = worker.api.json(path)
        yield Stack(trial.trial_id, report, worker, prometheus, alertmanager, webhook, mailbox)
    finally:
        for part in reversed(started):
            part.stop()


def _wait(condition, timeout: float, explain=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.5)


def _figures(report: dict) -> list[float]:
    """Infused, remissions, deaths: the last figures to settle as the trial is consumed."""
    efficacy, safety = report["efficacy"], report["safety"]
    return [report["n_infused"], efficacy["remission"]["n"], safety["deaths"]["n"]]


def _scraped_figures(prometheus: Daemon, trial_id: str) -> list[float]:
    trial = f'trial_id="{trial_id}"'
    return [
        *_values(prometheus, f"max(cartwatch_trial_patients_infused{{{trial}}})"),
        *_values(prometheus, f'max(cartwatch_trial_patients{{{trial}, figure="remission"}})'),
        *_values(prometheus, f'max(cartwatch_trial_patients{{{trial}, figure="deaths"}})'),
    ]


def _values(prometheus: Daemon, expr: str) -> list[float]:
    return [float(sample["value"][1]) for sample in instant(prometheus, expr)]


def _as_run_by_grafana(query: Query, trial_id: str) -> str:
    # Grafana's $__rate_interval is at least 4 scrape intervals; 5m covers the whole trial.
    return query.expr.replace("$trial_id", trial_id).replace("$__rate_interval", "5m")


def test_every_dashboard_panel_query_returns_data_after_the_simulated_trial(stack: Stack):
    empty, all_zero = [], []
    for query in panel_queries():
        values = _values(stack.prometheus, _as_run_by_grafana(query, stack.trial_id))
        metrics, _ = names_in(query.expr)
        if not values:
            empty.append(query)
        elif not metrics <= SERIES_MAY_BE_ZERO and not any(
            math.isfinite(v) and v != 0 for v in values
        ):
            all_zero.append(query)
    assert not empty, empty
    assert not all_zero, all_zero


def test_the_trial_variable_lists_the_trial(stack: Stack):
    answer = stack.prometheus.get_json(
        "/api/v1/label/trial_id/values", **{"match[]": "cartwatch_trial_patients_infused"}
    )
    assert answer["data"] == [stack.trial_id]


def test_the_dashboards_show_the_figures_of_the_trial_report(stack: Stack):
    report, trial = stack.report, stack.trial_id
    by = {q.title: _as_run_by_grafana(q, trial) for q in panel_queries()}
    remission = {
        s["metric"]["bound"]: float(s["value"][1])
        for s in instant(stack.prometheus, by["Remission rate (95% CI)"])
    }
    expected = report["efficacy"]["remission"]
    assert remission == pytest.approx(
        {"estimate": expected["rate"], "lower": expected["ci95"][0], "upper": expected["ci95"][1]}
    )
    crs = {
        s["metric"]["grade"]: float(s["value"][1])
        for s in instant(stack.prometheus, by["CRS by worst grade"])
    }
    assert crs == {g: float(n) for g, n in report["safety"]["crs"]["by_grade"].items()}
    on_study = sum(_values(stack.prometheus, by["Patients on study by day since infusion"]))
    assert 0 < on_study <= report["n_infused"] - report["safety"]["deaths"]["n"]


def test_every_series_the_rules_read_is_scraped_from_the_worker(stack: Stack):
    scraped = set(stack.prometheus.get_json("/api/v1/label/__name__/values")["data"])
    wanted = set().union(*(names_in(q.expr)[0] for q in rule_queries()))
    assert wanted <= scraped
    assert wanted <= set(exported_series())


def test_a_critical_cartwatch_alert_reaches_the_safety_webhook_and_mailbox(stack: Stack):
    def critical(item) -> bool:
        body = item["body"]
        return item["path"] == "/safety" and any(
            a["labels"]["alertname"] == "CartwatchCriticalAlert" and a["status"] == "firing"
            for a in body["alerts"]
        )

    notification = stack.webhook.wait_for(critical, timeout=90)
    rules = {a["labels"]["rule"] for a in notification["body"]["alerts"]}
    raised = stack.worker.api.json(f"/alerts?trial_id={stack.trial_id}")["alerts"]
    assert rules and rules <= {a["rule"] for a in raised if a["severity"] == "critical"}
    mail = stack.mailbox.wait_for(lambda m: "CartwatchCriticalAlert" in m["data"], timeout=60)
    assert mail["to"] == ["trial-safety-physicians@example.org"]
