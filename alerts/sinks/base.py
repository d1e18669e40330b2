"""The one interface every alert sink implements, and the errors a delivery raises."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import quote

from cartwatch.alerts.sinks import links
from cartwatch.models.errors import CartwatchError


class SinkError(CartwatchError):
    """Root of the errors of alert sinks."""


class DeliveryFailed(SinkError):
    """The receiver did not take the alert; the dispatcher retries later.

    The message names the condition only (status code, error class), never the alert's
    content or the receiver's address, so it can be stored and logged.
    """


class AlertSink(ABC):
    """Delivers one alert (the JSON object of CONTRACT 4) to one receiver."""

    name: str

    @abstractmethod
    async def deliver(self, alert: dict[str, Any]) -> None:
        """Deliver `alert` once; DeliveryFailed when the receiver did not take it."""

    async def close(self) -> None:  # noqa: B027 - most sinks hold nothing to release
        """Release connections; the sink is not used afterwards."""


def alert_id_header(alert_id: str) -> str:
    """An alert id as a header value: percent-encoded (RFC 3986) but for the characters an
    id of plain ASCII holds, so a trial or patient id with a line break or a non-ASCII
    letter (CONTRACT 1 allows both) cannot make the header, and the delivery, fail."""
    return quote(alert_id, safe=":@!$&'()*+,;=-._~")


def with_desk_url(alert: dict[str, Any], desk_base_url: str | None) -> dict[str, Any]:
    """The alert with `desk_url`, the link to its page in the safety desk, when the desk's
    public base URL is configured (CARTWATCH_DESK_URL); as it is otherwise."""
    if not desk_base_url:
        return alert
    return {**alert, "desk_url": links.desk_url(desk_base_url, alert)}


def alert_body(alert: dict[str, Any], desk_base_url: str | None = None) -> bytes:
    """The exact bytes sent for an alert: compact JSON with sorted keys (what gets signed),
    with its `desk_url` when the desk's base URL is given."""
    body = with_desk_url(alert, desk_base_url)
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
