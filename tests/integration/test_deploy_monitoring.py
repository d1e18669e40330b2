"""The monitoring of deploy/, for real: a worker fed a simulated trial through the embedded
broker, scraped by Prometheus configured from deploy/prometheus, alerting through
Alertmanager configured from deploy/alertmanager to a local webhook and mailbox."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

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
from tests.integration.test_storage_support import ThrowawayPostgres

# The escalation rule waits 30 min in production; here it fires after 3 s, so the test sees
# it fire for a real unacknowledged critical alert and resolve once all are acknowledged.
ESCALATION = "CartwatchCriticalAlertUnacknowledged"
ACKNOWLEDGEMENT = {"by": "dr.monitoring", "note": "seen in the monitoring test"}
# Series a panel or a rule reads: each must move (some value other than 0) during the run.
SINCE_START = "30m"


@dataclass
class Escalation:
    open_while_firing: float  # open critical alerts (Prometheus) while the rule fired
    acknowledged: int  # critical alerts acknowledged through the API
    answers: set[int]  # the API's statuses for those acknowledgements
    resolved: bool  # the rule's alert gone and the open-critical gauge at 0


@dataclass
class Stack:
    trial_id: str
    report: dict
    worker: WorkerProcess
    prometheus: Daemon
    alertmanager: Daemon
    webhook: WebhookReceiver
    mailbox: SmtpSink
    escalation: Escalation
    database_outage_seen: bool  # cartwatch_database_writes_failing 1 on Prometheus


@pytest.fixture(scope="module")
def stack(broker, tmp_path_factory) -> Iterator[Stack]:
    work: Path = tmp_path_factory.mktemp("deploy-monitoring")
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        embedded_broker=True,
        topic_prefix="deploy-monitoring",
        api_port=free_port(),
        api_token=SecretStr("deploy-token"),
        api_token_roles="viewer,physician",  # the test acknowledges as the service account
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
        pending = {ESCALATION: "3s"}
        prometheus = start_prometheus(work, settings.api_port, alertmanager.port, pending)
        started.append(prometheus)
        database = ThrowawayPostgres()
        started.append(_Removed(database))
        database.start()
        with_database = settings.model_copy(update={"database_url": SecretStr(database.url)})
        worker = WorkerProcess(with_database, work / "worker")
        started.append(worker)
        worker.start()
        sent = produce_lines(trial.lines(), settings, source="deploy-test")
        expected = sum(n for topic, n in sent.items() if topic in settings.input_topics)
        _wait(lambda: worker.api.processed_total() >= expected, 240, worker.log_tail)
        escalation = _escalate_and_acknowledge(worker, prometheus, trial.trial_id)
        outage_seen = _database_outage(database, worker, prometheus, settings, trial)
        path = f"/trials/{trial.trial_id}/report"
        _wait(
            lambda: _scraped_figures(prometheus, trial.trial_id) == _figures(worker.api.json(path)),
            60,
        )
        report = worker.api.json(path)
        yield Stack(
            trial.trial_id,
            report,
            worker,
            prometheus,
            alertmanager,
            webhook,
            mailbox,
            escalation,
            outage_seen,
        )
    finally:
        for part in reversed(started):
            part.stop()


def _wait(condition, timeout: float, explain=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.5)


class _Removed:
    """A throwaway PostgreSQL cluster as a part to stop: stopped and its files removed."""

    def __init__(self, database: ThrowawayPostgres) -> None:
        self.database = database

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
            self.database.stop("immediate")
        self.database.remove()


def _escalate_and_acknowledge(worker: WorkerProcess, prometheus: Daemon, trial_id: str):
    """Wait for the escalation rule to fire, acknowledge every critical alert of the trial
    through the API, and wait for the open-critical gauge to fall and the rule to resolve."""
    firing = f'ALERTS{{alertname="{ESCALATION}", alertstate="firing", trial_id="{trial_id}"}}'
    open_critical = f'max(cartwatch_alerts_open{{trial_id="{trial_id}", severity="critical"}})'
    _wait(lambda: instant(prometheus, firing), 90, worker.log_tail)
    raised = worker.api.json(f"/alerts?trial_id={trial_id}")["alerts"]
    critical = [a["alert_id"] for a in raised if a["severity"] == "critical"]
    # The rule may fire on the first critical alerts, before the last are stored and counted.
    every = [float(len(critical))]
    _wait(lambda: _values(prometheus, open_critical) == every, 60, worker.log_tail)
    (open_while_firing,) = _values(prometheus, open_critical)
    assert instant(prometheus, firing)  # still firing: nothing was acknowledged yet
    answers = {
        worker.api.post_json(f"/alerts/{quote(alert_id)}/ack", ACKNOWLEDGEMENT)[0]
        for alert_id in critical
    }
    _wait(lambda: _values(prometheus, open_critical) == [0.0], 60, worker.log_tail)
    _wait(lambda: not instant(prometheus, firing), 60, worker.log_tail)
    return Escalation(open_while_firing, len(critical), answers, resolved=True)


def _database_outage(database, worker, prometheus, settings, trial) -> bool:
    """Stop PostgreSQL, send one event (a normal temperature of an infused patient: no
    figure changes), see the failing-writes gauge on Prometheus, start it again and wait
    until the event is stored and the gauge is back at 0."""
    before = worker.api.processed_total()
    patient = next(json.loads(line)["patient_id"] for line in trial.lines())
    event = {
        "event_id": "monitoring-outage-1",
        "type": "observation",
        "trial_id": trial.trial_id,
        "patient_id": patient,
        "occurred_at": "2026-01-30T12:00:00+00:00",
        "code": "temperature_c",
        "value": 36.8,
    }
    database.stop("immediate")
    produce_lines([json.dumps(event).encode()], settings, source="deploy-test")
    failing = "max(cartwatch_database_writes_failing)"
    _wait(lambda: _values(prometheus, failing) == [1.0], 60, worker.log_tail)
    database.start()
    _wait(lambda: worker.api.processed_total() > before, 120, worker.log_tail)
    _wait(lambda: _values(prometheus, failing) == [0.0], 60, worker.log_tail)
    return True


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
    empty = [
        query
        for query in panel_queries()
        if not _values(stack.prometheus, _as_run_by_grafana(query, stack.trial_id))
    ]
    assert not empty, empty


def test_every_series_a_panel_or_a_rule_reads_moved_during_the_run(stack: Stack):
    """No series is exempt: each took a value other than 0 at some scrape (the lag while
    the trial was consumed, the open and acknowledged alerts, the database outage...)."""
    read = set().union(*(names_in(q.expr)[0] for q in [*panel_queries(), *rule_queries()]))
    still = [
        name
        for name in sorted(read)
        if not any(
            math.isfinite(v) and v != 0
            for v in _values(stack.prometheus, f"max_over_time({name}[{SINCE_START}])")
        )
    ]
    assert still == []


def test_an_unacknowledged_critical_alert_escalates_and_resolves_once_acknowledged(
    stack: Stack,
):
    escalation = stack.escalation
    assert escalation.open_while_firing == escalation.acknowledged > 0
    assert escalation.answers == {200}
    assert escalation.resolved
    acknowledged = _values(stack.prometheus, "sum(cartwatch_alert_ack_seconds_count)")
    assert acknowledged == [float(escalation.acknowledged)]


def test_failing_database_writes_show_on_prometheus_and_clear(stack: Stack):
    assert stack.database_outage_seen


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
