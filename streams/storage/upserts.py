"""Idempotent, batched upserts of stream items, one statement per row kind.

Every statement is SQLAlchemy Core with bound parameters and the dialect's
INSERT ... ON CONFLICT. A batch is deduplicated on each table's key first, because
PostgreSQL refuses an ON CONFLICT DO UPDATE that touches the same row twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

from cartwatch.alerts.model import AlertRaised
from cartwatch.streams.storage import schema
from cartwatch.streams.storage.engine import utc
from cartwatch.streams.storage.items import (
    AdverseEventReport,
    DeadLetter,
    PatientSnapshot,
    StorageItem,
)


def write_batch(conn: Connection, items: Iterable[StorageItem]) -> None:
    """Apply a batch in the caller's transaction; applying it twice changes nothing."""
    by_kind: dict[type, list] = {}
    for item in items:
        by_kind.setdefault(type(item), []).append(item)
    for kind, write in _WRITERS:
        if by_kind.get(kind):
            write(conn, by_kind[kind])


def _insert(conn: Connection, table: Table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _latest(items: list, key: Callable) -> list:
    """One item per key (the last one), in key order.

    Key order makes concurrent writers (several workers) lock rows in the same order,
    which keeps PostgreSQL deadlocks away; a deadlock would only cost a retry anyway.
    """
    latest = {key(item): item for item in items}
    return [latest[k] for k in sorted(latest)]


def _time(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return utc(value)


def _snapshots(conn: Connection, items: list[PatientSnapshot]) -> None:
    newest: dict[tuple[str, str], PatientSnapshot] = {}
    for s in items:
        held = newest.get((s.trial_id, s.patient_id))
        if held is None or s.events_accepted >= held.events_accepted:
            newest[(s.trial_id, s.patient_id)] = s
    rows = [
        {
            "trial_id": s.trial_id,
            "patient_id": s.patient_id,
            "record": s.record,
            "events_accepted": s.events_accepted,
            "updated_at": utc(s.updated_at),
        }
        for _, s in sorted(newest.items())
    ]
    table = schema.patient_snapshots
    stmt = _insert(conn, table)
    # A replayed or late snapshot (fewer accepted events) never overwrites a newer one.
    stmt = stmt.on_conflict_do_update(
        index_elements=["trial_id", "patient_id"],
        set_={c: stmt.excluded[c] for c in ("record", "events_accepted", "updated_at")},
        where=table.c.events_accepted <= stmt.excluded.events_accepted,
    )
    conn.execute(stmt, rows)


def _ae_reports(conn: Connection, items: list[AdverseEventReport]) -> None:
    rows = [
        {
            "event_id": r.event_id,
            "trial_id": r.trial_id,
            "patient_id": r.patient_id,
            "ae_id": r.ae_id,
            "term": r.term,
            "grade": r.grade,
            "onset_at": utc(r.onset_at),
            "resolved_at": utc(r.resolved_at),
            "status": r.status,
            "treatments": list(r.treatments),
            "occurred_at": utc(r.occurred_at),
        }
        for r in _latest(items, lambda r: r.event_id)
    ]
    # The event_id is the contract's idempotency key: a second message changes nothing.
    stmt = _insert(conn, schema.adverse_event_reports).on_conflict_do_nothing(
        index_elements=["event_id"]
    )
    conn.execute(stmt, rows)


def _alerts(conn: Connection, items: list[AlertRaised]) -> None:
    rows = []
    for a in _latest(items, lambda a: a.alert_id):
        row = a.model_dump()
        row["triggered_at"] = _time(a.triggered_at)
        row["detected_at"] = _time(a.detected_at)
        rows.append(row)
    # alert_id is deterministic: a re-raised alert keeps its delivery and acknowledgement.
    stmt = _insert(conn, schema.alerts).on_conflict_do_nothing(index_elements=["alert_id"])
    conn.execute(stmt, rows)


def _dead_letters(conn: Connection, items: list[DeadLetter]) -> None:
    rows = [
        {
            "source_topic": d.source_topic,
            "source_partition": d.source_partition,
            "source_offset": d.source_offset,
            "key": d.key,
            "value": d.value,
            "reasons": list(d.reasons),
            "received_at": utc(d.received_at),
        }
        for d in _latest(items, lambda d: (d.source_topic, d.source_partition, d.source_offset))
    ]
    # The same source message dead-lettered again (redelivery) is the same dead letter.
    stmt = _insert(conn, schema.dead_letters).on_conflict_do_nothing(
        index_elements=["source_topic", "source_partition", "source_offset"]
    )
    conn.execute(stmt, rows)


_WRITERS: list[tuple[type, Callable]] = [
    (PatientSnapshot, _snapshots),
    (AdverseEventReport, _ae_reports),
    (DeadLetter, _dead_letters),
    (AlertRaised, _alerts),
]
