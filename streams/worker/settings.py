"""The one place configuration is read: environment variables `CARTWATCH_*` (CONTRACT 6)."""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cartwatch.alerts.rules import RuleThresholds
from cartwatch.alerts.sinks.routing import parse_severities
from cartwatch.alerts.sinks.webhook import signing_key
from cartwatch.models.events import TOPIC_SUFFIX_BY_TYPE


def _renamed() -> dict[str, str]:
    """The thresholds' flat variables of earlier releases -> their nested names."""
    rules = ("CRS_GRADE_MIN", "ICANS_GRADE_MIN", "CRS_DERIVED_MIN", "ICANS_DERIVED_MIN")
    warnings = ("CYTOKINE_FOLD_INFO", "CYTOKINE_FOLD_WARNING", "CYTOKINE_WINDOW_H")
    warnings += ("FERRITIN_NG_ML", "CRP_MG_L", "MODIFIED_EASIX")
    toxicity = ("METHOD", "MAX_PATIENTS", "P0", "ALPHA", "PRIOR_A", "PRIOR_B")
    toxicity += ("DLT_WINDOW_DAYS", "DLT_MIN_GRADE")
    names = {f"CARTWATCH_{n}": f"CARTWATCH_RULES__{n}" for n in (*rules, "CRS_WINDOW_H")}
    names |= {f"CARTWATCH_{n}": f"CARTWATCH_RULES__WARNINGS__{n}" for n in warnings}
    names |= {f"CARTWATCH_TOX_{n}": f"CARTWATCH_RULES__TOXICITY__{n}" for n in toxicity}
    return names


RENAMED = _renamed()


def setting_errors(exc: ValidationError) -> list[str]:
    """One line per invalid setting, named as its environment variable."""
    lines = []
    for error in exc.errors():
        where = "__".join(str(part) for part in error["loc"]).upper()
        name = f"CARTWATCH_{where}: " if where else ""
        lines.append(name + error["msg"])
    return lines


class Settings(BaseSettings):
    """Read once at start-up and passed down; CLI options override the same names."""

    # hide_input_in_errors: a refused secret (a webhook secret, a database URL) is never
    # repeated in the error that refuses it.
    model_config = SettingsConfigDict(
        env_prefix="CARTWATCH_",
        env_nested_delimiter="__",
        extra="ignore",
        hide_input_in_errors=True,
    )

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
    # Identity (streams/http/identity.py, docs/OPERATIONS.md "Identity"). The service
    # account's token and its roles (comma-separated; read-only by default).
    api_token: SecretStr | None = None
    api_token_roles: str = "viewer"
    # OIDC: JWTs of the organisation's identity provider; on when all three are set.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_roles_claim: str = "roles"  # a claim name, or a dotted path: realm_access.roles
    # PEM certificate chain and private key: both set, the API serves HTTPS only (TLS >= 1.2,
    # streams/http/tls.py); neither, plain HTTP (behind a TLS-terminating ingress, say).
    api_tls_cert: str | None = None
    api_tls_key: str | None = None
    # Partitions of every topic cartwatch creates; inputs are keyed by patient_id.
    topic_partitions: int = Field(default=4, ge=1)
    # Where the worker keeps Faust's local data (table offsets, etc.).
    data_dir: str = ".cartwatch"
    # Faust's session timeout; lower it in tests so a restart does not wait for a dead member.
    session_timeout_s: float = Field(default=30.0, gt=0)
    # Alert-rule thresholds, early warnings and the toxicity stopping boundary, nested as
    # the core defines them (alerts/rules.py, alerts/early_warnings.py, models/stopping.py):
    # CARTWATCH_RULES__CRS_GRADE_MIN, CARTWATCH_RULES__WARNINGS__FERRITIN_NG_ML,
    # CARTWATCH_RULES__TOXICITY__P0, ... (docs/ALERT_RULES.md).
    rules: RuleThresholds = RuleThresholds()
    # A batch is what the input consumer has fetched, up to `batch_max` (streams/kafka/
    # input_consumer.py), so under load batches grow with the time a batch takes; an idle
    # worker gathers `batch_within_s` after an event's arrival.
    batch_max: int = Field(default=5000, ge=1)
    batch_within_s: float = Field(default=0.02, gt=0)
    # Under a backlog, a checkpoint (database rows, each touched patient's record once, the
    # offsets committed) after this many events or this long, whichever first; otherwise
    # after every batch (streams/kafka/input_consumer.py).
    checkpoint_events: int = Field(default=50_000, ge=1)
    checkpoint_interval_s: float = Field(default=5.0, gt=0)
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
    # Standard Webhooks signing secret, `whsec_<base64 of 24-64 random bytes>`
    # (alerts/sinks/webhook.py; docs/OPERATIONS.md says how to make one).
    webhook_secret: SecretStr | None = None
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
    # The safety desk's public base URL (https://cartwatch.example.org): each alert's webhook
    # body and email then carry `desk_url`, the link to its page. Unset: no link is sent.
    desk_url: str | None = None

    @field_validator("desk_url")
    @classmethod
    def _absolute_desk_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(
                "must be an absolute http(s) URL without a query, e.g. https://cartwatch.example.org"
            )
        return value.strip().rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing_key(value.get_secret_value())  # ValueError saying how to make one
        return value

    @field_validator("webhook_severities", "smtp_severities")
    @classmethod
    def _known_severities(cls, value: str) -> str:
        return ",".join(sorted(parse_severities(value)))

    @model_validator(mode="before")
    @classmethod
    def _no_renamed_variables(cls, values: object) -> object:
        """A threshold set under its old flat name would be ignored and the default used,
        silently: refuse to start instead, naming the variable to set."""
        renamed = [name for name in RENAMED if name in os.environ]
        if renamed:
            raise ValueError(
                "renamed: " + ", ".join(f"{old} is now {RENAMED[old]}" for old in renamed)
            )
        return values

    @field_validator("api_token_roles")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        from cartwatch.streams.http.identity import parse_roles

        roles = parse_roles(value)
        if not roles:
            raise ValueError("CARTWATCH_API_TOKEN_ROLES needs at least one role")
        return ",".join(sorted(roles))

    @field_validator("oidc_jwks_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("CARTWATCH_OIDC_JWKS_URL must be an http(s) URL")
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        given = [self.oidc_issuer, self.oidc_audience, self.oidc_jwks_url]
        if any(given) and not all(given):
            raise ValueError(
                "OIDC needs all of CARTWATCH_OIDC_ISSUER, CARTWATCH_OIDC_AUDIENCE "
                "and CARTWATCH_OIDC_JWKS_URL"
            )
        return self

    @model_validator(mode="after")
    def _tls_complete(self) -> Settings:
        if (self.api_tls_cert is None) != (self.api_tls_key is None):
            raise ValueError(
                "CARTWATCH_API_TLS_CERT and CARTWATCH_API_TLS_KEY go together: set both or neither"
            )
        return self

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
        return self.rules
