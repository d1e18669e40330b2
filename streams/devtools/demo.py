"""`cartwatch demo`: broker, worker and API on this machine, a simulated trial streamed through."""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from datetime import datetime
from pathlib import Path

from pydantic import SecretStr
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cartwatch.streams.devtools.broker import EmbeddedBroker
from cartwatch.streams.devtools.processes import WorkerProcess
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.http.client import ApiClient
from cartwatch.streams.kafka.producer import kafka_producer, publish_line
from cartwatch.streams.kafka.topics import create_topics
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.users import add_user
from cartwatch.streams.worker.settings import Settings

console = Console()
DEMO_PHYSICIAN = "demo.physician"


def _schedule(lines: list[bytes], duration: float) -> list[float]:
    """Send time (seconds from start) of each line: event time compressed into `duration`."""
    times: list[float | None] = []
    for raw in lines:
        try:
            times.append(datetime.fromisoformat(json.loads(raw)["occurred_at"]).timestamp())
        except (ValueError, KeyError, TypeError):
            times.append(None)
    known = [t for t in times if t is not None]
    first, span = min(known), (max(known) - min(known)) or 1.0
    out, last = [], 0.0
    for t in times:
        last = last if t is None else max(last, (t - first) / span * duration)
        out.append(last)
    return out


def _figures_table(report: dict | None, title: str = "Live cohort figures") -> Table:
    table = Table(title=title, show_header=False, min_width=60)
    if not report:
        table.add_row("waiting for the first infusion", "")
        return table
    eff, saf = report["efficacy"], report["safety"]
    ci = eff["remission"]["ci95"]
    rows = {
        "infused": report["n_infused"],
        "remission (CR/CRi)": f"{eff['remission']['n']} ({_pct(eff['remission']['rate'])})"
        + (f", 95% CI {ci[0]:.3f}-{ci[1]:.3f}" if ci else ""),
        "in remission": f"{eff['in_remission']['n']}"
        f" ({_pct(eff['in_remission']['fraction_of_remission'])} of remission)",
        "median DOR (months)": _num(eff["median_dor_months"]),
        "median follow-up (months)": _num(eff["median_follow_up_months"]),
        "CRS any / grade 3+": f"{saf['crs']['any']['n']} / {saf['crs']['grade3plus']['n']}",
        "ICANS any / grade 3+": f"{saf['icans']['any']['n']} / {saf['icans']['grade3plus']['n']}",
        "deaths": saf["deaths"]["n"],
    }
    for name, value in rows.items():
        table.add_row(name, str(value))
    return table


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def _num(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f}"


def run_demo(settings: Settings, seed: int, duration: float, once: bool) -> int:
    """Run the demo; returns the exit code."""
    trial = simulate_trial(seed=seed)
    lines = list(trial.lines())
    with tempfile.TemporaryDirectory(prefix="cartwatch-demo-") as data_dir, EmbeddedBroker() as b:
        # The demo reads its own API as a service account; people sign in to the desk.
        token = settings.api_token or SecretStr(secrets.token_urlsafe(24))
        settings = settings.model_copy(
            update={"kafka_bootstrap": b.bootstrap, "embedded_broker": True, "api_token": token}
        )
        create_topics(settings)
        console.print(f"[bold]embedded broker[/] on {b.bootstrap}")
        worker = WorkerProcess(settings, Path(data_dir))
        try:
            with console.status("worker joining its consumer group (the embedded broker is slow)"):
                worker.start()
            sign_in = _demo_physician(worker)
            expected = _stream(lines, settings, duration, worker.api, trial.trial_id)
            report = _wait_processed(worker.api, expected, trial.trial_id)
            console.print(_figures_table(report, "Cohort report (as of now)"))
            console.print_json(json.dumps(report))
            console.print(f"API:     http://127.0.0.1:{settings.api_port}/trials")
            console.print(f"metrics: http://127.0.0.1:{settings.api_port}/metrics")
            console.print(f"desk:    http://127.0.0.1:{settings.api_port}/desk")
            console.print(f"         sign in as {DEMO_PHYSICIAN} with the token {sign_in}")
            if once:
                return 0
            console.print("serving; Ctrl-C to stop")
            while worker.alive():
                time.sleep(1)
        except KeyboardInterrupt:
            return 0
        finally:
            worker.stop()
    return 1


def _demo_physician(worker: WorkerProcess) -> str:
    """A local physician account in the demo's database; its token, to sign in to the desk."""
    engine = make_engine(worker.database_url())
    try:
        return add_user(engine, DEMO_PHYSICIAN, ["physician"], actor="cartwatch demo")
    finally:
        engine.dispose()


def _stream(
    lines: list[bytes], settings: Settings, duration: float, api: ApiClient, trial_id: str
) -> int:
    """Publish the lines on their schedule with a live view; returns messages sent to workers."""
    schedule = _schedule(lines, duration)
    producer = kafka_producer(settings)
    progress = Progress(
        TextColumn("streaming"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[s]}")
    )
    task = progress.add_task("send", total=len(lines), s="")
    to_workers, start, report, last_poll = 0, time.monotonic(), None, 0.0
    with Live(Group(progress, _figures_table(None)), console=console, refresh_per_second=4) as live:
        for number, (raw, at) in enumerate(zip(lines, schedule, strict=True), start=1):
            delay = at - (time.monotonic() - start)
            if delay > 0:
                producer.flush()
                time.sleep(delay)
            routed = publish_line(producer, raw, settings, "demo", number)
            to_workers += routed.reasons is None
            progress.advance(task)
            if time.monotonic() - last_poll > 1.0:
                last_poll, report = time.monotonic(), api.report_or_none(trial_id) or report
                progress.update(task, s=_pipeline_status(api))
                live.update(Group(progress, _figures_table(report)))
        producer.flush()
    producer.close()
    return to_workers


def _pipeline_status(api: ApiClient) -> str:
    """Processed messages, alerts and dead letters, from the worker's /metrics."""
    try:
        samples = api.metric_samples()
    except OSError:
        return ""
    total = {"processed": 0.0, "alerts": 0.0, "dead letters": 0.0}
    names = {
        "cartwatch_events_processed_total": "processed",
        "cartwatch_alerts_total": "alerts",
        "cartwatch_dead_letters_total": "dead letters",
    }
    for (name, _), value in samples.items():
        if name in names:
            total[names[name]] += value
    return " · ".join(f"{k} {v:.0f}" for k, v in total.items())


def _wait_processed(api: ApiClient, expected: int, trial_id: str, timeout: float = 120.0) -> dict:
    with console.status("waiting for the worker to process every message"):
        deadline = time.monotonic() + timeout
        while api.processed_total() < expected and time.monotonic() < deadline:
            time.sleep(0.5)
    return api.report(trial_id)
