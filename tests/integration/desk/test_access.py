"""Who gets into the safety desk and what they may do: sign-in and the session cookie,
roles, forms from other origins, links opened from other sites."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from cartwatch.alerts.sinks.links import patient_path, trial_path
from cartwatch.streams.storage.operations import list_alerts
from tests.integration.desk.support import (
    TRIAL,
    add_people,
    kim_token,
    lee_token,
    newest_critical,
    origin,
    sign_in,
    simulated,
    store_alerts,
    with_client,
)
from tests.integration.test_storage_support import database

pytestmark = pytest.mark.integration


def test_without_a_session_desk_pages_redirect_to_sign_in_and_show_no_patient_id(engine):
    _, patient = newest_critical()
    pages = ["/desk", patient_path(TRIAL, patient), trial_path(TRIAL)]

    async def scenario(client: TestClient):
        answers = [await client.get(p, allow_redirects=False) for p in pages]
        fragment = await client.get("/desk/inbox", allow_redirects=False)
        form = await client.get("/desk/sign-in")
        return answers, fragment.status, await fragment.text(), await form.text()

    answers, fragment_status, fragment, form = with_client(engine, scenario)
    assert [(a.status, a.headers["Location"]) for a in answers] == [(303, "/desk/sign-in")] * 3
    assert fragment_status == 401
    patients = {r.patient_id for r in simulated().records.values()}
    assert not any(p in form or p in fragment for p in patients)
    assert 'name="token"' in form and "sign in" in form.lower()


def test_signing_in_sets_a_strict_http_only_cookie_and_returns_to_the_page_asked_for(engine):
    _, patient = newest_critical()
    page = patient_path(TRIAL, patient)

    async def scenario(client: TestClient):
        wrong = await client.post("/desk/sign-in", data={"token": "guess"}, headers=origin(client))
        await client.get(page, allow_redirects=False)  # remembers where to return to
        right = await client.post(
            "/desk/sign-in",
            data={"token": lee_token(client)},
            headers=origin(client),
            allow_redirects=False,
        )
        landed = await client.get(right.headers["Location"])
        out = await client.post("/desk/sign-out", headers=origin(client), allow_redirects=False)
        after = await client.get("/desk", allow_redirects=False)
        cookies = right.headers.getall("Set-Cookie")
        return wrong.status, right, cookies, landed.status, out.status, after.status

    wrong, right, cookies, landed, out, after = with_client(engine, scenario)
    assert wrong == 401
    assert right.headers["Location"] == page
    (session,) = [c for c in cookies if c.startswith("cartwatch_session=")]
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(session.replace("; ", ";").split(";"))
    assert "Secure" not in session  # plain http here; https requests get Secure
    assert (landed, out, after) == (200, 303, 303)


def test_a_form_from_another_origin_or_without_one_is_refused(engine):
    alert_id, _ = newest_critical()
    path = f"/desk/alerts/{quote(alert_id, safe='')}/ack"

    async def scenario(client: TestClient):
        await sign_in(client)
        evil = await client.post(
            path, data={"note": "x"}, headers={"Origin": "https://evil.example"}
        )
        bare = await client.post(path, data={"note": "x"}, skip_auto_headers={"Origin"})
        refused = await client.post(
            "/desk/sign-in", data={"token": lee_token(client)}, headers={"Origin": "null"}
        )
        return [(r.status, r.content_type) for r in (evil, bare, refused)], await evil.text()

    answers, page = with_client(engine, scenario)
    assert answers == [(403, "text/html")] * 3
    assert "not sent from a page of this safety desk" in page
    (stored,) = [a for a in list_alerts(engine, limit=1000) if a["alert_id"] == alert_id]
    assert stored["acknowledged_at"] is None


def test_a_viewer_may_read_but_not_acknowledge(engine):
    alert_id, patient = newest_critical()

    async def scenario(client: TestClient):
        await sign_in(client, kim_token(client))
        page = await client.get(patient_path(TRIAL, patient))
        ack = await client.post(
            f"/desk/alerts/{quote(alert_id, safe='')}/ack",
            data={"note": "x"},
            headers=origin(client),
        )
        return page.status, ack.status, await ack.text()

    page, ack, text = with_client(engine, scenario)
    assert (page, ack) == (200, 403)
    assert "needs the physician role" in text and "monitor.kim" in text


def test_the_session_cookie_authenticates_the_json_api_but_not_a_cross_site_post(engine):
    async def scenario(client: TestClient):
        before = await client.get("/trials")
        await sign_in(client)
        after = await client.get("/trials")
        cross = await client.post(
            "/alerts/x/ack", json={"by": "x"}, headers={"Origin": "https://evil.example"}
        )
        return before.status, after.status, await after.json(), cross.status, cross.content_type

    assert with_client(engine, scenario) == (401, 200, {"trials": [TRIAL]}, 403, "application/json")


def test_on_sqlite_acknowledging_works_the_same(tmp_path: Path):
    alert_id, _ = newest_critical()
    with database("sqlite", tmp_path) as engine:
        add_people(engine)
        store_alerts(engine, simulated().alerts)

        async def scenario(client: TestClient) -> int:
            await sign_in(client)
            posted = await client.post(
                f"/desk/alerts/{quote(alert_id, safe='')}/ack",
                data={"note": "", "back": "//evil.example/desk"},
                headers=origin(client),
                allow_redirects=False,
            )
            assert posted.headers["Location"] == "/desk"  # never a redirect off the desk
            return posted.status

        assert with_client(engine, scenario) == 303
        (stored,) = [a for a in list_alerts(engine, limit=1000) if a["alert_id"] == alert_id]
        assert (stored["acknowledged_by"], stored["ack_note"]) == ("dr.lee", None)


def test_a_link_opened_from_another_site_reopens_itself_to_send_the_strict_cookie(engine):
    _, patient = newest_critical()
    from_email = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}

    async def scenario(client: TestClient):
        bounce = await client.get(patient_path(TRIAL, patient), headers=from_email)
        again = await client.get(patient_path(TRIAL, patient), allow_redirects=False)
        return bounce.status, await bounce.text(), bounce.headers, again.status

    status, body, headers, again = with_client(engine, scenario)
    assert status == 200 and "location.replace(location.href)" in body
    assert patient not in body  # the browser knows the address; the page names nobody
    assert (
        headers["Cache-Control"] == "no-store"
        and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    )
    assert again == 303  # opened from the desk itself without a session: sign in
