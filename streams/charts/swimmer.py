"""The swimmer plot: one lane per infused patient, the first weeks' CRS and ICANS episodes
on the left (days), the whole course on the right (months): response, relapse, death, the
end of follow-up (models/swimmer.py)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cartwatch.models.swimmer import Lane
from cartwatch.streams.charts.style import GRID, INK, MUTED, SERIES, SEVERITY

EARLY_DAYS = 42  # CRS and ICANS start in the first two weeks and mostly resolve by week 6
RESPONSE = {"CR": "#1d4ed8", "CRi": "#93c5fd", None: "#cbd2d9"}
RESPONSE_NAMES = {"CR": "best response CR", "CRi": "best response CRi", None: "no remission"}
ENDING = {  # how follow-up ended: marker, colour, legend
    "death": ("X", INK, "death"),
    "withdrawn": ("D", SEVERITY["warning"], "withdrawn"),
    "lost_to_follow_up": ("s", SEVERITY["warning"], "lost to follow-up"),
    "ongoing": (">", "#0f766e", "followed at the cut"),
}


def draw_swimmer(figure: Figure, lanes: Sequence[Lane], *, months: float | None = None) -> None:
    """Two panels sharing the lanes (top: longest follow-up); `months` fixes the right
    panel's span (the same on every page of a long trial)."""
    early, course = figure.subplots(
        1, 2, sharey=True, width_ratios=[1, 3.2], gridspec_kw={"wspace": 0.07}
    )
    rows = range(len(lanes))
    for ax in (early, course):
        ax.set_ylim(len(lanes) - 0.4, -0.6)
        ax.grid(axis="y", visible=False)
    early.set_yticks(rows, [lane.patient_id for lane in lanes], fontsize=5.5)
    early.tick_params(axis="y", length=0, pad=2)
    course.tick_params(axis="y", length=0)
    _episodes(early, lanes)
    _courses(course, lanes, months)
    _legend(figure)


def _episodes(ax: Axes, lanes: Sequence[Lane]) -> None:
    # One collection for every episode: a plot call per episode costs ~10 ms of drawing.
    segments, colours, widths = [], [], []
    for row, lane in enumerate(lanes):
        for episode in lane.episodes:
            y = row + (-0.17 if episode.term == "CRS" else 0.17)
            end = episode.end if episode.end is not None else EARLY_DAYS
            segments.append([(episode.onset, y), (end, y)])
            colours.append(to_rgba(SERIES[episode.term], 0.25 + 0.15 * episode.grade))
            widths.append(0.8 + 0.35 * episode.grade)
            if episode.grade >= 3:
                ax.text(end + 0.5, y, str(episode.grade), fontsize=4.5, va="center",
                        color=SERIES[episode.term])  # fmt: skip
    ax.add_collection(LineCollection(segments, colors=colours, linewidths=widths, capstyle="butt"))
    ax.set_xlim(0, EARLY_DAYS)
    ax.set_xticks(range(0, EARLY_DAYS, 14))  # no 42: it would meet the next panel's 0
    ax.set_xlabel("days since infusion", fontsize=8)
    ax.set_title("CRS and ICANS", fontsize=9)


def _courses(ax: Axes, lanes: Sequence[Lane], months: float | None) -> None:
    rows = range(len(lanes))
    ax.barh(rows, [lane.months for lane in lanes], height=0.62, lw=0,
            color=[RESPONSE[lane.best_response] for lane in lanes])  # fmt: skip

    def mark(points: list[tuple[float, int]], marker: str, colour: str, **style: object) -> None:
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker, color=colour, ls="none", **style)  # type: ignore[arg-type]

    remissions = [(lane.remission_at, row) for row, lane in zip(rows, lanes, strict=True)]
    mark([(x, y) for x, y in remissions if x is not None], "|", INK, ms=4, mew=0.9)
    relapses = [(lane.relapse_at, row) for row, lane in zip(rows, lanes, strict=True)]
    mark([(x, y) for x, y in relapses if x is not None], "o", SEVERITY["critical"], ms=3.4,
         mec="white", mew=0.4)  # fmt: skip
    for ending, (marker, colour, _) in ENDING.items():
        ends = [(lane.months, row) for row, lane in zip(rows, lanes, strict=True)]
        kept = [p for p, lane in zip(ends, lanes, strict=True) if lane.ending == ending]
        mark(kept, marker, colour, ms=3.2, mew=0)
    span = months if months is not None else max([lane.months for lane in lanes] or [1.0])
    ax.set_xlim(0, span * 1.03)
    ax.set_xticks(range(0, int(span) + 3, 3))
    ax.set_xlabel("months since infusion", fontsize=8)
    ax.set_title("Course", fontsize=9)
    for tick in range(3, int(span) + 1, 3):
        ax.axvline(tick, color=GRID, lw=0.6, zorder=0)


def _legend(figure: Figure) -> None:
    handles: list = [Patch(color=RESPONSE[r], label=RESPONSE_NAMES[r]) for r in RESPONSE]
    handles += [
        Line2D([], [], marker="|", color=INK, ls="none", ms=6, label="remission onset"),
        Line2D([], [], marker="o", color=SEVERITY["critical"], ls="none", ms=4, label="relapse"),
    ]
    handles += [
        Line2D([], [], marker=m, color=c, ls="none", ms=5, label=name)
        for m, c, name in ENDING.values()
    ]
    handles += [
        Line2D([], [], color=SERIES["CRS"], lw=2.5, label="CRS (darker: higher grade)"),
        Line2D([], [], color=SERIES["ICANS"], lw=2.5, label="ICANS (grade ≥ 3 labelled)"),
    ]
    figure.legend(handles=handles, loc="upper center", ncol=5, fontsize=6.5, frameon=False,
                  bbox_to_anchor=(0.5, 1.0), labelcolor=MUTED)  # fmt: skip
