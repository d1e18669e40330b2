"""The safety desk in a real browser: a worker on the embedded broker and PostgreSQL,
Debian's Chromium driven by playwright, a real Prometheus scraping it. A physician signs in
with the token `cartwatch users add` printed, sees a critical alert arrive in the inbox
without reloading, opens the patient and acknowledges it with a note; the open-critical
gauge on Prometheus falls. Each page is saved as a screenshot under out/screenshots/ for people to
look at."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr

from cartwatch.alerts.sinks.links import patient_path, trial_path
from cartwatch.streams.devtools.broker import EmbeddedBroker, free_port
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.kafka.producer import produce_lines
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.operations import list_alerts
from cartwatch.streams.worker.settings import Settings
from tests.integration.deploy_monitoring import Daemon, instant, start_prometheus
from tests.integration.test_storage_support import postgres_database

SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
TOKEN = "desk-e2e-token"  # the service account the test reads the API with
PHYSICIAN = "dr.e2e"
TRIAL, PATIENT = "CART19-DESK-01", "S07-0042"
CRS_3 = f"{TRIAL}:{PATIENT}:crs_grade:3"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOW = datetime.now(UTC).replace(microsecond=0)


def event(n: int, kind: str, days_ago: float, **fields: object) -> bytes:
    at = (NOW - timedelta(days=days_ago)).isoformat()
    common = {"event_id": f"desk-e2e-{n}", "trial_id": TRIAL, "patient_id": PATIENT}
    return json.dumps(common | {"type": kind, "occurred_at": at} | fields).encode()


def observation(n: int, days_ago: float, code: str, value: object) -> bytes:
    return event(n, "observation", days_ago, code=code, value=value)


def lab(n: int, days_ago: float, analyte: str, value: float, unit: str) -> bytes:
    return event(n, "lab", days_ago, analyte=analyte, value=value, unit=unit)


# Three days of a course: fever from day 1, IL-6 and CRP rising, a cannula on day 2.
COURSE = [
    lab(1, 4.0, "IL6", 4.0, "pg/mL"),
    event(2, "infusion", 3.0, product="CD19 CAR-T", dose_cells_per_kg=1e6, lot="L-7"),
    observation(3, 2.9, "temperature_c", 37.1),
    observation(4, 2.0, "temperature_c", 38.6),
    lab(5, 2.0, "IL6", 85.0, "pg/mL"),
    lab(6, 2.0, "CRP", 42.0, "mg/L"),
    observation(7, 1.5, "temperature_c", 39.3),
    observation(8, 1.4, "systolic_bp_mmhg", 104),
    lab(9, 1.0, "IL6", 640.0, "pg/mL"),
    lab(10, 1.0, "CRP", 118.0, "mg/L"),
    observation(11, 0.6, "temperature_c", 39.0),
    observation(12, 0.5, "ice_score", 10),
]
# The investigator reports CRS grade 3 (onset 12 h ago): a critical alert.
CRS_REPORT = event(
    13, "adverse_event", 0.0, ae_id="AE-1", term="CRS", grade=3,
    onset_at=(NOW - timedelta(hours=12)).isoformat(), treatments=["tocilizumab"],
)  # fmt: skip


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    with EmbeddedBroker() as broker, postgres_database() as database_url:
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            embedded_broker=True,
            topic_prefix="e2e-desk",
            api_port=free_port(),
            api_token=SecretStr(TOKEN),
            database_url=SecretStr(database_url),
            session_timeout_s=6,
            gauge_interval_s=1,
        )
        create_topics(settings)
        running = WorkerProcess(settings, tmp_path).start()
        prometheus = start_prometheus(tmp_path, settings.api_port, free_port())
        try:
            yield running, prometheus
        finally:
            prometheus.stop()
            running.stop()


def physician_token(database_url: str) -> str:
    """`cartwatch users add dr.e2e --role physician`: the token it prints, once."""
    done = subprocess.run(
        [sys.executable, "-m", "cartwatch.streams", "users", "add", PHYSICIAN,
         "--role", "physician", "--database-url", database_url],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.split()[0]


def open_critical(prometheus: Daemon) -> list[float]:
    expr = f'max(cartwatch_alerts_open{{trial_id="{TRIAL}", severity="critical"}})'
    return [float(s["value"][1]) for s in instant(prometheus, expr)]


def wait_for(condition, timeout: float, explain=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, explain()
        time.sleep(0.25)


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed: make tools"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def open_rows(page: Page) -> list[str]:
    """The alert ids of the inbox's open table."""
    return page.eval_on_selector_all(
        "#inbox .card:first-child tr[data-alert]", "rows => rows.map(r => r.dataset.alert)"
    )


