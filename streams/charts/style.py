"""The charts' look and their export to inline SVG (the desk) and PNG (the DMC report).

Text stays text in the SVG (`svg.fonttype: none`): the page's own font draws it, it is
selectable and the SVG stays small. DejaVu Sans is matplotlib's bundled font, so sizes
measured while laying out match what Debian's browsers draw with.
"""

from __future__ import annotations

import functools
import io
import re
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

matplotlib.use("Agg")  # no display on a server; the desk never uses pyplot's global figures

INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
SEVERITY = {"critical": "#b42318", "warning": "#b54708", "info": "#1f6feb"}
SERIES = {
    "temperature": "#c2410c",
    "bp": "#1d4ed8",
    "oxygen": "#0f766e",
    "ice": "#7c3aed",
    "IL6": "#b91c1c",
    "CRP": "#a16207",
    "FERRITIN": "#0e7490",
    "IFNG": "#6d28d9",
    "CRS": "#c2410c",
    "ICANS": "#7c3aed",
    "km": "#1d4ed8",
    "reverse_km": "#0f766e",
}
STYLE = {
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 10,
    "axes.edgecolor": "#9aa5b1",
    "axes.labelcolor": INK,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlecolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "svg.fonttype": "none",
    "svg.hashsalt": "cartwatch-desk",  # the same data draws the same SVG
}
matplotlib.rcParams.update(STYLE)

_SIZE = re.compile(r'<svg([^>]*?) width="[^"]*" height="[^"]*"')


P = ParamSpec("P")
R = TypeVar("R")
# matplotlib promises no thread safety, even without pyplot (font and text-layout caches are
# shared), and pages are drawn in threads: one chart at a time. The GIL would let little
# run in parallel anyway.
_DRAWING = threading.Lock()


def one_at_a_time(chart: Callable[P, R]) -> Callable[P, R]:
    """Draw `chart` while holding the process's drawing lock."""

    @functools.wraps(chart)
    def draw(*args: P.args, **kwargs: P.kwargs) -> R:
        with _DRAWING:
            return chart(*args, **kwargs)

    return draw


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure not registered with pyplot: threads can each draw their own."""
    figure = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasSVG(figure)
    return figure


def to_svg(figure: Figure, label: str) -> str:
    """The figure as an inline `<svg>` element that scales to its container."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches=None)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # no XML declaration or DOCTYPE inside HTML
    # The viewBox keeps the proportions; CSS sets the width.
    svg = _SIZE.sub(rf'<svg\1 role="img" aria-label="{_attr(label)}" class="chart"', svg, 1)
    return svg


def to_png(figure: Figure, dpi: int = 200) -> bytes:
    """The figure as PNG bytes; the same figure gives the same bytes (no date in them)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white", metadata={"Software": None})
    return buffer.getvalue()


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
