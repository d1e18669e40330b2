"""The one place configuration is read: environment variables `CARTWATCH_*` (CONTRACT 6)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cartwatch.alerts.early_warnings import WarningThresholds
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.alerts.sinks.routing import parse_severities
from cartwatch.models.events import TOPIC_SUFFIX_BY_TYPE
from cartwatch.models.stopping import StoppingConfig


class Settings(BaseSettings):
    """Read once at start-up and passed down; CLI options override the same names."""

    model_config = SettingsConfigDict(env_prefix="CARTWATCH_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    # TLS and SASL towards Kafka (streams/kafka/security.py); PLAINTEXT by default.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None  # CA bundle for the brokers' certificates
    # The embedded development broker needs workarounds (streams/kafka/faust_settings.py):
    # true or false when known, unset to detect it by its cluster id at start-up.
    embedded_broker: bool | None = None
    topic_prefix: str = "cartwatch"
    database_url: SecretStr = SecretStr("sqlite:///cartwatch.db")
    api_port: int = Field(default=6066, ge=1, le=65535)
    api_host: str = "127.0.0.1"
    api_token: SecretStr | None = None
    # Partitions of every topic cartwatch creates; inputs are keyed by patient_id.
    topic_partitions: int = Field(default=4, ge=1)
    # Where the worker keeps Faust's local data (table offsets, etc.).
    data_dir: str = ".cartwatch"
    # Faust's session timeout; lower it in tests so a restart does not wait for a dead member.
    session_timeout_s: float = Field(default=30.0, gt=0)
    crs_grade_min: int = Field(default=2, ge=1, le=5)
    icans_grade_min: int = Field(default=1, ge=1, le=5)
    # Derived ASTCT grades (models/astct.py) and the early warnings (alerts/early_warnings.py);
    # sources and defaults in the README, "Alert rules".
    crs_derived_min: int = Field(default=2, ge=1, le=4)
    icans_derived_min: int = Field(default=1, ge=1, le=4)
    crs_window_h: float = Field(default=24.0, gt=0)
    cytokine_fold_info: float = Field(default=75.0, gt=1)
    cytokine_fold_warning: float = Field(default=250.0, gt=1)
    cytokine_window_h: float = Field(default=72.0, gt=0)
    ferritin_ng_ml: float = Field(default=10_000.0, gt=0)
    crp_mg_l: float = Field(default=200.0, gt=0)
    modified_easix: float = Field(default=50.0, gt=0)
    # The trial's toxicity stopping boundary (models/stopping.py, models/dlt.py).
    tox_method: Literal["bayes", "pocock"] = "bayes"
    tox_max_patients: int = Field(default=100, ge=1, le=1000)
    tox_p0: float = Field(default=0.20, gt=0, lt=1)
    tox_alpha: float = Field(default=0.10, gt=0, lt=1)
    tox_prior_a: float = Field(default=0.6, gt=0)
    tox_prior_b: float = Field(default=2.4, gt=0)
    tox_dlt_window_days: float = Field(default=28.0, gt=0)
    tox_dlt_min_grade: int = Field(default=4, ge=1, le=5)
    # The agent takes the events buffered while it processed the last batch, up to
    # `batch_max` (worker/batches.py), so under load batches grow with the time a batch takes
    # (a batch's fixed costs: a database commit, the broker's round trips); an idle worker
    # gathers `batch_within_s` after an event's arrival. Measured (docs/BENCHMARKS.md,
    # 2026-11-30): event-to-alert p50 36-60 ms at 2,000 events/s, against 101-107 ms with
    # Faust's `take_events` and 0.1 s, at the same throughput.
    batch_max: int = Field(default=5000, ge=1)
    batch_within_s: float = Field(default=0.02, gt=0)
    # Longest a consumer fetch waits on the broker for records. Unset: Faust's fixed 1,500 ms
    # (Apache Kafka answers as soon as records arrive), 10 ms on the embedded broker, which
    # holds a fetch for its whole wait (streams/kafka/faust_settings.py).
    fetch_wait_ms: int | None = Field(default=None, ge=1, le=60_000)
    # How often the cohort gauges of /metrics are recomputed.
    gauge_interval_s: float = Field(default=5.0, gt=0)
    # How many alerts /alerts keeps in memory for the API.
    recent_alerts: int = Field(default=1000, ge=1)
    # Alert delivery (alerts/sinks, worker/delivery.py). A sink is on when its address is set;
    # severities are comma-separated (info, warning, critical).
    webhook_url: SecretStr | None = None  # a secret: many webhook URLs carry a token
    webhook_secret: SecretStr | None = None  # HMAC-SHA256 key of X-Cartwatch-Signature
    webhook_severities: str = "info,warning,critical"
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "cartwatch@localhost"
    smtp_to: str = ""  # comma-separated recipients
    smtp_severities: str = "critical"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=10.0, gt=0)
    # A critical alert nobody acknowledged is sent again this long after its last notification.
    renotify_after_s: float = Field(default=1800.0, gt=0)
    # The dispatcher polls the alerts table this often; a failed delivery waits twice as long
    # after each attempt, up to the cap, and is retried for ever (nothing is dropped).
    delivery_interval_s: float = Field(default=0.5, gt=0)
    delivery_max_backoff_s: float = Field(default=300.0, gt=0)

    @field_validator("webhook_severities", "smtp_severities")
    @classmethod
    def _known_severities(cls, value: str) -> str:
        return ",".join(sorted(parse_severities(value)))

    @model_validator(mode="after")
    def _sinks_complete(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("CARTWATCH_WEBHOOK_URL needs CARTWATCH_WEBHOOK_SECRET to sign with")
        if self.smtp_host and not self.smtp_to.strip():
            raise ValueError("CARTWATCH_SMTP_HOST needs CARTWATCH_SMTP_TO (the recipients)")
        return self

    def topic(self, suffix: str) -> str:
        """Full topic name under the configured prefix."""
        return f"{self.topic_prefix}.{suffix}"

    @property
    def input_topics(self) -> dict[str, str]:
        """Topic name -> event type carried on it."""
        return {self.topic(s): t for t, s in TOPIC_SUFFIX_BY_TYPE.items()}

    @property
    def alerts_topic(self) -> str:
        return self.topic("alerts")

    @property
    def dead_letter_topic(self) -> str:
        return self.topic("dead-letter")

    @property
    def thresholds(self) -> RuleThresholds:
        return RuleThresholds(
            crs_grade_min=self.crs_grade_min,
            icans_grade_min=self.icans_grade_min,
            crs_derived_min=self.crs_derived_min,
            icans_derived_min=self.icans_derived_min,
            crs_window_h=self.crs_window_h,
            warnings=WarningThresholds(
                cytokine_fold_info=self.cytokine_fold_info,
                cytokine_fold_warning=self.cytokine_fold_warning,
                cytokine_window_h=self.cytokine_window_h,
                ferritin_ng_ml=self.ferritin_ng_ml,
                crp_mg_l=self.crp_mg_l,
                modified_easix=self.modified_easix,
            ),
            toxicity=StoppingConfig(
                method=self.tox_method,
                max_patients=self.tox_max_patients,
                p0=self.tox_p0,
                alpha=self.tox_alpha,
                prior_a=self.tox_prior_a,
                prior_b=self.tox_prior_b,
                dlt_window_days=self.tox_dlt_window_days,
                dlt_min_grade=self.tox_dlt_min_grade,
            ),
        )