def test_a_physician_sees_a_critical_alert_arrive_and_acknowledges_it(worker, browser):
    worker, prometheus = worker
    base = worker.api.base_url
    token = physician_token(worker.database_url())
    produce_lines(COURSE, worker.settings, source="e2e")
    deadline = time.monotonic() + 60
    while worker.api.get(f"/trials/{TRIAL}/patients/{PATIENT}")[0] != 200:
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.2)

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{base}/desk")
    assert page.url == f"{base}/desk/sign-in"  # no session: the sign-in page, no patient data
    assert PATIENT not in page.content()
    shoot(page, "1-sign-in")
    page.fill("#token", token)
    page.click("button.primary")
    page.wait_for_url(f"{base}/desk")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads

    produce_lines([CRS_REPORT], worker.settings, source="e2e")
    produced = time.monotonic()
    page.wait_for_selector(f'#inbox tr[data-alert="{CRS_3}"]', timeout=5000)
    arrived_after = time.monotonic() - produced
    assert arrived_after < 5.0
    assert page.evaluate("window.sameDocument") is True  # it came in without a reload
    assert open_rows(page)[0] == CRS_3
    page.wait_for_timeout(4200)  # the arrival highlight fades (4 s) before the picture
    shoot(page, "2-inbox-critical-alert")

    wait_for(lambda: open_critical(prometheus) == [1.0], 30, worker.log_tail)  # escalating
    page.click(f'tr[data-alert="{CRS_3}"] a[href="{patient_path(TRIAL, PATIENT)}"]')
    page.wait_for_url(f"{base}{patient_path(TRIAL, PATIENT)}")
    assert page.locator("svg.chart").count() == 1
    shoot(page, "3-patient")
    row = page.locator(f'tr[data-alert="{CRS_3}"]')
    row.locator('input[name="note"]').fill("Seen at the bedside; tocilizumab given.")
    row.locator("button.ack").click()
    page.wait_for_url(f"{base}{patient_path(TRIAL, PATIENT)}")  # back where the form was
    assert f"✓ {PHYSICIAN}" in page.locator(f'tr[data-alert="{CRS_3}"]').inner_text()
    wait_for(lambda: open_critical(prometheus) == [0.0], 30, worker.log_tail)  # the gauge fell

    page.goto(f"{base}/desk")
    assert CRS_3 not in open_rows(page)
    shoot(page, "4-inbox-after-acknowledgement")
    # The alert's email links the patient page; a link opened from another site arrives
    # without the SameSite=Strict cookie at first, and the desk opens it again from itself.
    link = f"{base}{patient_path(TRIAL, PATIENT)}"
    page.goto(f"data:text/html,<a id=mail href='{link}'>open in the safety desk</a>")
    page.click("#mail")
    page.wait_for_selector(f"h1:has-text('Patient {PATIENT}')", timeout=10000)
    assert page.url == link

    page.goto(f"{base}{trial_path(TRIAL)}")
    assert page.locator("svg.chart").count() == 4
    shoot(page, "5-trial")

    engine = make_engine(worker.database_url())
    try:
        (stored,) = [a for a in list_alerts(engine, trial_id=TRIAL) if a["alert_id"] == CRS_3]
    finally:
        engine.dispose()
    assert stored["acknowledged_by"] == PHYSICIAN  # the signed-in person
    assert stored["ack_note"] == "Seen at the bedside; tocilizumab given."
    print(f"critical alert in the inbox {arrived_after:.2f} s after its event was produced")
