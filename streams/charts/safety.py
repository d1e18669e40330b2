"""Safety charts of a trial: patients by worst CRS and ICANS grade, and the toxicity
stopping boundary with where the trial stands (models/dlt.py, models/stopping.py)."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from cartwatch.streams.charts.style import (
    INK,
    MUTED,
    SERIES,
    SEVERITY,
    new_figure,
    one_at_a_time,
    to_svg,
)

GRADES = ("1", "2", "3", "4", "5")


@one_at_a_time
def grade_bars(crs: dict[str, int], icans: dict[str, int]) -> str:
    """`draw_grade_bars` as an inline SVG of its own."""
    figure = new_figure(5.6, 3.2)
    draw_grade_bars(figure.add_axes((0.1, 0.16, 0.87, 0.74)), crs, icans)
    return to_svg(figure, "Patients by worst CRS and ICANS grade")


def draw_grade_bars(ax: Axes, crs: dict[str, int], icans: dict[str, int]) -> None:
    """Grouped bars: patients by worst grade 1-5, CRS beside ICANS, counts on top."""
    width = 0.38
    for offset, name, counts in ((-width / 2, "CRS", crs), (width / 2, "ICANS", icans)):
        xs = [i + offset for i in range(len(GRADES))]
        values = [counts.get(g, 0) for g in GRADES]
        bars = ax.bar(xs, values, width=width * 0.95, color=SERIES[name], label=name)
        ax.bar_label(bars, fontsize=8, color=INK, padding=2)
    ax.set_xticks(range(len(GRADES)), [f"grade {g}" for g in GRADES])
    ax.set_ylabel("patients")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(y=0.15)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper right")


@one_at_a_time
def boundary_chart(boundary: dict) -> str:
    """`draw_boundary` as an inline SVG of its own."""
    figure = new_figure(5.6, 3.5)
    draw_boundary(figure.add_axes((0.1, 0.15, 0.87, 0.75)), boundary)
    return to_svg(figure, "Toxicity stopping boundary and where the trial stands")


def draw_boundary(ax: Axes, boundary: dict) -> None:
    """The DLT count that stops the trial at each number of evaluable patients (a
    `boundary_report`), and the trial's own count (a marker; a cross where the path first
    crossed)."""
    rows = [(r["n_evaluable"], r["stop_at_dlt"]) for r in boundary["table"] if r["stop_at_dlt"]]
    n_max = boundary["max_patients"]
    if rows:
        xs, ys = zip(*rows, strict=True)
        ax.step(xs, ys, where="post", color=SEVERITY["critical"], lw=1.8, label="stopping boundary")
        ax.fill_between(xs, ys, max(ys) + 5, step="post", color=SEVERITY["critical"], alpha=0.07)
    status = boundary["status"]
    ax.plot(
        [status["n_evaluable"]],
        [status["n_dlt"]],
        "o",
        color=INK,
        ms=8,
        label="trial now",
        zorder=5,
    )
    right = status["n_evaluable"] > 0.6 * n_max  # near the right edge: label to the left
    ax.annotate(
        f"{status['n_dlt']} DLT in {status['n_evaluable']} evaluable",
        (status["n_evaluable"], status["n_dlt"]),
        xytext=(-10 if right else 10, 6),
        textcoords="offset points",
        ha="right" if right else "left",
        fontsize=9,
        color=INK,
    )
    crossed = status.get("crossed_at")
    if crossed:
        ax.plot(
            [crossed["n_evaluable"]],
            [crossed["n_dlt"]],
            "X",
            color=SEVERITY["critical"],
            ms=10,
            label="crossed",
            zorder=6,
        )
    top = max([status["n_dlt"], *(y for _, y in rows)])
    ax.set_xlim(0, n_max + 1)
    ax.set_ylim(0, top + 1.5)
    ax.set_xlabel("evaluable patients")
    ax.set_ylabel("patients with a DLT")
    ax.legend(loc="upper left")
    ax.text(
        0.99,
        0.03,
        f"p0 {boundary['p0']:g}, {boundary['method']}",
        transform=ax.transAxes,
        ha="right",
        fontsize=8,
        color=MUTED,
    )
