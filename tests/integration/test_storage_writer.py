"""The StorageWriter commits everything put, waits (back-pressure) and retries through a
PostgreSQL outage, and afterwards the database holds every item exactly once."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.errors import WriterClosed
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.operations import list_alerts
from cartwatch.streams.storage.schema import alerts, patient_snapshots
from cartwatch.streams.storage.writer import StorageWriter
from tests.integration.test_storage_support import ThrowawayPostgres, alert, snapshot, trial

pytestmark = pytest.mark.integration


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'writer.db'}"
    upgrade(url)
    return url


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    pg = ThrowawayPostgres()
    pg.start()
    try:
        yield pg
    finally:
        try:
            pg.stop("immediate")
        finally:
            pg.remove()


def _count(engine: Engine, table, trial_id: str) -> int:
    stmt = select(func.count()).select_from(table).where(table.c.trial_id == trial_id)
    with engine.connect() as conn:
        return conn.execute(stmt).scalar()


def _snapshots(engine: Engine, trial_id: str) -> dict[str, int]:
    stmt = select(patient_snapshots.c.patient_id, patient_snapshots.c.events_accepted).where(
        patient_snapshots.c.trial_id == trial_id
    )
    with engine.connect() as conn:
        return dict(conn.execute(stmt).all())


def test_flush_returns_once_everything_put_is_committed(sqlite_url: str) -> None:
    t = trial()

    async def stream(writer: StorageWriter) -> None:
        for n in range(1, 301):
            await writer.put(snapshot(t, f"P{n % 30}", n))
        await writer.put(alert(t, "P1"))
        await writer.flush(timeout=10)

    writer = StorageWriter.connect(sqlite_url, batch_size=64)
    asyncio.run(stream(writer))
    assert writer.pending == 0 and writer.committed == 301 and writer.healthy
    assert writer.close() is True
    engine = make_engine(sqlite_url)
    assert _snapshots(engine, t) == {f"P{k}": 270 + k if k else 300 for k in range(30)}
    assert [a["alert_id"] for a in list_alerts(engine, trial_id=t)] == [f"{t}:P1:crs_grade:2"]
    engine.dispose()


def test_a_flush_does_not_wait_for_a_batch_to_fill(sqlite_url: str) -> None:
    """While a flush waits, the writer commits what it has instead of gathering more."""
    t = trial()

    async def put_and_flush(writer: StorageWriter) -> None:
        for n in range(1, 4):
            await writer.put(snapshot(t, f"P{n}", n))
            await writer.flush(timeout=5)  # would time out if the writer gathered for 60 s

    writer = StorageWriter.connect(sqlite_url, batch_size=1000, max_delay_s=60)
    asyncio.run(put_and_flush(writer))
    assert writer.committed == 3
    assert writer.close() is True


def test_a_flush_cancelled_while_the_database_fails_leaves_no_thread_waiting(
    tmp_path: Path,
) -> None:
    # A worker stopped (SIGTERM) while its database writes failed never exited: the flush's
    # thread waited for ever, and asyncio waits for its threads at exit.
    writer = StorageWriter.connect(f"sqlite:///{tmp_path / 'never-migrated.db'}")

    async def flush_then_stop() -> None:
        await writer.put(snapshot(trial(), "P1", 1))  # no table: every write fails
        flushing = asyncio.ensure_future(writer.flush())
        await asyncio.sleep(0.3)
        assert not flushing.done() and not writer.healthy
        flushing.cancel()

    # asyncio.run returns once its executor's threads have ended (a daemon thread here, so
    # that a regression fails this test instead of hanging the run)
    run = threading.Thread(target=asyncio.run, args=(flush_then_stop(),), daemon=True)
    run.start()
    run.join(10)
    assert not run.is_alive()
    assert writer.close(timeout=0.5) is False  # abandoned, with the item not committed
    assert writer.pending == 1


def test_a_closed_writer_refuses_new_items(sqlite_url: str) -> None:
    writer = StorageWriter.connect(sqlite_url)
    writer.close()
    with pytest.raises(WriterClosed):
        asyncio.run(writer.put(snapshot(trial(), "P1", 1)))


def test_a_writer_survives_a_postgresql_outage_and_loses_nothing(
    throwaway_postgres: ThrowawayPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    pg, t = throwaway_postgres, trial()
    upgrade(pg.url)
    writer = StorageWriter.connect(pg.url, batch_size=50, max_pending=100, max_backoff_s=1.0)
    patients = [f"SUBJ-{n:03d}" for n in range(400)]

    async def put_all(first: int, last: int) -> None:
        for n in range(first, last):
            await writer.put(snapshot(t, patients[n], n + 1))
            await writer.put(alert(t, patients[n]))

    async def scenario() -> bool:
        await put_all(0, 150)
        await writer.flush(timeout=20)
        pg.stop("immediate")  # mid-stream: the database vanishes
        during = asyncio.create_task(put_all(150, 400))
        await asyncio.sleep(3)
        held_back = not during.done()  # 500 items > 100 queued + one batch of 50
        assert not writer.healthy and "OperationalError" in (writer.last_error or "")
        pg.start()
        await during
        await put_all(100, 200)  # redelivered after the outage: changes nothing
        await writer.flush(timeout=30)
        return held_back

    with caplog.at_level(logging.DEBUG, logger="cartwatch.streams.storage"):
        held_back = asyncio.run(scenario())
    assert writer.close() is True and writer.healthy and writer.retries > 0
    assert held_back, "put should wait while the queue is full (back-pressure)"
    engine = make_engine(pg.url)
    assert _snapshots(engine, t) == {p: n + 1 for n, p in enumerate(patients)}
    assert _count(engine, alerts, t) == 400
    engine.dispose()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "storage write failed" in logged and "SUBJ-" not in logged and t not in logged
