"""Email sink: one message per alert over SMTP (stdlib smtplib, in a thread)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

from pydantic import SecretStr

from cartwatch.alerts.model import ALERT_FIELDS
from cartwatch.alerts.sinks import links
from cartwatch.alerts.sinks.base import AlertSink, DeliveryFailed, alert_id_header

# The fields listed under the message, in the order of CONTRACT 4.
_FIELDS = (*(f for f in ALERT_FIELDS if f != "message"), "notification")


def subject_of(alert: dict[str, Any]) -> str:
    """`[cartwatch] CRITICAL crs_grade 3, trial T1, patient P1` (and `(reminder n)`)."""
    patient = f", patient {alert['patient_id']}" if alert.get("patient_id") else ""
    reminder = f" (reminder {alert['notification']})" if alert.get("notification") else ""
    subject = (
        f"[cartwatch] {alert['severity'].upper()} {alert['rule']} {alert['level']}, "
        f"trial {alert['trial_id']}{patient}{reminder}"
    )
    # A header holds no line break (ids may: CONTRACT 1); shown escaped, as Python would.
    return subject.replace("\r", "\\r").replace("\n", "\\n")


def email_of(
    alert: dict[str, Any], sender: str, recipients: list[str], desk_base_url: str | None = None
) -> EmailMessage:
    """The message for one alert: subject line, the alert's sentence, the link to its page in
    the safety desk (when the desk's base URL is given), then its fields."""
    mail = EmailMessage()
    mail["Subject"] = subject_of(alert)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["X-Cartwatch-Alert-Id"] = alert_id_header(str(alert["alert_id"]))
    lines = [alert["message"], ""]
    if desk_base_url:
        lines += [f"Open in the safety desk: {links.desk_url(desk_base_url, alert)}", ""]
    lines += [f"{name}: {alert[name]}" for name in _FIELDS if name in alert]
    mail.set_content("\n".join(lines) + "\n")
    return mail


class SmtpSink(AlertSink):
    """Sends each alert to `recipients` through the SMTP server at `host:port`."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        *,
        starttls: bool = False,
        username: str | None = None,
        password: SecretStr | None = None,
        timeout_s: float = 10.0,
        name: str = "smtp",
        desk_url: str | None = None,
    ) -> None:
        self.name = name
        self.desk_url = desk_url  # the desk's public base URL: each message links its page
        self._host, self._port, self._timeout = host, port, timeout_s
        self._sender, self._recipients = sender, recipients
        self._starttls = starttls
        self._login = (username, password) if username and password else None

    async def deliver(self, alert: dict[str, Any]) -> None:
        mail = email_of(alert, self._sender, self._recipients, self.desk_url)
        try:
            await asyncio.to_thread(self._send, mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(type(exc).__name__) from exc

    def _send(self, mail: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls()
            if self._login is not None:
                user, password = self._login
                smtp.login(user, password.get_secret_value())
            smtp.send_message(mail)
