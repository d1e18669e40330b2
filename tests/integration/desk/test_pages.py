"""The safety desk's pages through the real API application against PostgreSQL (SQLite for
hostile ids), over the records of a replayed 94-patient simulated trial: what they show,
and that it equals the JSON API's figures."""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cartwatch.alerts.pipeline import record_key
from cartwatch.alerts.sinks.links import desk_url, patient_path, trial_path
from cartwatch.streams.http.desk.pages import number, percent
from cartwatch.streams.storage.audit import ALERT_ACKNOWLEDGED, list_audit
from cartwatch.streams.storage.operations import list_alerts
from tests.integration.desk.support import (
    TRIAL,
    ReplayView,
    add_people,
    desk_app,
    newest_critical,
    origin,
    rows_of,
    sections,
    sign_in,
    simulated,
    store_alerts,
    with_client,
)
from tests.integration.test_storage_support import database

pytestmark = pytest.mark.integration


def test_the_inbox_lists_open_alerts_newest_first_with_their_columns(engine):
    async def scenario(client: TestClient) -> str:
        await sign_in(client)
        return await (await client.get("/desk")).text()

    page = with_client(engine, scenario)
    open_part, acknowledged = sections(page)
    rows = rows_of(open_part)
    raised = simulated().alerts
    assert [html.unescape(r.alert_id) for r in rows] == [a.alert_id for a in reversed(raised)]
    assert rows_of(acknowledged) == []
    newest, row = raised[-1], rows[0].html
    assert f'<span class="badge {newest.severity}">{newest.severity}</span>' in row
    assert f'href="{patient_path(TRIAL, newest.patient_id)}"' in row
    assert f'<span class="level">{newest.level}</span>' in row
    assert f"value {number(newest.value, 2)}" in row
    assert f"threshold {number(newest.threshold, 2)}" in row
    assert newest.triggered_at[:10] in row and " d</td>" in row  # date (UTC) and age
    assert 'name="note"' in row and ">Acknowledge</button>" in row


def test_acknowledging_with_the_form_records_the_signed_in_person_and_moves_the_alert(engine):
    alert_id, patient = newest_critical()
    back = patient_path(TRIAL, patient)

    async def scenario(client: TestClient):
        await sign_in(client)
        posted = await client.post(
            f"/desk/alerts/{quote(alert_id, safe='')}/ack",
            data={"note": "Seen <b>now</b>; tocilizumab given", "back": back},
            headers=origin(client),
            allow_redirects=False,
        )
        inbox = await (await client.get("/desk")).text()
        return posted.status, posted.headers["Location"], inbox

    status, location, inbox = with_client(engine, scenario)
    assert (status, location) == (303, back)  # post, redirect, get: back where the form was
    (stored,) = [a for a in list_alerts(engine, limit=1000) if a["alert_id"] == alert_id]
    assert stored["acknowledged_by"] == "dr.lee"
    assert stored["ack_note"] == "Seen <b>now</b>; tocilizumab given"
    (entry,) = list_audit(engine, action=ALERT_ACKNOWLEDGED, subject=f"alert:{alert_id}")
    assert entry["actor"] == "dr.lee"
    open_part, acknowledged = sections(inbox)
    assert alert_id not in {html.unescape(r.alert_id) for r in rows_of(open_part)}
    (row,) = [r.html for r in rows_of(acknowledged) if html.unescape(r.alert_id) == alert_id]
    assert "dr.lee" in row and "Seen &lt;b&gt;now&lt;/b&gt;; tocilizumab given" in row


def test_the_patient_page_shows_the_figures_of_the_json_patient_state(engine):
    alert_id, patient = newest_critical()

    async def scenario(client: TestClient):
        await sign_in(client)
        page = await (await client.get(patient_path(TRIAL, patient))).text()
        state = await (await client.get(f"/trials/{TRIAL}/patients/{patient}")).json()
        return page, state

    page, state = with_client(engine, scenario)
    assert f"<dt>Best response</dt><dd>{state['best_response'] or '—'}</dd>" in page
    assert f"<dt>Follow-up</dt><dd>{number(state['follow_up_days'])} days</dd>" in page
    assert f"<dt>CRS worst grade</dt><dd>{state['crs_worst_grade']}</dd>" in page
    assert f"<dt>ICANS worst grade</dt><dd>{state['icans_worst_grade']}</dd>" in page
    assert f"<dt>Events accepted</dt><dd>{state['events_accepted']}</dd>" in page
    assert "<svg" in page and 'aria-label="Patient course' in page
    assert html.escape(alert_id, quote=True) in page  # its alerts, with acknowledge forms
    assert "Course events" in page


