"""How the DMC report prints a number: the same rounding everywhere, so a reader (and the
test that reads the PDF's text back) can hold each printed figure against the JSON report."""

from __future__ import annotations

from datetime import UTC, datetime

NONE = "–"  # a rate over nobody, a median of nobody
NOT_REACHED = "NR"


def percent(rate: float | None) -> str:
    """79.8%: one decimal."""
    return NONE if rate is None else f"{rate * 100:.1f}%"


def proportion_ci(ci: list[float] | tuple[float, float] | None) -> str:
    """0.702–0.874: three decimals, as the published tables give it."""
    return NONE if ci is None else f"{ci[0]:.3f}–{ci[1]:.3f}"


def months(value: float | None) -> str:
    """17.8: months to one decimal; NR when the median is not reached."""
    return NOT_REACHED if value is None else f"{value:.1f}"


def months_ci(ci: tuple[float | None, float | None]) -> str:
    """14.1–NR: a median's interval in months."""
    return f"{months(ci[0])}–{months(ci[1])}"


def days(value: float | None) -> str:
    """5.0: days to one decimal."""
    return NONE if value is None else f"{value:.1f}"


def instant(epoch: float) -> str:
    """2026-01-31 00:00 UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def date(epoch: float) -> str:
    """2026-01-31 (UTC)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")
