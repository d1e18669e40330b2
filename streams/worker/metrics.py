"""Prometheus metrics, built against an injected registry. No label ever holds a patient id."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Event-to-alert latency: the target is p99 <= 100 ms, so resolve finely below 250 ms
# and keep coarse buckets up to a minute to see backlogs.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Time to acknowledge: a critical alert should be seen within minutes (the Safety alerts
# dashboard and the escalation rule use 15 and 30 min), so resolve 1-60 min and keep a tail.
ACK_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
SEVERITIES = ("info", "warning", "critical")
# Desk pages: the goal is under a second for a 94-patient trial (charts included).
DESK_PAGE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Event-loop lag (loop_lag.py): the bench's target is p99 <= 50 ms, so resolve 1-100 ms
# finely and keep a tail for stalls of seconds.
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1)
LOOP_LAG_BUCKETS += (0.15, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """Every metric the worker exports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._lag_labels: set[tuple[str, str]] = set()
        self._open_alert_labels: set[tuple[str]] = set()
        self.events = Counter(
            "cartwatch_events_processed_total",
            "Input messages processed, by event type and outcome (accepted, duplicate, invalid).",
            ["type", "outcome"],
            registry=registry,
        )
        self.events_applied = Counter(
            "cartwatch_events_applied_total",
            "Input messages applied by the core, counted per batch, before their checkpoint "
            "(a batch read again after a failure counts again).",
            registry=registry,
        )
        self.alerts = Counter(
            "cartwatch_alerts_total",
            "Alerts raised, by rule and severity.",
            ["rule", "severity"],
            registry=registry,
        )
        self.event_to_alert = Histogram(
            "cartwatch_event_to_alert_seconds",
            "From the Kafka record timestamp of the causing message to the alert's send.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "cartwatch_dead_letters_total",
            "Messages sent to the dead-letter topic, by source topic.",
            ["source_topic"],
            registry=registry,
        )
        self.patients = Gauge(
            "cartwatch_trial_patients_infused",
            "Infused patients per trial.",
            ["trial_id"],
            registry=registry,
        )
        self.cohort_count = Gauge(
            "cartwatch_trial_patients",
            "Patients per trial by figure (remission, cr, cri, mrd_negative, in_remission, "
            "relapsed, deaths).",
            ["trial_id", "figure"],
            registry=registry,
        )
        self.remission_rate = Gauge(
            "cartwatch_trial_remission_rate",
            "Remission rate with its exact 95% CI bounds (bound: estimate, lower, upper).",
            ["trial_id", "bound"],
            registry=registry,
        )
        self.median_months = Gauge(
            "cartwatch_trial_median_months",
            "Kaplan-Meier medians in months (figure: duration_of_remission, follow_up); "
            "NaN when not reached.",
            ["trial_id", "figure"],
            registry=registry,
        )
        self.toxicity = Gauge(
            "cartwatch_trial_toxicity_patients",
            "Patients by worst grade of CRS or ICANS.",
            ["trial_id", "toxicity", "grade"],
            registry=registry,
        )
        self._add_operations_metrics(registry)

    def _add_operations_metrics(self, registry: CollectorRegistry) -> None:
        """What deploy/ (Grafana dashboards, Prometheus rules) reads beyond the cohort figures."""
        self.consumer_lag = Gauge(
            "cartwatch_consumer_lag_messages",
            "Input messages not yet committed, per partition this worker owns "
            "(highwater minus committed offset).",
            ["topic", "partition"],
            registry=registry,
        )
        self.worker_consuming = Gauge(
            "cartwatch_worker_consuming",
            "1 while the worker consumes (the /healthz condition), else 0.",
            registry=registry,
        )
        self.database_writes_failing = Gauge(
            "cartwatch_database_writes_failing",
            "1 while the worker's database writes fail and are retried (its batches wait on "
            "them: no event is processed meanwhile), else 0.",
            registry=registry,
        )
        self.on_study = Gauge(
            "cartwatch_trial_patients_on_study",
            "Infused patients still on study (no death, withdrawal or loss to follow-up), "
            "by days since first infusion (bucket).",
            ["trial_id", "days"],
            registry=registry,
        )
        # Set from the alerts table on every gauge tick (`observe_open_alerts`), created at 0
        # per trial so dashboards and the escalation rule always find the series.
        self.alerts_open = Gauge(
            "cartwatch_alerts_open",
            "Alerts raised and not yet acknowledged, per trial and severity (whole trial, "
            "every worker reports the same value).",
            ["trial_id", "severity"],
            registry=registry,
        )
        self.alert_ack = Histogram(
            "cartwatch_alert_ack_seconds",
            "From an alert's detected_at to its acknowledgement, by severity (observed by the "
            "worker whose API took the acknowledgement).",
            ["severity"],
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.toxicity_boundary = Gauge(
            "cartwatch_toxicity_boundary_patients",
            "Toxicity stopping boundary: kind=observed is the patients counted against the "
            "boundary, kind=boundary the count that crosses it for the patients evaluable now.",
            ["trial_id", "kind"],
            registry=registry,
        )
        for severity in SEVERITIES:
            self.alert_ack.labels(severity)
        self.desk_page = Histogram(
            "cartwatch_desk_page_seconds",
            "Time to compute and render a safety desk page (figures, charts, HTML), by page.",
            ["page"],
            buckets=DESK_PAGE_BUCKETS,
            registry=registry,
        )
        self.event_loop_lag = Histogram(
            "cartwatch_event_loop_lag_seconds",
            "How much later than asked the worker's event loop woke a task sleeping 0.1 s "
            "(loop_lag.py): time the loop was held by other work.",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )

    def start_at_zero(self, input_topics: Iterable[str]) -> None:
        """Create the dead-letter series at 0, so a first dead letter is an increase too."""
        for topic in input_topics:
            self.dead_letters.labels(topic)

    def observe_trial_operations(self, counts: dict[str, dict[str, int]]) -> None:
        """Patients on study by days since infusion (`on_study_by_days`); issue-6 series
        created (at 0) per trial."""
        for trial, by_bucket in counts.items():
            for bucket, n in by_bucket.items():
                self.on_study.labels(trial, bucket).set(n)
            for severity in SEVERITIES:
                self.alerts_open.labels(trial, severity)  # created at 0, never reset here
            for kind in ("observed", "boundary"):
                self.toxicity_boundary.labels(trial, kind)

    def observe_open_alerts(self, counts: dict[tuple[str, str], int]) -> None:
        """Open (unacknowledged) alerts of every trial: those not in `counts` are at 0."""
        trials = {trial for trial, _ in counts} | {labels[0] for labels in self._open_alert_labels}
        for trial in trials:
            for severity in SEVERITIES:
                self.alerts_open.labels(trial, severity).set(counts.get((trial, severity), 0))
        self._open_alert_labels = {(trial,) for trial in trials}

    def observe_acknowledgement(self, alert: dict) -> None:
        """Seconds from an alert's detection to its acknowledgement (the stored alert)."""
        detected = datetime.fromisoformat(alert["detected_at"])
        acknowledged = datetime.fromisoformat(alert["acknowledged_at"])
        seconds = max(0.0, (acknowledged - detected).total_seconds())
        self.alert_ack.labels(alert["severity"]).observe(seconds)

    def observe_boundary(self, trial_id: str, status: dict) -> None:
        """Patients with a DLT and the count that stops the trial at the evaluable number."""
        self.toxicity_boundary.labels(trial_id, "observed").set(status["n_dlt"])
        self.toxicity_boundary.labels(trial_id, "boundary").set(status["stop_at_dlt"] or 0)

    def observe_consumer(self, lag: dict[tuple[str, int], int], consuming: bool) -> None:
        """Per-partition lag of the partitions owned now (revoked ones are removed)."""
        self.worker_consuming.set(1 if consuming else 0)
        current = {(topic, str(partition)): n for (topic, partition), n in lag.items()}
        for labels in self._lag_labels - current.keys():
            self.consumer_lag.remove(*labels)
        for labels, n in current.items():
            self.consumer_lag.labels(*labels).set(n)
        self._lag_labels = set(current)

    def observe_report(self, report: dict) -> None:
        """Set the cohort gauges from one trial report."""
        trial, eff = report["trial_id"], report["efficacy"]
        self.patients.labels(trial).set(report["n_infused"])
        counts = {k: eff[k]["n"] for k in ("remission", "cr", "cri", "mrd_negative", "relapsed")}
        counts |= {"in_remission": eff["in_remission"]["n"]}
        counts |= {"deaths": report["safety"]["deaths"]["n"]}
        for figure, n in counts.items():
            self.cohort_count.labels(trial, figure).set(n)
        rate, ci = eff["remission"]["rate"], eff["remission"]["ci95"] or [None, None]
        for bound, value in zip(("estimate", "lower", "upper"), (rate, *ci), strict=True):
            self.remission_rate.labels(trial, bound).set(_num(value))
        self.median_months.labels(trial, "duration_of_remission").set(
            _num(eff["median_dor_months"])
        )
        self.median_months.labels(trial, "follow_up").set(_num(eff["median_follow_up_months"]))
        for tox in ("crs", "icans"):
            for grade, n in report["safety"][tox]["by_grade"].items():
                self.toxicity.labels(trial, tox, grade).set(n)


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)
