"""The one place configuration is read: environment variables `CARTWATCH_*` (CONTRACT 6)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.rules import RuleThresholds
from models.events import TOPIC_SUFFIX_BY_TYPE


class Settings(BaseSettings):
    """Read once at start-up and passed down; CLI options override the same names."""

    model_config = SettingsConfigDict(env_prefix="CARTWATCH_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
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
    # How often the cohort gauges of /metrics are recomputed.
    gauge_interval_s: float = Field(default=5.0, gt=0)
    # How many alerts /alerts keeps in memory for the API.
    recent_alerts: int = Field(default=1000, ge=1)

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
            crs_grade_min=self.crs_grade_min, icans_grade_min=self.icans_grade_min
        )
