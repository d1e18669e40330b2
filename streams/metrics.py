"""Prometheus metrics, built against an injected registry. No label ever holds a patient id."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Event-to-alert latency: the target is p99 <= 100 ms, so resolve finely below 250 ms
# and keep coarse buckets up to a minute to see backlogs.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Every metric the worker exports."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "cartwatch_events_processed_total",
            "Input messages processed, by event type and outcome (accepted, duplicate, invalid).",
            ["type", "outcome"],
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
