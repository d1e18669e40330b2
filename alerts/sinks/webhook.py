"""Webhook sink: a JSON POST signed per the Standard Webhooks specification.

Every delivery carries `webhook-id` (the same for every attempt of one notification of one
alert, so a receiver can drop a repeat), `webhook-timestamp` (the attempt, in seconds: a
receiver refuses one older than its tolerance, so a captured request cannot be replayed
later) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), made by
the `standardwebhooks` library, whose `Webhook(secret).verify(body, headers)` checks them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from cartwatch.alerts.sinks.base import AlertSink, DeliveryFailed, alert_body, alert_id_header

ALERT_ID_HEADER = "X-Cartwatch-Alert-Id"
SECRET_PREFIX = "whsec_"
# The specification's symmetric key: random, 24 to 64 bytes (192 to 512 bits).
KEY_BYTES = range(24, 65)
GENERATE = (
    "python3 -c 'import base64, secrets; "
    'print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())\''
)


def signing_key(secret: str) -> bytes:
    """The key of a `whsec_<base64>` secret; ValueError, saying how to make one, otherwise.

    The library reads any string as base64 (skipping what is not base64), so a raw
    passphrase would silently become another key: only the specification's form is taken.
    """
    how = (
        "a Standard Webhooks secret is whsec_ and the base64 of 24 to 64 random bytes;"
        f" make one with: {GENERATE}"
    )
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(how)
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError(how) from None
    if len(key) not in KEY_BYTES:
        raise ValueError(how)
    return key


def webhook_id(alert: dict[str, Any]) -> str:
    """The delivery's id: one per notification of one alert, the same for every retry.

    A digest rather than the alert id itself: alert ids hold free-text trial and patient
    ids, which may contain the full stop the signed string is joined with (the
    specification asks for ids without one) or characters a header cannot carry. The alert
    id and the notification number are in the body.
    """
    key = f"{alert['alert_id']}\0{alert.get('notification', 0)}".encode()
    return "msg_" + hashlib.sha256(key).hexdigest()[:32]


def signed_headers(webhook: Webhook, alert: dict[str, Any], body: bytes, at: datetime) -> dict:
    """The Standard Webhooks headers of one attempt at `at`."""
    message_id = webhook_id(alert)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": webhook.sign(message_id, at, body),
    }


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        desk_url: str | None = None,
    ) -> None:
        self.name = name
        self.desk_url = desk_url  # the desk's public base URL: each body links its page
        self._url = url
        self._webhook = Webhook(signing_key(secret.get_secret_value()))
        self._clock = clock  # the attempt's time, signed into webhook-timestamp
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, alert: dict[str, Any]) -> None:
        body = alert_body(alert, self.desk_url)
        headers = {
            "Content-Type": "application/json",
            ALERT_ID_HEADER: alert_id_header(str(alert["alert_id"])),
            **signed_headers(self._webhook, alert, body, self._clock()),
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
