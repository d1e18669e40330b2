"""The DMC report's safety sections: CRS and ICANS, the stopping boundary, the listings of
grade >= 3 events and deaths, the alerts."""

from __future__ import annotations

from xml.sax.saxutils import escape

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, PageBreak, Paragraph, Spacer

from cartwatch.models.dmc import DmcFigures, ToxicityTimes
from cartwatch.streams.reports import formats as fmt
from cartwatch.streams.reports.pdf_figures import boundary_image, grade_bars_image
from cartwatch.streams.reports.pdf_style import BODY, CELL, H1, H2, SMALL, WIDTH, table

GRADES = ("1", "2", "3", "4", "5")
DLT_RULE = (
    "A dose-limiting toxicity (DLT) is a CRS or ICANS of grade {grade} or worse, or any "
    "toxicity of grade 5, with onset within {window:g} days of the first infusion."
)


def _count(entry: dict) -> str:
    return f"{entry['n']} ({fmt.percent(entry['rate'])})"


def _spread(values: list[float], median: float | None) -> str:
    if not values:
        return fmt.NONE
    return f"{fmt.days(median)} ({fmt.days(min(values))}–{fmt.days(max(values))})"


def safety(figures: DmcFigures) -> list[Flowable]:
    """CRS and ICANS by worst grade, onset and duration; deaths."""
    report = figures.report
    crs, icans = report["safety"]["crs"], report["safety"]["icans"]
    times: dict[str, ToxicityTimes] = figures.toxicity

    def row(label: str, show) -> list[str]:
        return [label, show(crs, times["CRS"]), show(icans, times["ICANS"])]

    rows = [
        ["Patients (worst grade)", "CRS", "ICANS"],
        row("Any grade", lambda s, t: _count(s["any"])),
        row("Grade ≥ 3", lambda s, t: _count(s["grade3plus"])),
        *[row(f"Grade {g}", lambda s, t, g=g: str(s["by_grade"][g])) for g in GRADES],
        row("Onset day, median (range)", lambda s, t: _spread(t.onset_days, s["median_onset_day"])),
        row("Duration in days, median (range)",
            lambda s, t: _spread(t.durations, s["median_duration_days"])),
        row("Events resolved by the cut", lambda s, t: str(len(t.durations))),
    ]  # fmt: skip
    n, dead = report["n_infused"], report["safety"]["deaths"]["n"]
    return [
        Paragraph("3 Safety: CRS and ICANS", H1),
        table(rows, [70 * mm, 45 * mm, 45 * mm]),
        Paragraph(
            "Grades: ASTCT 2019 consensus. Onset: per patient, the earliest counted event's "
            "onset minus the first infusion. Duration: per event resolved by the cut.",
            SMALL,
        ),
        Spacer(1, 4 * mm),
        Paragraph(f"Deaths: {dead} of {n} infused ({fmt.percent(dead / n if n else None)}).", BODY),
        Spacer(1, 4 * mm),
        grade_bars_image(crs["by_grade"], icans["by_grade"], WIDTH * 0.8),
        PageBreak(),
    ]


def boundary(figures: DmcFigures) -> list[Flowable]:
    """The toxicity stopping boundary as a chart, and where the trial stands."""
    status, report = figures.boundary["status"], figures.boundary
    stop = status["stop_at_dlt"]
    crossed = status["crossed_at"]
    where = (
        f"crossed at {crossed['n_dlt']} DLT in {crossed['n_evaluable']} evaluable patients"
        if crossed
        else "not crossed"
    )
    stands = (
        f"As of the cut: {status['n_dlt']} patients with a DLT among {status['n_evaluable']} "
        f"evaluable; the boundary at {status['n_evaluable']} evaluable stops at "
        f"{stop if stop is not None else 'no count'}; {where}."
    )
    return [
        Paragraph("4 Toxicity stopping boundary", H1),
        Paragraph(stands, BODY),
        Spacer(1, 2 * mm),
        boundary_image(report, WIDTH * 0.85),
        Paragraph(
            DLT_RULE.format(grade=report["dlt_min_grade"], window=report["dlt_window_days"]), SMALL
        ),
        Paragraph(
            f"Boundary: {escape(report['method'])}, acceptable DLT rate p0 {report['p0']:g}, "
            f"up to {report['max_patients']} patients (docs/ALERT_RULES.md).",
            SMALL,
        ),
        PageBreak(),
    ]


def listings(figures: DmcFigures) -> list[Flowable]:
    """Every grade >= 3 adverse event and every death."""
    severe = [["Patient", "Term", "Grade", "Onset date", "Onset day", "Resolved day", "Duration"]]
    for e in figures.severe:
        lasted = None if e.resolved_day is None else e.resolved_day - e.onset_day
        severe.append([
            Paragraph(escape(e.patient_id), CELL), Paragraph(escape(e.term), CELL), str(e.grade),
            fmt.date(e.onset_at), fmt.days(e.onset_day),
            fmt.days(e.resolved_day) if e.resolved_day is not None else "ongoing",
            fmt.days(lasted),
        ])  # fmt: skip
    deaths = [["Patient", "Date", "Day", "Best response", "Relapsed before"]]
    for d in figures.deaths:
        deaths.append([
            Paragraph(escape(d.patient_id), CELL), fmt.date(d.died_at), fmt.days(d.day),
            d.best_response or "no remission", "yes" if d.relapsed else "no",
        ])  # fmt: skip
    none = Paragraph("None by the cut.", BODY)
    return [
        Paragraph("5 Listings", H1),
        Paragraph(f"Adverse events of grade 3 or worse ({len(figures.severe)})", H2),
        table(severe, [28 * mm, 42 * mm, 14 * mm, 24 * mm, 20 * mm, 25 * mm, 21 * mm],
              numeric_from=2) if figures.severe else none,
        Paragraph(
            "Every counted event (onset at or after the first infusion, not entered in error), "
            "any term, at its worst grade; days since the first infusion.",
            SMALL,
        ),
        Paragraph(f"Deaths ({len(figures.deaths)})", H2),
        table(deaths, [34 * mm, 28 * mm, 20 * mm, 36 * mm, 30 * mm], numeric_from=1, text_from=3)
        if figures.deaths
        else none,
        PageBreak(),
    ]  # fmt: skip


def _wait(minutes: float | None) -> str:
    if minutes is None:
        return fmt.NONE
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def alerts(figures: DmcFigures, from_database: bool) -> list[Flowable]:
    """Alerts raised by the cut, by rule and severity, with the waits for acknowledgement."""
    rows = [["Rule", "Severity", "Raised", "Acknowledged", "Median wait", "Longest wait"]]
    for line in figures.alerts:
        rows.append([
            line.rule, line.severity, str(line.raised), str(line.acknowledged),
            _wait(line.median_wait_min), _wait(line.longest_wait_min),
        ])  # fmt: skip
    source = (
        "From the database: the alerts triggered by the cut, with their acknowledgements as "
        "stored when this report was generated. Wait: from detection to acknowledgement."
        if from_database
        else "Raised by the worker's core (a replayed events file, or a worker without a "
        "database): no acknowledgements are known for them."
    )
    shown: Flowable = table(
        rows, [44 * mm, 24 * mm, 20 * mm, 28 * mm, 26 * mm, 26 * mm], numeric_from=2
    )
    return [
        Paragraph(f"6 Alerts ({figures.n_alerts})", H1),
        shown if figures.alerts else Paragraph("No alert by the cut.", BODY),
        Paragraph(source, SMALL),
    ]
