"""The PromQL of deploy/: dashboard panel targets, alert rules, and the metric and label
names each expression reads, next to what the service's `Metrics` exports."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from cartwatch.streams.worker.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
# Series Prometheus makes itself, not the service.
PROMETHEUS_SERIES = {"up": ("instance", "job")}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from."""

    source: str  # dashboard file or rule file
    title: str  # panel title or alert name
    expr: str


def panel_queries() -> list[Query]:
    """Every target of every panel of every provisioned dashboard."""
    queries = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                queries.append(Query(path.name, panel["title"], target["expr"]))
    return queries


def rule_queries() -> list[Query]:
    """Every alerting rule's expression."""
    queries = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                queries.append(Query(path.name, rule["alert"], rule["expr"]))
    return queries


def exported_series() -> dict[str, tuple[str, ...]]:
    """Sample name -> label names, of every metric the service's `Metrics` defines."""
    metrics = Metrics(CollectorRegistry())
    series = dict(PROMETHEUS_SERIES)
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix in _SUFFIXES[metric._type]:
                series[metric._name + suffix] = tuple(metric._labelnames)
    return series


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) that a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # no identifiers inside strings
    labels = {n for _, group in _GROUPING.findall(text) for n in re.findall(r"\w+", group)}
    text = _GROUPING.sub(" ", text)
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    words = re.findall(r"([A-Za-z_:][\w:]*)\s*(\(?)", text)
    metrics = {w for w, call in words if not call and w.lower() not in _KEYWORDS}
    return metrics, labels
