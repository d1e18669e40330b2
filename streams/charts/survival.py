"""Kaplan-Meier charts with the numbers at risk under the axis (models/survival.py)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.transforms import blended_transform_factory

from cartwatch.models.survival import km_curve, numbers_at_risk, survival_at
from cartwatch.streams.charts.style import INK, MUTED, new_figure, one_at_a_time, to_svg

# Ticks every 3 months: trial follow-up visits are quarterly.
TICK_MONTHS = 3


# Where the axes sit in a figure of KM_SIZE inches: room below for the numbers at risk.
KM_SIZE = (5.6, 3.7)
KM_AXES = (0.13, 0.3, 0.83, 0.64)


@one_at_a_time
def km_chart(
    times: Sequence[float],
    events: Sequence[bool],
    *,
    colour: str,
    ylabel: str,
    median: float | None,
    label: str,
) -> str:
    """`draw_km` as an inline SVG of its own."""
    figure = new_figure(*KM_SIZE)
    ax = figure.add_axes(KM_AXES)
    draw_km(ax, times, events, colour=colour, ylabel=ylabel, median=median)
    return to_svg(figure, label)


def draw_km(
    ax: Axes,
    times: Sequence[float],
    events: Sequence[bool],
    *,
    colour: str,
    ylabel: str,
    median: float | None,
) -> None:
    """A Kaplan-Meier curve (times in months), censorings as ticks, the median as dashed
    lines, and the numbers at risk at each tick under the axis (the axes need room below
    them: KM_AXES in a figure of KM_SIZE)."""
    if not times:
        ax.text(0.5, 0.5, "nobody to count yet", transform=ax.transAxes, ha="center", color=MUTED)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(ylabel)
        return
    curve = km_curve(times, events)
    last = max([*times, 1.0])
    days, survival = zip(*[*curve, (last, curve[-1][1])], strict=True)
    ax.step(days, survival, where="post", color=colour, lw=2.0)
    censored = [t for t, e in zip(times, events, strict=True) if not e]
    ax.plot(censored, [survival_at(curve, t) for t in censored], "|", color=colour, ms=7, mew=1.2)
    ticks = list(range(0, int(last) + TICK_MONTHS, TICK_MONTHS))
    if median is not None:
        ax.plot([0, median, median], [0.5, 0.5, 0], color=MUTED, lw=0.9, ls="--")
        # Near the right edge the label goes left of the median and under the dashed line
        # (where a falling curve is not: it is above 0.5 until the median), else right of it
        # and above the line.
        right = median > 0.6 * ticks[-1]
        ax.annotate(
            f"median {median:.1f} mo",
            (median, 0.5),
            xytext=(-6, -5) if right else (6, 6),
            textcoords="offset points",
            ha="right" if right else "left",
            va="top" if right else "baseline",
            fontsize=9,
            color=INK,
        )
    ax.set_xticks(ticks)
    ax.set_xlim(0, ticks[-1])
    ax.set_ylim(0, 1.04)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("months")
    _at_risk(ax, times, ticks)


def _at_risk(ax: Axes, times: Sequence[float], ticks: list[int]) -> None:
    """A row of numbers at risk under the x axis, one per tick."""
    below = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(
        -0.06,
        -0.36,
        "at risk",
        transform=ax.transAxes,
        ha="right",
        va="center",
        fontsize=9,
        color=MUTED,
    )
    for tick, n in zip(ticks, numbers_at_risk(times, ticks), strict=True):
        ax.text(
            tick, -0.36, str(n), transform=below, ha="center", va="center", fontsize=9, color=INK
        )
