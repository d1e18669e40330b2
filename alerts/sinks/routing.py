"""Which sinks get which severities, from the settings (CARTWATCH_*_SEVERITIES)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, get_args

from pydantic import SecretStr

from cartwatch.alerts.model import Severity
from cartwatch.alerts.sinks.base import AlertSink
from cartwatch.alerts.sinks.smtp import SmtpSink
from cartwatch.alerts.sinks.webhook import WebhookSink

SEVERITIES = frozenset(get_args(Severity))


def parse_severities(text: str) -> frozenset[str]:
    """`"warning, critical"` -> {"warning", "critical"}; ValueError on an unknown name."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = names - SEVERITIES
    if unknown:
        raise ValueError(f"unknown severities {sorted(unknown)}; known: {sorted(SEVERITIES)}")
    return frozenset(names)


@dataclass(frozen=True)
class Route:
    """One sink and the severities it is sent."""

    sink: AlertSink
    severities: frozenset[str]


class Routing:
    """The configured routes; sink names are unique (they key the delivery records)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = [r for r in routes if r.severities]
        names = [r.sink.name for r in self.routes]
        if len(names) != len(set(names)):
            raise ValueError(f"sink names must be unique: {names}")

    def sinks_for(self, severity: str) -> list[AlertSink]:
        """The sinks an alert of `severity` goes to."""
        return [r.sink for r in self.routes if severity in r.severities]

    async def close(self) -> None:
        """Close every sink."""
        for route in self.routes:
            await route.sink.close()


class DeliverySettings(Protocol):
    """The part of `cartwatch.streams.worker.settings.Settings` routing reads."""

    webhook_url: SecretStr | None
    webhook_secret: SecretStr | None
    webhook_severities: str
    webhook_timeout_s: float
    smtp_host: str | None
    smtp_port: int
    smtp_from: str
    smtp_to: str
    smtp_severities: str
    smtp_starttls: bool
    smtp_username: str | None
    smtp_password: SecretStr | None
    smtp_timeout_s: float
    desk_url: str | None


def routing_from_settings(settings: DeliverySettings) -> Routing:
    """A webhook route when CARTWATCH_WEBHOOK_URL is set, an email one when _SMTP_HOST is."""
    routes = []
    if settings.webhook_url and settings.webhook_secret is not None:
        url = settings.webhook_url.get_secret_value()
        sink = WebhookSink(
            url,
            settings.webhook_secret,
            timeout_s=settings.webhook_timeout_s,
            desk_url=settings.desk_url,
        )
        routes.append(Route(sink, parse_severities(settings.webhook_severities)))
    if settings.smtp_host:
        recipients = [r.strip() for r in settings.smtp_to.split(",") if r.strip()]
        sink = SmtpSink(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            recipients,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout_s=settings.smtp_timeout_s,
            desk_url=settings.desk_url,
        )
        routes.append(Route(sink, parse_severities(settings.smtp_severities)))
    return Routing(routes)
