"""Migrations upgrade an empty SQLite and an empty PostgreSQL database to the schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cartwatch.streams.cli.main import main
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import current_revision, upgrade
from cartwatch.streams.storage.schema import metadata
from tests.integration.test_storage_support import postgres_database

pytestmark = pytest.mark.integration

TABLES = {
    "patient_snapshots",
    "adverse_event_reports",
    "alerts",
    "alert_deliveries",
    "audit_log",
    "dead_letters",
    "users",
}


def _assert_at_head_and_matches_schema(url: str) -> None:
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert current_revision(engine) == "0004"
        with engine.connect() as conn:
            # No drift between the hand-written migration and streams/storage/schema.py.
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        engine.dispose()


def test_migrations_upgrade_an_empty_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    _assert_at_head_and_matches_schema(url)


def test_migrations_upgrade_an_empty_postgresql_database() -> None:
    with postgres_database() as url:
        upgrade(url)
        _assert_at_head_and_matches_schema(url)


def test_upgrading_twice_is_harmless(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade(url)
    upgrade(url)
    _assert_at_head_and_matches_schema(url)


def test_cartwatch_db_upgrade_migrates_the_configured_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    _assert_at_head_and_matches_schema(url)


def test_a_plain_postgresql_url_is_served_by_psycopg_3() -> None:
    with postgres_database() as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        upgrade(plain)
        _assert_at_head_and_matches_schema(plain)
