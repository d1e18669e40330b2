"""Engines for the configured database URL (a secret: never logged)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url


def database_url(url: str | SecretStr | URL) -> URL:
    """The URL with PostgreSQL pinned to psycopg 3 (plain `postgresql://` means psycopg2)."""
    if isinstance(url, SecretStr):
        url = url.get_secret_value()
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | SecretStr | URL) -> Engine:
    """An engine whose errors never echo bound parameters (they hold patient ids)."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Wait for a concurrent writer (the CLI beside a worker) instead of failing at once.
        return create_engine(parsed, hide_parameters=True, connect_args={"timeout": 30})
    return create_engine(
        parsed, hide_parameters=True, pool_pre_ping=True, connect_args={"connect_timeout": 5}
    )


def utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime; SQLite hands back naive ones, which are stored in UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def now() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)
