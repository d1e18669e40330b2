"""The dead-letter routes (role data-manager): pages of dead letters, and one dead letter whole.

`GET /dead-letters?status=&limit=&after=` answers at most `limit` (1 to 1000, default
100), newest first, and `next`: the `after` of the following page, null on the last one. A
key or value over 64 KiB is left out of the page (null, `<name>_omitted` true, its size in
`<name>_size`); `GET /dead-letters/{id}` has it whole, as text and base64.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:  # the API without a database loads no database code
    from sqlalchemy import Engine

UNREACHABLE = "the database cannot be reached; try again"
_WHOLE = re.compile(r"[0-9]{1,18}")  # ASCII digits only; 18 stay within a BIGINT


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _whole(text: str | None, least: int, most: int | None) -> int | None:
    """`text` as a whole number within [least, most]; None when it is none."""
    if text is None or not _WHOLE.fullmatch(text):
        return None
    number = int(text)
    return number if least <= number and (most is None or number <= most) else None


def dead_letter_routes(engine: Engine | None) -> web.RouteTableDef:
    """The routes; without a database each answers 503."""
    routes = web.RouteTableDef()

    @routes.get("/dead-letters")
    async def page(request: web.Request) -> web.Response:
        if engine is None:
            return _error(503, "no database configured")
        from sqlalchemy.exc import OperationalError

        from cartwatch.streams.storage.dead_letters import PAGE_MAX, dead_letter_page

        query = request.query
        status = query.get("status")
        if status not in (None, "new", "redriven"):
            return _error(400, "status must be new or redriven")
        limit = _whole(query.get("limit", "100"), 1, PAGE_MAX)
        if limit is None:
            return _error(400, f"limit must be a whole number from 1 to {PAGE_MAX}")
        after = _whole(query.get("after"), 1, None)
        if "after" in query and after is None:
            return _error(400, "after must be the next of an earlier page (a whole number)")
        try:
            found = await asyncio.to_thread(
                dead_letter_page, engine, status=status, limit=limit, after=after
            )
        except OperationalError:
            return _error(503, UNREACHABLE)
        return web.json_response({"dead_letters": found.dead_letters, "next": found.next})

    @routes.get("/dead-letters/{dead_letter_id}")
    async def one(request: web.Request) -> web.Response:
        if engine is None:
            return _error(503, "no database configured")
        from sqlalchemy.exc import OperationalError

        from cartwatch.streams.storage.dead_letters import get_dead_letter
        from cartwatch.streams.storage.errors import DeadLetterNotFound

        dead_letter_id = _whole(request.match_info["dead_letter_id"], 1, None)
        if dead_letter_id is None:
            return _error(400, "a dead letter's id is a whole number")
        try:
            found = await asyncio.to_thread(get_dead_letter, engine, dead_letter_id)
        except DeadLetterNotFound:
            return _error(404, "unknown dead letter")
        except OperationalError:
            return _error(503, UNREACHABLE)
        return web.json_response(found)

    return routes
