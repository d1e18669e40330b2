"""The desk's templates (jinja2, every value HTML-escaped) and the filters they format with."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from cartwatch.alerts.sinks.links import acknowledge_path, patient_path, trial_path

TEMPLATES = Path(__file__).parent / "templates"
# The rules as a physician reads them (docs/ALERT_RULES.md); the code name stays beside it.
RULE_NAMES = {
    "crs_grade": "CRS grade (reported)",
    "icans_grade": "ICANS grade (reported)",
    "crs_derived": "CRS grade (from bedside signs)",
    "icans_derived": "ICANS grade (from neuro signs)",
    "il6_fold_rise": "IL-6 rise over baseline",
    "ifng_fold_rise": "IFN-γ rise over baseline",
    "ferritin_high": "Ferritin high",
    "crp_high": "CRP high",
    "modified_easix": "Modified EASIX",
    "toxicity_boundary": "Toxicity stopping boundary",
}


def instant(value: str | float | datetime | None) -> datetime | None:
    """A timestamp (RFC 3339 text, POSIX seconds or datetime) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC)


def utc(value: str | float | datetime | None) -> str:
    """`2025-02-07 13:00 UTC`; an em dash for none."""
    at = instant(value)
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "—"


def utc_date(value: str | float | datetime | None) -> str:
    """`2025-02-07` (UTC)."""
    at = instant(value)
    return at.strftime("%Y-%m-%d") if at else "—"


def utc_time(value: str | float | datetime | None) -> str:
    """`13:00 UTC`."""
    at = instant(value)
    return at.strftime("%H:%M UTC") if at else ""


def age(value: str | float | datetime | None, now: float) -> str:
    """How long ago: `45 s`, `12 min`, `3 h 5 min`, `4 d`."""
    at = instant(value)
    if at is None:
        return "—"
    seconds = max(0, int(now - at.timestamp()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d"


def number(value: float | int | None, digits: int = 1) -> str:
    """A figure as people read it: up to `digits` decimals, no trailing zeros (`39.1`, `4`,
    `0.004`); an em dash for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(rate: float | None, digits: int = 1) -> str:
    """`79.8%`; an em dash for a rate over nobody."""
    return "—" if rate is None else f"{100 * rate:.{digits}f}%"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        # Every template is escaped but the style sheet, which holds no value.
        autoescape=select_autoescape(["html"], disabled_extensions=("css",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {"utc": utc, "utc_date": utc_date, "utc_time": utc_time, "age": age}
    env.filters |= {"number": number, "percent": percent}
    env.filters["rule_name"] = lambda rule: RULE_NAMES.get(rule, rule.replace("_", " "))
    env.filters["epoch"] = lambda value: instant(value).timestamp() if value else ""
    env.globals |= {
        "patient_path": patient_path,
        "trial_path": trial_path,
        "acknowledge_path": acknowledge_path,
    }
    return env


ENVIRONMENT = environment()


def render(template: str, **context: Any) -> str:
    """One page or fragment as HTML."""
    return ENVIRONMENT.get_template(template).render(**context)
