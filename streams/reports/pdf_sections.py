"""The DMC report's first sections: the cover, efficacy, every patient's course."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, Paragraph, Spacer, Table

from cartwatch.models.dmc import DmcFigures
from cartwatch.streams.charts.style import SERIES
from cartwatch.streams.reports import formats as fmt
from cartwatch.streams.reports.pdf_figures import LANES_PER_PAGE, km_image, swimmer_image
from cartwatch.streams.reports.pdf_style import (
    BODY,
    CELL,
    H1,
    HEIGHT,
    MONO,
    SMALL,
    SUBTITLE,
    TITLE,
    WIDTH,
    table,
)

CONTENTS = (
    "1 Efficacy",
    "2 Every infused patient (swimmer plot)",
    "3 Safety: CRS and ICANS",
    "4 Toxicity stopping boundary",
    "5 Listings: adverse events of grade 3 or worse, deaths",
    "6 Alerts",
)
METHODS = (
    "Every figure follows the cartwatch contract (version 2, sections 2 and 3) over the "
    "events that occurred at or before the data cut, and equals the JSON trial report of the "
    "same cut (<i>GET /trials/{id}/report?as_of=</i>, <i>cartwatch replay</i>). Rates are over "
    "infused patients. The remission interval is exact (Clopper-Pearson). Medians are "
    "Kaplan-Meier, follow-up by reverse Kaplan-Meier (death censors); their 95% intervals are "
    "Brookmeyer-Crowley with log-log limits and Greenwood's variance (NR: not reached). "
    "The fingerprint is a SHA-256 over the data as of the cut: the same data, the same "
    "fingerprint, whichever source it was read from."
)


@dataclass(frozen=True, slots=True)
class ReportMeta:
    """What the cover tells besides the figures."""

    as_of_text: str  # the data cut as the caller wrote it
    generated_at: datetime
    version: str
    source: str


def cover(figures: DmcFigures, meta: ReportMeta) -> list[Flowable]:
    """Title, the data cut, the version and the data's fingerprint, contents, methods."""
    print_ = figures.fingerprint
    rows = [
        ["Trial", Paragraph(escape(figures.trial_id), CELL)],
        ["Data cut (as of)", f"{meta.as_of_text} ({fmt.instant(figures.as_of)})"],
        ["Generated", meta.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")],
        ["cartwatch version", meta.version],
        ["Source", Paragraph(escape(meta.source), CELL)],
        ["Patients with data at the cut", str(figures.n_patients)],
        ["Infused", str(figures.report["n_infused"])],
        [
            "Data fingerprint (SHA-256)",
            Paragraph(f'<font name="{MONO}" size="7.6">{print_}</font>', CELL),
        ],
    ]
    facts = table(rows, [55 * mm, WIDTH - 55 * mm], header=False, numeric_from=2)
    return [
        Spacer(1, 30 * mm),
        Paragraph("Data Monitoring Committee report", TITLE),
        Paragraph(f"CAR T-cell therapy trial {escape(figures.trial_id)}", SUBTITLE),
        Spacer(1, 12 * mm),
        facts,
        Spacer(1, 10 * mm),
        Paragraph("Contents", BODY),
        *[Paragraph(line, SMALL) for line in CONTENTS],
        Spacer(1, 8 * mm),
        Paragraph(METHODS, SMALL),
        Spacer(1, 4 * mm),
        Paragraph("Confidential: for the data monitoring committee.", SMALL),
        PageBreak(),
    ]


def efficacy(figures: DmcFigures) -> list[Flowable]:
    """The efficacy figures, the two medians with intervals, the two Kaplan-Meier curves."""
    report, n = figures.report, figures.report["n_infused"]
    eff = report["efficacy"]
    remission, in_remission = eff["remission"], eff["in_remission"]
    rows = [
        ["Measure", "n", "%", "95% CI"],
        ["Infused", str(n), "", ""],
        ["Remission (CR or CRi)", str(remission["n"]), fmt.percent(remission["rate"]),
         fmt.proportion_ci(remission["ci95"])],
        ["Complete remission (CR)", str(eff["cr"]["n"]), fmt.percent(eff["cr"]["rate"]), ""],
        ["CR with incomplete count recovery (CRi)", str(eff["cri"]["n"]),
         fmt.percent(eff["cri"]["rate"]), ""],
        ["MRD-negative remission", str(eff["mrd_negative"]["n"]),
         fmt.percent(eff["mrd_negative"]["n"] / n if n else None), ""],
        ["In remission at the cut (of remissions)", str(in_remission["n"]),
         fmt.percent(in_remission["fraction_of_remission"]), ""],
        ["Relapsed", str(eff["relapsed"]["n"]),
         fmt.percent(eff["relapsed"]["n"] / n if n else None), ""],
    ]  # fmt: skip
    dor_events = sum(figures.dor.events)
    medians = [
        ["Median", "months", "95% CI", "estimate"],
        ["Duration of remission", fmt.months(eff["median_dor_months"]),
         fmt.months_ci(figures.dor_ci),
         f"Kaplan-Meier: {len(figures.dor.events)} remissions, {dor_events} ended"],
        ["Follow-up", fmt.months(eff["median_follow_up_months"]),
         fmt.months_ci(figures.follow_up_ci), f"reverse Kaplan-Meier: {n} infused"],
    ]  # fmt: skip
    half = WIDTH / 2 - 2 * mm
    curves = Table(
        [[
            km_image(figures.dor, colour=SERIES["km"], ylabel="in remission",
                     median=eff["median_dor_months"], title="Duration of remission", width=half),
            km_image(figures.follow_up, colour=SERIES["reverse_km"], ylabel="still followed",
                     median=eff["median_follow_up_months"], title="Follow-up", width=half),
        ]],
        colWidths=[WIDTH / 2, WIDTH / 2],
    )  # fmt: skip
    return [
        Paragraph("1 Efficacy", H1),
        table(rows, [82 * mm, 22 * mm, 24 * mm, WIDTH - 128 * mm]),
        Spacer(1, 5 * mm),
        table(medians, [50 * mm, 22 * mm, 30 * mm, WIDTH - 102 * mm], numeric_from=1, text_from=3),
        Spacer(1, 5 * mm),
        curves,
        Paragraph(
            "Censored times are ticks on the curves; the numbers under each axis are the "
            "patients still at risk at that month.",
            SMALL,
        ),
        PageBreak(),
    ]


def swimmers(figures: DmcFigures) -> list[Flowable]:
    """Every infused patient's lane, up to LANES_PER_PAGE a page, longest follow-up first."""
    lanes = figures.lanes
    out: list[Flowable] = [Paragraph("2 Every infused patient", H1)]
    if not lanes:
        return [*out, Paragraph("Nobody infused by the cut.", BODY), PageBreak()]
    span = max(lane.months for lane in lanes)
    pages = [lanes[i : i + LANES_PER_PAGE] for i in range(0, len(lanes), LANES_PER_PAGE)]
    for number, page in enumerate(pages):
        if number:
            out.append(Paragraph(f"2 Every infused patient (continued, {number + 1})", H1))
        share = max(len(page) / LANES_PER_PAGE, 0.35)
        out += [swimmer_image(page, span, WIDTH, (HEIGHT - 14 * mm) * share), PageBreak()]
    return out
