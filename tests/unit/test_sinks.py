"""Sinks without I/O: the webhook signature, the email text, severity routing, backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from cartwatch.alerts.sinks.base import AlertSink, alert_body
from cartwatch.alerts.sinks.links import desk_url
from cartwatch.alerts.sinks.routing import Route, Routing, parse_severities, routing_from_settings
from cartwatch.alerts.sinks.smtp import SmtpSink, email_of, subject_of
from cartwatch.alerts.sinks.webhook import WebhookSink, sign, signature_is_valid
from cartwatch.streams.worker.delivery import backoff_s
from cartwatch.streams.worker.settings import Settings

SECRET = SecretStr("key")
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


def test_the_signature_is_the_published_hmac_sha256_test_vector():
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert sign(body, SECRET) == f"sha256={expected}"


def test_a_receiver_accepts_the_signed_body_and_refuses_any_change():
    body = alert_body(ALERT)
    header = sign(body, SECRET)
    assert signature_is_valid(body, header, SECRET)
    assert not signature_is_valid(body.replace(b"P1", b"P2"), header, SECRET)
    assert not signature_is_valid(body, header, SecretStr("other key"))
    assert not signature_is_valid(body, None, SECRET)


def test_the_signed_body_is_the_alert_as_compact_sorted_json():
    body = alert_body(ALERT)
    assert json.loads(body) == ALERT
    assert body == json.dumps(ALERT, sort_keys=True, separators=(",", ":")).encode()
    assert sign(body, SECRET).removeprefix("sha256=") == (
        hmac.new(b"key", body, hashlib.sha256).hexdigest()
    )


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
        webhook_secret="s3cret",
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
        webhook_secret="s3cret",
        smtp_password="pa55word",
    )
    shown = repr(settings) + str(settings.model_dump(mode="json"))
    assert not any(secret in shown for secret in ("T0K3N", "s3cret", "pa55word"))


def test_retries_back_off_exponentially_up_to_the_cap():
    assert [backoff_s(n, 1.0, 300.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert backoff_s(20, 1.0, 300.0) == 300.0


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
        webhook_secret="s3cret",
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
