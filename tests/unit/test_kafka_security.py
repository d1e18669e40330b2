"""TLS and SASL settings reach Faust and kafka-python the same way."""

from __future__ import annotations

import faust
import pytest
from pydantic import SecretStr, ValidationError

from cartwatch.streams.kafka.security import (
    aiokafka_options,
    faust_credentials,
    kafka_python_options,
)
from cartwatch.streams.worker.settings import Settings


def test_plaintext_is_the_default_and_needs_no_credentials():
    settings = Settings()
    assert faust_credentials(settings) is None
    assert kafka_python_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert aiokafka_options(settings) == {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_gives_faust_sasl_credentials_and_kafka_python_the_same_secret():
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="cartwatch",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "cartwatch"
    assert credentials.ssl_context is not None
    options = kafka_python_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(settings)
    bulk = aiokafka_options(settings)  # the changelog bulk reader's consumer
    assert bulk["security_protocol"] == "SASL_SSL"
    assert bulk["sasl_plain_username"] == "cartwatch"
    assert bulk["sasl_plain_password"] == "s3cret"
    assert bulk["ssl_context"] is not None


def test_tls_only_uses_an_ssl_context():
    credentials = faust_credentials(Settings(kafka_security_protocol="SSL"))
    assert isinstance(credentials, faust.SSLCredentials)


def test_an_unknown_protocol_is_refused_at_start_up():
    with pytest.raises(ValidationError):
        Settings(kafka_security_protocol="SASL_SSLX")
