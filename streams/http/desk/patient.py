"""The patient page: alerts to acknowledge, the derived figures, the course chart and table."""

from __future__ import annotations

import time
from datetime import datetime

from aiohttp import web

from cartwatch.alerts.sinks.links import DESK_PATH, patient_path
from cartwatch.models.course import patient_course
from cartwatch.models.outcomes import DAY
from cartwatch.models.patient import PatientRecord
from cartwatch.models.summary import patient_summary
from cartwatch.streams.charts.course import course_chart
from cartwatch.streams.charts.panels import AlertMark
from cartwatch.streams.http.desk.context import desk_of
from cartwatch.streams.http.desk.guard import viewer
from cartwatch.streams.http.desk.inbox import alerts_of
from cartwatch.streams.http.desk.pages import render
from cartwatch.streams.http.desk.timeline import course_rows
from cartwatch.streams.http.identity import Identity

patient_routes = web.RouteTableDef()


@patient_routes.get(f"{DESK_PATH}/trials/{{trial_id}}/patients/{{patient_id}}")
async def patient_page(request: web.Request) -> web.Response:
    identity = viewer(request)
    desk = desk_of(request)
    trial_id, patient_id = request.match_info["trial_id"], request.match_info["patient_id"]
    record = desk.view.record(trial_id, patient_id)
    if record is None:
        raise web.HTTPNotFound(text="This trial has no patient with that id.")
    opened, done = await alerts_of(desk, trial_id=trial_id, patient_id=patient_id)
    html = await desk.timed("patient", patient_html, record, opened, done, identity, time.time())
    return web.Response(text=html, content_type="text/html")


def alert_marks(alerts: list[dict], t0: float) -> list[AlertMark]:
    """The alerts placed on the course: days since t0 of their triggering event."""
    return [
        AlertMark(
            (datetime.fromisoformat(a["triggered_at"]).timestamp() - t0) / DAY,
            a["severity"],
            a["rule"],
            a["level"],
        )
        for a in alerts
    ]


def patient_html(
    record: PatientRecord, opened: list[dict], done: list[dict], identity: Identity, now: float
) -> str:
    """The page: figures and course as of `now` (not infused yet: the figures alone)."""
    summary = patient_summary(record, now)
    course = patient_course(record, now)
    marks = alert_marks(opened + done, course.t0) if course is not None else []
    return render(
        "patient.html",
        identity=identity,
        summary=summary,
        course=course,
        chart=course_chart(course, marks) if course is not None else None,
        rows=course_rows(course, marks) if course is not None else [],
        open_alerts=opened,
        acknowledged_alerts=done,
        now=now,
        back=patient_path(record.trial_id, record.patient_id),
    )
