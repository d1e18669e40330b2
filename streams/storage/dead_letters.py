"""Dead letters as the API and `cartwatch dlq` read them: a page at a time, newest first,
with a large key or value left out of a list and fetched whole by id.

A page of 1,000 dead letters of 1 MiB each would be 2.3 GiB of JSON (the text and its
base64); with every payload over 64 KiB left out, and left unread by the database, it is
a few hundred bytes per dead letter. Pages follow the ids downwards, so dead letters that
arrive meanwhile never shift a page.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, func, select

from cartwatch.streams.storage.engine import utc
from cartwatch.streams.storage.errors import DeadLetterNotFound
from cartwatch.streams.storage.schema import dead_letters

LISTED_BYTES_MAX = 64 * 1024  # a key or value larger is left out of lists
PAGE_MAX = 1000
_PAYLOADS = ("key", "value")
_TIMES = ("received_at", "redriven_at")
_DL = dead_letters


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """Up to `limit` dead letters, newest first, and the `after` of the next page."""

    dead_letters: list[dict[str, Any]]
    next: int | None  # None: no older dead letter matches


def dead_letter_page(
    engine: Engine, *, status: str | None = None, limit: int = 100, after: int | None = None
) -> DeadLetterPage:
    """The newest `limit` dead letters (of `status`, when given) with an id below `after`.

    A key or value over LISTED_BYTES_MAX is null here with `<name>_omitted` true; its size
    is in `<name>_size` either way (null: none, as in a tombstone's value). ValueError for a
    `limit` outside 1 to PAGE_MAX.
    """
    if not 1 <= limit <= PAGE_MAX:
        raise ValueError(f"limit must be from 1 to {PAGE_MAX}")
    others = [c for c in _DL.c if c.name not in _PAYLOADS]
    payloads = [part for name in _PAYLOADS for part in _listed(_DL.c[name])]
    stmt = select(*others, *payloads).order_by(_DL.c.id.desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(_DL.c.status == status)
    if after is not None:
        stmt = stmt.where(_DL.c.id < after)
    with engine.connect() as conn:
        rows = [_json(row) for row in conn.execute(stmt).mappings()]
    more = len(rows) > limit
    return DeadLetterPage(rows[:limit], rows[limit - 1]["id"] if more else None)


def get_dead_letter(engine: Engine, dead_letter_id: int) -> dict[str, Any]:
    """One dead letter with its whole key and value; DeadLetterNotFound if there is none."""
    sizes = [func.length(_DL.c[name]).label(f"{name}_size") for name in _PAYLOADS]
    stmt = select(_DL, *sizes).where(_DL.c.id == dead_letter_id)
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        raise DeadLetterNotFound(f"no dead letter with id {dead_letter_id}")
    return _json(row)


def _listed(column: ColumnElement) -> tuple[ColumnElement, ColumnElement]:
    """The payload when small enough (else null, never read) and its size in bytes."""
    size = func.length(column)  # bytes of a BLOB (SQLite), of a bytea (PostgreSQL)
    small = case((size <= LISTED_BYTES_MAX, column), else_=None)
    return small.label(column.name), size.label(f"{column.name}_size")


def _json(row: Any) -> dict[str, Any]:
    out = dict(row)
    for name in _TIMES:
        if out[name] is not None:
            out[name] = utc(out[name]).isoformat()
    for name in _PAYLOADS:  # the text for reading, base64 for the exact bytes
        raw = out[name]
        out[f"{name}_omitted"] = raw is None and out[f"{name}_size"] is not None
        if raw is not None:
            raw = bytes(raw)
            out[name] = raw.decode("utf-8", errors="replace")
        out[f"{name}_base64"] = base64.b64encode(raw).decode("ascii") if raw is not None else None
    return out
