"""TLS and SASL for every Kafka client cartwatch opens, from one set of settings."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import faust

from cartwatch.streams.worker.settings import Settings


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's `broker_credentials` for the configured security protocol (None: PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password is not None else None,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=_ssl_context(settings) if protocol == "SASL_SSL" else None,
    )


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's producer and admin client."""
    return _client_options(settings, lambda: {"ssl_cafile": settings.kafka_ssl_cafile})


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client outside Faust (the bootstrap included)."""
    options = _client_options(settings, lambda: {"ssl_context": _ssl_context(settings)})
    return {"bootstrap_servers": settings.kafka_bootstrap} | options


def _client_options(settings: Settings, tls: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The security options kafka-python and aiokafka share; `tls` gives the TLS ones."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options |= tls()
    if settings.kafka_security_protocol.startswith("SASL"):
        password = settings.kafka_sasl_password
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": password.get_secret_value() if password else None,
        }
    return options
