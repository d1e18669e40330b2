"""Webhook sink: a JSON POST signed with HMAC-SHA256, so the receiver can check the sender."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import aiohttp
from pydantic import SecretStr

from cartwatch.alerts.sinks.base import AlertSink, DeliveryFailed, alert_body

SIGNATURE_HEADER = "X-Cartwatch-Signature"
ALERT_ID_HEADER = "X-Cartwatch-Alert-Id"


def sign(body: bytes, secret: SecretStr) -> str:
    """The signature header value: `sha256=` and the hex HMAC-SHA256 of the exact body."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_is_valid(body: bytes, header: str | None, secret: SecretStr) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return header is not None and hmac.compare_digest(header, sign(body, secret))


class WebhookSink(AlertSink):
    """POSTs each alert to `url` (with `desk_url`, its page, when the desk's base URL is
    given); any 2xx answer means delivered."""

    def __init__(
        self,
        url: str,
        secret: SecretStr,
        *,
        timeout_s: float = 10.0,
        name: str = "webhook",
        desk_url: str | None = None,
    ) -> None:
        self.name = name
        self.desk_url = desk_url  # the desk's public base URL: each body links its page
        self._url = url
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, alert: dict[str, Any]) -> None:
        body = alert_body(alert, self.desk_url)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self._secret),
            ALERT_ID_HEADER: str(alert["alert_id"]),
        }
        try:
            async with self._client().post(self._url, data=body, headers=headers) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryFailed(type(exc).__name__) from exc
        if not 200 <= response.status < 300:
            raise DeliveryFailed(f"HTTP {response.status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop that will use it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session
