"""The alert delivery outbox: which (alert, sink, notification) is due, claimed, delivered.

Every dispatcher of every worker runs these against the one database. Rows are created
with INSERT ... SELECT ... ON CONFLICT DO NOTHING on the table's primary key, so a row
exists once however many dispatchers race; a due row is claimed by moving its
`next_attempt_at` to the end of a lease with a compare-and-set on `attempts` (and, on
PostgreSQL, `SELECT ... FOR UPDATE SKIP LOCKED`, so dispatchers skip each other's rows
instead of waiting), so one dispatcher delivers it. A dispatcher that dies mid-delivery
leaves the row due again when its lease ends: at-least-once, never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, String, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cartwatch.alerts.model import ALERT_FIELDS
from cartwatch.streams.storage.engine import utc
from cartwatch.streams.storage.schema import Utc, alert_deliveries, alerts

# The alert as CONTRACT 4 defines it, in its order; the outbox adds `notification`.
CONTRACT_FIELDS = ALERT_FIELDS
_D, _A = alert_deliveries, alerts
_NEW_ROW = ["alert_id", "sink", "notification", "next_attempt_at", "created_at"]


@dataclass(frozen=True, slots=True)
class Claimed:
    """One delivery this dispatcher holds until `mark_delivered` or `mark_failed`."""

    sink: str
    alert_id: str
    notification: int
    attempts: int  # including this one
    alert: dict[str, Any]  # CONTRACT 4 fields and `notification`


def _insert(conn: Connection):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(_D)


def enqueue_new(engine: Engine, routes: Mapping[str, Iterable[str]], now: datetime) -> int:
    """First notification rows for the alerts each sink (-> its severities) has none for.

    Every sink's rows in one transaction: an alert's first notification has all the rows
    it is due as soon as it has one, which its delivery state reads (delivery_state.py).
    Every dispatcher loop runs this; in key order, concurrent ones wait, never deadlock.
    """
    added = 0
    with engine.begin() as conn:
        for sink, severities in sorted(routes.items()):
            known = exists().where(_D.c.alert_id == _A.c.alert_id, _D.c.sink == sink)
            rows = select(
                _A.c.alert_id,
                literal(sink, String),
                literal(0, Integer),
                literal(now, Utc),
                literal(now, Utc),
            ).where(_A.c.severity.in_(sorted(severities)), ~known)
            rows = rows.order_by(_A.c.alert_id)
            stmt = _insert(conn).from_select(_NEW_ROW, rows).on_conflict_do_nothing()
            added += conn.execute(stmt).rowcount
    return added


def enqueue_renotifications(engine: Engine, sink: str, cutoff: datetime, now: datetime) -> int:
    """Notification n+1 of each unacknowledged critical alert whose n-th reached the sink
    at or before `cutoff`."""
    last, later = _D.alias("last"), _D.alias("later")
    newer = exists().where(
        later.c.alert_id == last.c.alert_id,
        later.c.sink == last.c.sink,
        later.c.notification > last.c.notification,
    )
    rows = (
        select(
            last.c.alert_id,
            last.c.sink,
            last.c.notification + 1,
            literal(now, Utc),
            literal(now, Utc),
        )
        .join(_A, _A.c.alert_id == last.c.alert_id)
        .where(
            last.c.sink == sink,
            last.c.status == "delivered",
            last.c.delivered_at <= cutoff,
            _A.c.severity == "critical",
            _A.c.acknowledged_at.is_(None),
            ~newer,
        )
    )
    with engine.begin() as conn:
        stmt = _insert(conn).from_select(_NEW_ROW, rows).on_conflict_do_nothing()
        return conn.execute(stmt).rowcount


def claim_due(
    engine: Engine, sink: str, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Take up to `limit` due deliveries of `sink`, each out of reach of other dispatchers
    until `lease_until`."""
    due = (
        select(_D.c.alert_id, _D.c.notification, _D.c.attempts)
        .where(_D.c.sink == sink, _D.c.status == "pending", _D.c.next_attempt_at <= now)
        .order_by(_D.c.next_attempt_at, _D.c.alert_id, _D.c.notification)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite serialises writers anyway
    )
    with engine.begin() as conn:
        taken = []
        for alert_id, notification, attempts in conn.execute(due).all():
            claim = (
                update(_D)
                .where(*_key(sink, alert_id, notification), _D.c.attempts == attempts)
                .where(_D.c.status == "pending")
                .values(attempts=attempts + 1, next_attempt_at=utc(lease_until))
            )
            if conn.execute(claim).rowcount == 1:
                taken.append((alert_id, notification, attempts + 1))
        ids = sorted({alert_id for alert_id, _, _ in taken})
        found = conn.execute(select(_A).where(_A.c.alert_id.in_(ids))).mappings()
        by_id = {row["alert_id"]: alert_json(row) for row in found}
    return [Claimed(sink, a, n, k, {**by_id[a], "notification": n}) for a, n, k in taken]


def mark_delivered(engine: Engine, claimed: Claimed, at: datetime) -> None:
    """The receiver took it: never sent again (for this notification)."""
    stmt = (
        update(_D)
        .where(*_key(claimed.sink, claimed.alert_id, claimed.notification))
        .values(status="delivered", delivered_at=utc(at), last_error=None)
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def mark_failed(engine: Engine, claimed: Claimed, retry_at: datetime, error: str) -> None:
    """The receiver did not take it: due again at `retry_at`."""
    stmt = (
        update(_D)
        .where(*_key(claimed.sink, claimed.alert_id, claimed.notification))
        .where(_D.c.status == "pending")
        .values(next_attempt_at=utc(retry_at), last_error=error[:500])
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def list_deliveries(engine: Engine, alert_id: str | None = None) -> list[dict[str, Any]]:
    """Delivery rows (of one alert, or all), JSON-ready, in key order."""
    stmt = select(_D).order_by(_D.c.alert_id, _D.c.sink, _D.c.notification)
    if alert_id is not None:
        stmt = stmt.where(_D.c.alert_id == alert_id)
    with engine.connect() as conn:
        rows = conn.execute(stmt).mappings().all()
    times = ("next_attempt_at", "created_at", "delivered_at")
    return [
        {k: (utc(v).isoformat() if k in times and v else v) for k, v in r.items()} for r in rows
    ]


def alert_json(row: Any) -> dict[str, Any]:
    """The CONTRACT 4 object of a stored alert (times in RFC 3339, UTC)."""
    out = {name: row[name] for name in CONTRACT_FIELDS}
    for name in ("triggered_at", "detected_at"):
        out[name] = utc(out[name]).isoformat()
    return out


def _key(sink: str, alert_id: str, notification: int) -> tuple:
    return (_D.c.sink == sink, _D.c.alert_id == alert_id, _D.c.notification == notification)
