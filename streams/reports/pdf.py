"""The DMC report as a PDF: cover, efficacy, swimmer plot, safety, stopping boundary,
listings, alerts; a footer with the trial, the data cut and "page n of N" on every page.

`invariant` PDF output: the same figures, metadata and generation time give the same bytes.
"""

from __future__ import annotations

import io
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from reportlab.lib import colors
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import SimpleDocTemplate

from cartwatch.models.dmc import DmcFigures, dmc_figures
from cartwatch.models.stopping import StoppingConfig
from cartwatch.streams.charts.style import MUTED
from cartwatch.streams.reports import pdf_safety, pdf_sections
from cartwatch.streams.reports.pdf_sections import ReportMeta
from cartwatch.streams.reports.pdf_style import FONT, MARGIN, PAGE, register_fonts
from cartwatch.streams.reports.sources import TrialData, UnknownTrial


def cartwatch_version() -> str:
    """The installed cartwatch's version."""
    try:
        return version("cartwatch")
    except PackageNotFoundError:  # run from a tree that was never installed
        return "unknown"


def trial_report_pdf(
    data: TrialData,
    as_of: datetime,
    as_of_text: str,
    stopping: StoppingConfig,
    generated_at: datetime,
) -> bytes:
    """The report of `data` cut at `as_of`; UnknownTrial when nothing of it is that old."""
    figures = dmc_figures(data.trial_id, data.records, as_of.timestamp(), stopping, data.alerts)
    if figures is None:
        raise UnknownTrial(f"no data of trial {data.trial_id!r} at or before {as_of_text}")
    meta = ReportMeta(as_of_text, generated_at, cartwatch_version(), data.source)
    return render_pdf(figures, meta, from_database=data.acknowledgements)


def render_pdf(figures: DmcFigures, meta: ReportMeta, *, from_database: bool) -> bytes:
    """The PDF's bytes."""
    register_fonts()
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 6,
        title=f"DMC report: {figures.trial_id}, data cut {meta.as_of_text}",
        author=f"cartwatch {meta.version}",
        subject=f"data fingerprint {figures.fingerprint}",
        creator="cartwatch report",
        invariant=1,
    )
    story = [
        *pdf_sections.cover(figures, meta),
        *pdf_sections.efficacy(figures),
        *pdf_sections.swimmers(figures),
        *pdf_safety.safety(figures),
        *pdf_safety.boundary(figures),
        *pdf_safety.listings(figures),
        *pdf_safety.alerts(figures, from_database),
    ]
    footer = f"cartwatch DMC report · {figures.trial_id} · data cut {meta.as_of_text}"
    document.build(story, canvasmaker=_numbered(footer, figures.fingerprint[:12]))
    return buffer.getvalue()


def _numbered(footer: str, short_print: str) -> type[Canvas]:
    """A canvas class that writes every page's footer once the page count is known."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            self.setFont(FONT, 7.5)
            self.setFillColor(colors.HexColor(MUTED))
            self.drawString(MARGIN, MARGIN - 4, f"{footer} · data {short_print}")
            self.drawRightString(
                PAGE[0] - MARGIN, MARGIN - 4, f"page {self._pageNumber} of {total}"
            )

    return NumberedCanvas
