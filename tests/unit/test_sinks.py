"""Sinks without I/O: the webhook signature, the email text, severity routing, backoff."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from pydantic import SecretStr, ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cartwatch.alerts.sinks.base import AlertSink, alert_body, alert_id_header
from cartwatch.alerts.sinks.links import desk_url
from cartwatch.alerts.sinks.routing import Route, Routing, parse_severities, routing_from_settings
from cartwatch.alerts.sinks.smtp import SmtpSink, email_of, subject_of
from cartwatch.alerts.sinks.webhook import WebhookSink, signed_headers, signing_key, webhook_id
from cartwatch.streams.worker.delivery import backoff_s
from cartwatch.streams.worker.settings import Settings

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
ALERT = {
    "alert_id": "T1:P1:crs_grade:3",
    "rule": "crs_grade",
    "severity": "critical",
    "trial_id": "T1",
    "patient_id": "P1",
    "level": 3,
    "value": 3,
    "threshold": 2,
    "triggered_at": "2025-02-07T13:00:00+00:00",
    "detected_at": "2025-02-07T13:00:01+00:00",
    "source_event_id": "P1-ae-3",
    "message": "Patient P1 reached CRS grade 3.",
    "notification": 0,
}


class KeepingSink(AlertSink):
    """A sink that keeps what it is given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kept: list[dict[str, Any]] = []

    async def deliver(self, alert: dict[str, Any]) -> None:
        self.kept.append(alert)


def test_a_delivery_signed_now_verifies_with_the_standard_webhooks_library():
    body = alert_body(ALERT)
    headers = signed_headers(Webhook(signing_key(SECRET)), ALERT, body, datetime.now(UTC))
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(body, headers) == ALERT


def test_the_verifier_refuses_a_changed_body_another_secret_and_an_old_timestamp():
    body = alert_body(ALERT)
    now = datetime.now(UTC)
    headers = signed_headers(Webhook(signing_key(SECRET)), ALERT, body, now)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET).verify(body.replace(b"P1", b"P2"), headers)
    other = "whsec_" + base64.b64encode(bytes(32)).decode()
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(other).verify(body, headers)
    six_minutes_ago = now - timedelta(minutes=6)  # the library's tolerance is 5 minutes
    old = signed_headers(Webhook(signing_key(SECRET)), ALERT, body, six_minutes_ago)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(body, old)


def test_the_webhook_id_holds_for_every_retry_and_changes_with_each_notification():
    assert webhook_id(ALERT) == webhook_id(dict(ALERT))
    reminders = {webhook_id({**ALERT, "notification": n}) for n in range(3)}
    assert len(reminders) == 3
    dotted = webhook_id({**ALERT, "alert_id": "T.1:P.1\n:crs_grade:3"})
    assert dotted.startswith("msg_") and dotted.isascii() and "." not in dotted


@pytest.mark.parametrize(
    "secret",
    [
        "a raw passphrase",
        "whsec_" + base64.b64encode(bytes(16)).decode(),  # 16 bytes: under the 24 asked for
        "whsec_" + base64.b64encode(bytes(65)).decode(),
        "whsec_not*base64*at*all*but*long*enough*to*pass*a*length*check",
    ],
)
def test_a_secret_not_in_the_specifications_form_is_refused_saying_how_to_make_one(secret):
    with pytest.raises(ValidationError, match=r"whsec_ and the base64 of 24 to 64 random bytes"):
        Settings(webhook_url="https://hooks.example.org/a", webhook_secret=secret)
    with pytest.raises(ValueError, match=r"secrets\.token_bytes\(32\)"):
        WebhookSink("https://hooks.example.org/a", SecretStr(secret))


def test_the_secret_is_the_base64_after_whsec_with_or_without_padding():
    assert signing_key(SECRET) == KEY
    assert signing_key(SECRET.rstrip("=")) == KEY


def test_the_signed_body_is_the_alert_as_compact_sorted_json():
    body = alert_body(ALERT)
    assert json.loads(body) == ALERT
    assert body == json.dumps(ALERT, sort_keys=True, separators=(",", ":")).encode()


def test_the_email_subject_names_severity_rule_level_trial_and_patient():
    assert subject_of(ALERT) == "[cartwatch] CRITICAL crs_grade 3, trial T1, patient P1"
    trial_level = {**ALERT, "patient_id": None, "notification": 2}
    assert subject_of(trial_level) == "[cartwatch] CRITICAL crs_grade 3, trial T1 (reminder 2)"


def test_the_email_body_has_the_message_then_the_fields():
    mail = email_of(ALERT, "cartwatch@example.org", ["oncall@example.org", "pi@example.org"])
    text = mail.get_content()
    assert text.startswith("Patient P1 reached CRS grade 3.\n")
    assert "source_event_id: P1-ae-3" in text
    assert mail["To"] == "oncall@example.org, pi@example.org"
    assert mail["X-Cartwatch-Alert-Id"] == "T1:P1:crs_grade:3"


