"""Alerts by rule and severity, with how long they waited for an acknowledgement.

Alerts are the JSON-ready dicts of the alert message (CONTRACT 4), with the database's
`acknowledged_at` when there is one (absent or null: not acknowledged). The wait is from
`detected_at` (when cartwatch raised it) to `acknowledged_at`, in minutes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class AlertLine:
    """Alerts of one rule and severity."""

    rule: str
    severity: str
    raised: int
    acknowledged: int
    median_wait_min: float | None
    longest_wait_min: float | None


def alert_lines(alerts: Iterable[dict]) -> list[AlertLine]:
    """One line per (rule, severity), critical first, then by rule."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for alert in alerts:
        groups.setdefault((alert["rule"], alert["severity"]), []).append(alert)
    lines = []
    for (rule, severity), group in groups.items():
        waits = [w for a in group if (w := wait_minutes(a)) is not None]
        lines.append(
            AlertLine(
                rule,
                severity,
                len(group),
                sum(a.get("acknowledged_at") is not None for a in group),
                statistics.median(waits) if waits else None,
                max(waits) if waits else None,
            )
        )
    return sorted(lines, key=lambda line: (SEVERITY_ORDER.get(line.severity, 3), line.rule))


def wait_minutes(alert: dict) -> float | None:
    """Minutes from detection to acknowledgement; None when not acknowledged."""
    acknowledged = alert.get("acknowledged_at")
    if acknowledged is None:
        return None
    return (_instant(acknowledged) - _instant(alert["detected_at"])).total_seconds() / 60


def _instant(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
