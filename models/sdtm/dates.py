"""ISO 8601 date-times and SDTM study days.

The record keeps instants (POSIX seconds), not the offset an event was sent with: every
--DTC is in UTC, written without a designator ("2025-03-04T10:00:00"), with microseconds
when there are any (the record's resolution), so a time read back is the instant itself.
A study day counts calendar days (UTC) from the reference start, which is day 1; the day
before it is day -1 (SDTM IG 4.4.4).
"""

from __future__ import annotations

from datetime import UTC, datetime


def dtc(epoch: float | None) -> str:
    """The instant as an SDTM --DTC in UTC; "" for none."""
    if epoch is None:
        return ""
    at = datetime.fromtimestamp(epoch, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f" if at.microsecond else "%Y-%m-%dT%H:%M:%S")


def study_day(epoch: float | None, reference: float | None) -> int | None:
    """--DY of the instant against the reference start (RFSTDTC); None without either."""
    if epoch is None or reference is None:
        return None
    days = (_date(epoch) - _date(reference)).days
    return days + 1 if days >= 0 else days


def _date(epoch: float):
    return datetime.fromtimestamp(epoch, UTC).date()
