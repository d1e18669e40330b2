"""The look of the DMC report: A4, DejaVu Sans (matplotlib's bundled font, so the PDF and
its charts share one face, and µ, ≥ and – print), paragraph and table styles."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Table, TableStyle

from cartwatch.streams.charts.style import GRID, INK, MUTED

PAGE = A4
MARGIN = 18 * mm
WIDTH = PAGE[0] - 2 * MARGIN  # the frame's width
HEIGHT = PAGE[1] - 2 * MARGIN - 8 * mm  # less the footer
FONT, BOLD, MONO = "DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono"
HEADER_FILL = colors.HexColor("#eef2f6")


@cache
def register_fonts() -> None:
    """Register matplotlib's DejaVu fonts with reportlab (once per process)."""
    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name in (FONT, BOLD, MONO):
        pdfmetrics.registerFont(TTFont(name, str(ttf / f"{name}.ttf")))


def _style(name: str, **kw: object) -> ParagraphStyle:
    base = {"fontName": FONT, "fontSize": 9.5, "leading": 13, "textColor": colors.HexColor(INK)}
    return ParagraphStyle(name, **(base | kw))  # type: ignore[arg-type]


BODY = _style("body")
SMALL = _style("small", fontSize=8, leading=10.5, textColor=colors.HexColor(MUTED))
TITLE = _style("title", fontName=BOLD, fontSize=22, leading=28, spaceAfter=4)
SUBTITLE = _style("subtitle", fontSize=13, leading=18, textColor=colors.HexColor(MUTED))
H1 = _style("h1", fontName=BOLD, fontSize=15, leading=20, spaceBefore=2, spaceAfter=8)
H2 = _style("h2", fontName=BOLD, fontSize=11, leading=15, spaceBefore=10, spaceAfter=4)
CELL = _style("cell", fontSize=8.5, leading=10.5)
CELL_RIGHT = _style("cell_right", fontSize=8.5, leading=10.5, alignment=TA_RIGHT)


def table(
    rows: list[list],
    widths: list[float],
    *,
    header: bool = True,
    numeric_from: int = 1,
    text_from: int | None = None,
) -> Table:
    """A ruled table: a shaded header row repeated on every page, numbers right-aligned
    from column `numeric_from` (up to `text_from`, left-aligned words from there)."""
    out = Table(rows, colWidths=widths, repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[tuple] = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("TEXTCOLOR", (0, 0), (-1, -1), colors.HexColor(INK)),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, colors.HexColor(GRID)),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if text_from is not None:
        commands.append(("ALIGN", (text_from, 0), (-1, -1), "LEFT"))
    if header:
        commands += [
            ("FONTNAME", (0, 0), (-1, 0), BOLD),
            ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.HexColor(MUTED)),
        ]
    out.setStyle(TableStyle(commands))
    return out