def test_severities_are_read_from_a_comma_separated_list():
    assert parse_severities(" Warning,critical ,") == {"warning", "critical"}
    assert parse_severities("") == frozenset()
    with pytest.raises(ValueError, match="unknown severities"):
        parse_severities("warning,urgent")


def test_each_severity_goes_to_the_sinks_routed_for_it():
    hook, mail = KeepingSink("webhook"), KeepingSink("smtp")
    routing = Routing(
        [
            Route(hook, frozenset({"info", "warning", "critical"})),
            Route(mail, frozenset({"critical"})),
        ]
    )
    assert routing.sinks_for("info") == [hook]
    assert routing.sinks_for("critical") == [hook, mail]


def test_a_route_without_severities_is_dropped_and_sink_names_are_unique():
    assert Routing([Route(KeepingSink("a"), frozenset())]).routes == []
    with pytest.raises(ValueError, match="unique"):
        Routing([Route(KeepingSink("a"), frozenset({"info"}))] * 2)


def test_no_sink_is_configured_by_default():
    assert routing_from_settings(Settings()).routes == []


def test_the_settings_configure_a_webhook_for_all_and_email_for_critical_alerts():
    settings = Settings(
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret=SECRET,
        smtp_host="127.0.0.1",
        smtp_to="oncall@example.org",
    )
    routes = routing_from_settings(settings).routes
    assert [type(r.sink) for r in routes] == [WebhookSink, SmtpSink]
    assert routes[0].severities == {"info", "warning", "critical"}
    assert routes[1].severities == {"critical"}
    assert settings.renotify_after_s == 1800


def test_a_webhook_without_a_secret_or_a_bad_severity_is_a_configuration_error():
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        Settings(webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ValidationError, match="unknown severities"):
        Settings(smtp_severities="severe")
    with pytest.raises(ValidationError, match="SMTP_TO"):
        Settings(smtp_host="127.0.0.1")


def test_the_secrets_of_the_sinks_are_not_printed():
    settings = Settings(
        webhook_url="https://hooks.example.org/T0K3N",
        webhook_secret=SECRET,
        smtp_password="pa55word",
    )
    shown = repr(settings) + str(settings.model_dump(mode="json"))
    assert not any(secret in shown for secret in ("T0K3N", SECRET[6:], "pa55word"))


def test_retries_back_off_exponentially_up_to_the_cap():
    assert [backoff_s(n, 1.0, 300.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(20, 1.0, 300.0) == 300.0


def test_ids_with_a_line_break_or_accents_still_make_valid_headers():
    odd = {**ALERT, "patient_id": "P\n1é", "alert_id": "T1:P\n1é:crs_grade:3"}
    mail = email_of(odd, "cartwatch@example.org", ["oncall@example.org"])
    assert "\n" not in mail["Subject"] and "P\\n1é" in mail["Subject"]
    assert unquote(mail["X-Cartwatch-Alert-Id"]) == odd["alert_id"]
    assert "\n" not in alert_id_header(odd["alert_id"])
    assert alert_id_header("T1:P1:crs_grade:3") == "T1:P1:crs_grade:3"  # plain ids as they are


def test_the_webhook_body_links_the_alert_to_its_patient_page_in_the_desk():
    body = json.loads(alert_body(ALERT, "https://cartwatch.example.org/"))
    assert body == {**ALERT, "desk_url": "https://cartwatch.example.org/desk/trials/T1/patients/P1"}
    assert json.loads(alert_body(ALERT)) == ALERT  # no desk configured: no link


def test_a_trial_level_alert_links_the_trial_page_and_ids_stay_one_path_segment_each():
    trial_level = {**ALERT, "trial_id": "CAR/T 19", "patient_id": None}
    assert (
        desk_url("https://x.example", trial_level) == "https://x.example/desk/trials/CAR%2FT%2019"
    )
    odd = {**ALERT, "patient_id": "P?1#&"}
    assert desk_url("https://x.example", odd).endswith("/desk/trials/T1/patients/P%3F1%23%26")


def test_the_email_has_the_link_to_the_alert_page_under_its_sentence():
    mail = email_of(ALERT, "a@example.org", ["b@example.org"], "https://cartwatch.example.org")
    lines = mail.get_content().splitlines()
    assert lines[:3] == [
        "Patient P1 reached CRS grade 3.",
        "",
        "Open in the safety desk: https://cartwatch.example.org/desk/trials/T1/patients/P1",
    ]


def test_the_desk_url_setting_reaches_both_sinks_and_must_be_an_absolute_url():
    settings = Settings(
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret=SECRET,
        smtp_host="127.0.0.1",
        smtp_to="oncall@example.org",
        desk_url="https://cartwatch.example.org/",
    )
    assert settings.desk_url == "https://cartwatch.example.org"
    assert [r.sink.desk_url for r in routing_from_settings(settings).routes] == [
        "https://cartwatch.example.org"
    ] * 2
    for wrong in ("cartwatch.example.org", "ftp://x.example", "https://x.example/?a=1"):
        with pytest.raises(ValidationError, match="absolute http"):
            Settings(desk_url=wrong)
