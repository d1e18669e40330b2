"""The trial page: the cohort figures of the trial report with their intervals, the
Kaplan-Meier curves, CRS and ICANS by worst grade, the stopping boundary, the patients."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from aiohttp import web

from cartwatch.alerts.sinks.links import DESK_PATH, trial_path
from cartwatch.models.cohort import DAYS_PER_MONTH, add_outcomes, trial_report
from cartwatch.models.outcomes import DAY, PatientOutcome, derive_outcome, worst_grade
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.charts.safety import boundary_chart, grade_bars
from cartwatch.streams.charts.style import SERIES
from cartwatch.streams.charts.survival import km_chart
from cartwatch.streams.http.credentials import Identity
from cartwatch.streams.http.desk.context import desk_of
from cartwatch.streams.http.desk.guard import viewer
from cartwatch.streams.http.desk.inbox import alerts_of
from cartwatch.streams.http.desk.pages import render

trial_routes = web.RouteTableDef()


@trial_routes.get(f"{DESK_PATH}/trials/{{trial_id}}")
async def trial_page(request: web.Request) -> web.Response:
    identity = viewer(request)
    desk = desk_of(request)
    trial_id = request.match_info["trial_id"]
    if trial_id not in desk.view.trial_ids():
        raise web.HTTPNotFound(text="There is no trial with that id.")
    now = time.time()
    records = list(desk.view.records(trial_id))  # in the loop: the table is not thread-safe
    boundary = desk.view.toxicity_boundary(trial_id, now)
    opened, done = await alerts_of(desk, trial_id=trial_id)
    page = (trial_id, records, boundary, opened, done, identity, now)
    html = await desk.timed("trial", trial_html, *page)
    return web.Response(text=html, content_type="text/html")


def trial_html(
    trial_id: str,
    records: Sequence[PatientRecord],
    boundary: dict,
    opened: list[dict],
    done: list[dict],
    identity: Identity,
    now: float,
) -> str:
    """The page as of `now`; the figures are those of the JSON report (same functions)."""
    by_trial: dict[str, list[PatientOutcome]] = {}
    add_outcomes(by_trial, records, now)
    outcomes = by_trial.get(trial_id, [])
    report = trial_report(trial_id, outcomes)
    efficacy, safety = report["efficacy"], report["safety"]
    responders = [p for p in outcomes if p.remission_onset is not None]
    charts = {
        "dor": km_chart(
            [p.dor_days / DAYS_PER_MONTH for p in responders],
            [p.dor_event for p in responders],
            colour=SERIES["km"],
            ylabel="in remission",
            median=efficacy["median_dor_months"],
            label="Kaplan-Meier curve of the duration of remission",
        ),
        "follow_up": km_chart(
            [p.follow_up_days / DAYS_PER_MONTH for p in outcomes],
            [p.follow_up_event for p in outcomes],
            colour=SERIES["reverse_km"],
            ylabel="still followed",
            median=efficacy["median_follow_up_months"],
            label="Reverse Kaplan-Meier curve of follow-up",
        ),
        "grades": grade_bars(safety["crs"]["by_grade"], safety["icans"]["by_grade"]),
        "boundary": boundary_chart(boundary),
    }
    return render(
        "trial.html",
        identity=identity,
        report=report,
        boundary=boundary,
        charts=charts,
        patients=patient_rows(records, opened, now),
        trial_alerts=[a for a in opened if a["patient_id"] is None],
        trial_acknowledged=[a for a in done if a["patient_id"] is None],
        now=now,
        back=trial_path(trial_id),
    )


def patient_rows(records: Sequence[PatientRecord], opened: list[dict], now: float) -> list[dict]:
    """One line per patient: where they are in their course and their open alerts."""
    open_count = Counter(a["patient_id"] for a in opened)
    rows = []
    for record in sorted(records, key=lambda r: r.patient_id):
        outcome = derive_outcome(record, now)
        row = {"patient_id": record.patient_id, "trial_id": record.trial_id, "infused": False}
        row["open_alerts"] = open_count.get(record.patient_id, 0)
        if outcome is not None:
            row |= {
                "infused": True,
                "day": (now - outcome.t0) / DAY,
                "best_response": outcome.best_response,
                "mrd_negative": outcome.mrd_negative,
                "relapsed": outcome.relapse_at is not None,
                "died": outcome.death_at is not None,
                "crs": worst_grade(outcome.toxicities, "CRS"),
                "icans": worst_grade(outcome.toxicities, "ICANS"),
            }
        rows.append(row)
    return rows
