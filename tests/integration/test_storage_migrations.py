"""Migrations upgrade an empty SQLite and an empty PostgreSQL database to the schema."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, text

from cartwatch.streams.cli.main import main
from cartwatch.streams.storage.engine import make_engine, utc
from cartwatch.streams.storage.migrate import alembic_config, current_revision, upgrade
from cartwatch.streams.storage.outbox import list_deliveries
from cartwatch.streams.storage.schema import alert_deliveries, metadata
from cartwatch.streams.storage.upserts import write_batch
from tests.integration.test_storage_support import alert, database, postgres_database, trial

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
        assert current_revision(engine) == "0005"
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


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _delivery(alert_id: str, sink: str, notification: int, at: datetime | None, error=None):
    return {
        "alert_id": alert_id,
        "sink": sink,
        "notification": notification,
        "status": "delivered" if at else "pending",
        "next_attempt_at": datetime(2026, 1, 1, tzinfo=UTC),
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "delivered_at": at,
        "last_error": error,
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0005_drops_the_stale_delivery_columns_and_its_downgrade_fills_them_in(
    backend: str, tmp_path: Path
) -> None:
    """Deliveries survive the upgrade (SQLite rebuilds `alerts`, which they reference);
    an older release, downgraded to, shows what the deliveries say."""
    early, late = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    with database(backend, tmp_path) as engine:
        _downgrade(engine, "0004")
        t = trial()
        delivered, failing, untouched = (alert(t, p) for p in ("P1", "P2", "P3"))
        with engine.begin() as conn:
            write_batch(conn, [delivered, failing, untouched])
            conn.execute(
                insert(alert_deliveries),
                [
                    _delivery(delivered.alert_id, "email", 0, late),
                    _delivery(delivered.alert_id, "webhook", 0, early),
                    _delivery(delivered.alert_id, "webhook", 1, None),  # a reminder, pending
                    _delivery(failing.alert_id, "email", 0, early),
                    _delivery(failing.alert_id, "webhook", 0, None, error="HTTP 503"),
                ],
            )
        upgrade(engine)
        columns = {c["name"] for c in inspect(engine).get_columns("alerts")}
        assert not {"delivery_status", "delivered_at"} & columns
        assert inspect(engine).get_check_constraints("alerts") == []
        assert len(list_deliveries(engine)) == 5
        _downgrade(engine, "0004")
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT alert_id, delivery_status, delivered_at FROM alerts")
            ).all()
        checks = {c["name"] for c in inspect(engine).get_check_constraints("alerts")}
        upgrade(engine)  # and up again
        assert current_revision(engine) == "0005"

    older = {alert_id: (status, at) for alert_id, status, at in rows}
    assert (older[delivered.alert_id][0], utc(_time(older[delivered.alert_id][1]))) == (
        "delivered",
        late,
    )
    assert older[failing.alert_id] == ("failed", None)
    assert older[untouched.alert_id] == ("pending", None)
    assert checks == {"ck_alerts_ck_alerts_delivery"}  # as 0001 named it


def _time(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value  # SQLite: text
