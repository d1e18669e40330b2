"""The DMC report's charts: the shared drawings of streams/charts, as PNG images sized for
the page (200 dpi: sharp on paper, a few hundred KB for the whole report)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from reportlab.platypus import Image

from cartwatch.models.dmc import Curve
from cartwatch.models.swimmer import Lane
from cartwatch.streams.charts.safety import draw_boundary, draw_grade_bars
from cartwatch.streams.charts.style import new_figure, one_at_a_time, to_png
from cartwatch.streams.charts.survival import draw_km
from cartwatch.streams.charts.swimmer import draw_swimmer

LANES_PER_PAGE = 100  # 2.2 mm a lane on A4: patient ids still readable


def _image(figure, width: float) -> Image:
    w_in, h_in = figure.get_size_inches()
    return Image(io.BytesIO(to_png(figure)), width=width, height=width * h_in / w_in)


@one_at_a_time
def km_image(
    curve: Curve, *, colour: str, ylabel: str, median: float | None, title: str, width: float
) -> Image:
    """A Kaplan-Meier curve with its numbers at risk, half a page wide."""
    figure = new_figure(4.4, 3.5)
    ax = figure.add_axes((0.15, 0.32, 0.8, 0.6))
    draw_km(ax, curve.months, curve.events, colour=colour, ylabel=ylabel, median=median)
    ax.set_title(title)
    return _image(figure, width)


@one_at_a_time
def swimmer_image(lanes: Sequence[Lane], months: float, width: float, height: float) -> Image:
    """One page of the swimmer plot: up to LANES_PER_PAGE lanes."""
    figure = new_figure(7.0, 7.0 * height / width)
    draw_swimmer(figure, lanes, months=months)
    figure.subplots_adjust(left=0.1, right=0.985, top=0.925, bottom=0.05)
    return _image(figure, width)


@one_at_a_time
def grade_bars_image(crs: dict[str, int], icans: dict[str, int], width: float) -> Image:
    """Patients by worst CRS and ICANS grade."""
    figure = new_figure(5.6, 2.9)
    draw_grade_bars(figure.add_axes((0.1, 0.16, 0.87, 0.78)), crs, icans)
    return _image(figure, width)


@one_at_a_time
def boundary_image(boundary: dict, width: float) -> Image:
    """The toxicity stopping boundary and where the trial stands."""
    figure = new_figure(5.6, 3.3)
    draw_boundary(figure.add_axes((0.1, 0.15, 0.87, 0.78)), boundary)
    return _image(figure, width)