def test_the_trial_page_shows_the_figures_of_the_json_report(engine):
    async def scenario(client: TestClient):
        await sign_in(client)
        page = await (await client.get(trial_path(TRIAL))).text()
        report = await (await client.get(f"/trials/{TRIAL}/report")).json()
        return page, report

    page, report = with_client(engine, scenario)
    eff, crs = report["efficacy"], report["safety"]["crs"]
    low, high = eff["remission"]["ci95"]
    assert report["n_infused"] == 94
    assert f'<div class="value">{percent(eff["remission"]["rate"])}</div>' in page
    assert f"95% CI {percent(low)}–{percent(high)}" in page
    for figure in ("cr", "cri", "mrd_negative", "in_remission", "relapsed"):
        assert f'<div class="value">{eff[figure]["n"]}</div>' in page, figure
    assert f"{number(eff['median_dor_months'])} mo" in page
    assert f"{number(eff['median_follow_up_months'])} mo" in page
    assert f"{crs['grade3plus']['n']} <span" in page
    assert page.count("<svg") == 4  # two Kaplan-Meier curves, the grades, the boundary
    assert page.count(">at risk<") == 2


def test_hostile_ids_are_escaped_in_every_page(tmp_path: Path):
    hostile_trial, hostile_patient = '<script>alert("t")</script>', '"><img src=x onerror=alert(1)>'
    result = simulated()
    # The same facts under hostile ids: one patient's record and its alerts.
    record = next(r for r in result.records.values() if r.alerted)
    copy = type(record).from_dict(record.to_dict() | {"t": hostile_trial, "p": hostile_patient})
    raised = [
        a.model_copy(
            update={
                "trial_id": hostile_trial,
                "patient_id": hostile_patient,
                "alert_id": f"{hostile_trial}:{hostile_patient}:{a.rule}:{a.level}",
            }
        )
        for a in result.alerts
        if a.patient_id == record.patient_id
    ]
    with database("sqlite", tmp_path) as engine:
        add_people(engine)
        store_alerts(engine, raised)

        async def scenario(client: TestClient) -> list[str]:
            await sign_in(client)
            paths = [
                "/desk",
                trial_path(hostile_trial),
                patient_path(hostile_trial, hostile_patient),
            ]
            answers = [await client.get(p) for p in paths]
            assert [a.status for a in answers] == [200, 200, 200]
            return [await a.text() for a in answers]

        async def run() -> list[str]:
            view = ReplayView({record_key(hostile_trial, hostile_patient): copy})
            async with TestClient(TestServer(desk_app(view, engine))) as client:
                return await scenario(client)

        pages = asyncio.run(run())
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page or "&#34;&gt;&lt;img" in page


def test_errors_on_desk_paths_are_html_pages_and_the_api_keeps_json(engine):
    async def scenario(client: TestClient):
        await sign_in(client)
        paths = ["/desk/nowhere", trial_path("NOPE"), patient_path(TRIAL, "NOPE"), "/nowhere"]
        return [((r := await client.get(p)).status, r.content_type) for p in paths]

    assert with_client(engine, scenario) == [
        (404, "text/html"),
        (404, "text/html"),
        (404, "text/html"),
        (404, "application/json"),
    ]


def test_the_live_fragment_changes_when_an_alert_arrives(engine):
    newest = simulated().alerts[-1]

    async def scenario(client: TestClient):
        await sign_in(client)
        first = await client.get("/desk/inbox")
        again = await client.get("/desk/inbox")
        arrived = newest.model_copy(update={"alert_id": "late:arrival:crs_grade:3"})
        await asyncio.to_thread(store_alerts, engine, [arrived], datetime.now(UTC))
        later = await client.get("/desk/inbox")
        versions = [r.headers["X-Inbox-Version"] for r in (first, again, later)]
        return versions, await later.text()

    versions, fragment = with_client(engine, scenario)
    assert versions[0] == versions[1] != versions[2]
    assert rows_of(sections(fragment)[0])[0].alert_id == "late:arrival:crs_grade:3"
    assert "<html" not in fragment  # the tables alone


def test_each_alerts_desk_url_opens_its_page(engine):
    base = "https://cartwatch.example.org"
    patient_alert = simulated().alerts[-1].model_dump()
    trial_alert = patient_alert | {"patient_id": None}

    async def scenario(client: TestClient) -> list[int]:
        await sign_in(client)
        links = [desk_url(base, a).removeprefix(base) for a in (patient_alert, trial_alert)]
        return [(await client.get(link)).status for link in links]

    assert with_client(engine, scenario) == [200, 200]


def test_pages_are_measured_in_the_desk_histogram(engine):
    async def scenario(client: TestClient) -> str:
        await sign_in(client)
        await client.get(trial_path(TRIAL))
        metrics = await client.get("/metrics")
        return await metrics.text()

    exposition = with_client(engine, scenario)
    assert 'cartwatch_desk_page_seconds_count{page="trial"} 1.0' in exposition
    patients = {r.patient_id for r in simulated().records.values()}
    assert not any(p in exposition for p in patients)  # pages are labelled by kind only
