"""An alert's delivery state, derived when read from its deliveries in `alert_deliveries`.

The outbox is the one record of delivery: the dispatcher changes only its rows, so there is
no second copy to fall out of step. An alert's state is that of its first notification
(notification 0), whose rows, one per sink routed for the alert's severity, the dispatcher
creates together in one transaction (`outbox.enqueue_new`):

- `delivered`: it has such rows and every one is delivered; `delivered_at` is when the last
  sink took it. Re-notifications of a critical alert leave it as it is.
- `failed`: a row is not delivered and its last attempt failed (refused, timed out,
  unreachable). The dispatcher keeps retrying with backoff, so it may still be delivered.
- `pending`: otherwise: no rows yet (no dispatcher has taken the alert up, or no sink is
  routed for its severity), or rows waiting for their first attempt or being delivered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import Engine, Select, and_, case, func, select

from cartwatch.streams.storage.engine import utc
from cartwatch.streams.storage.schema import alert_deliveries, alerts

DeliveryStatus = Literal["pending", "delivered", "failed"]
TALLIES = ("due", "delivered", "failing", "last_delivered_at")
_D = alert_deliveries
_CHUNK = 500  # alert ids per query: far below SQLite's and PostgreSQL's parameter limits


def delivery_status(due: int, delivered: int, failing: int) -> DeliveryStatus:
    """The state of a first notification with `due` rows, `delivered` of them delivered
    and `failing` of them waiting for a retry after a failed attempt."""
    if due > 0 and delivered == due:
        return "delivered"
    return "failed" if failing > 0 else "pending"


def with_delivery(stmt: Select) -> Select:
    """`stmt`, a select from `alerts`, with the tallies `delivery_of` reads (TALLIES)."""
    first = (
        select(
            _D.c.alert_id,
            func.count().label("due"),
            func.sum(case((_D.c.status == "delivered", 1), else_=0)).label("delivered"),
            func.sum(
                case((and_(_D.c.status == "pending", _D.c.last_error.is_not(None)), 1), else_=0)
            ).label("failing"),
            func.max(_D.c.delivered_at).label("last_delivered_at"),
        )
        .where(_D.c.notification == 0)
        .group_by(_D.c.alert_id)
        .subquery("first_notification")
    )
    tallies = (first.c.due, first.c.delivered, first.c.failing, first.c.last_delivered_at)
    return stmt.add_columns(*tallies).outerjoin(first, first.c.alert_id == alerts.c.alert_id)


def delivery_of(row: Any) -> dict[str, Any]:
    """`delivery_status` and `delivered_at` (RFC 3339, UTC) of a row of `with_delivery`."""
    status = delivery_status(row["due"] or 0, row["delivered"] or 0, row["failing"] or 0)
    at = utc(row["last_delivered_at"]) if status == "delivered" else None
    return {"delivery_status": status, "delivered_at": at.isoformat() if at else None}


def delivery_states(engine: Engine, alert_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """alert_id -> `delivery_of` for each of `alert_ids` stored (absent: not stored yet)."""
    ids, found = sorted(set(alert_ids)), {}
    with engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            stmt = with_delivery(select(alerts.c.alert_id)).where(alerts.c.alert_id.in_(chunk))
            for row in conn.execute(stmt).mappings():
                found[row["alert_id"]] = delivery_of(row)
    return found
