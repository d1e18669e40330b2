"""How long the safety desk's pages take for a simulated 94-patient trial (a benchmark, not
a test): `python -m cartwatch.streams.devtools.desk_bench [--seed 2026] [--rounds 10]`.

The trial (`simulate_trial`) is replayed through the processing core, its alerts stored in
a SQLite database, and each page fetched through the real API application, signed in with
the session cookie. Reported per page: the median and worst wall time of a request, and
the CPU time the process spent on it (all threads: the figures and charts are computed in
one), which a loaded machine inflates less than the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from cartwatch.alerts.replay import replay
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.alerts.sinks.links import patient_path, trial_path
from cartwatch.streams.devtools.replay_view import ReplayView
from cartwatch.streams.devtools.simulator import simulate_trial
from cartwatch.streams.http.api import build_api
from cartwatch.streams.http.identity import Authenticator, ServiceAccount
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.migrate import upgrade
from cartwatch.streams.storage.upserts import write_batch
from cartwatch.streams.worker.metrics import Metrics

TOKEN = "desk-bench"


async def measure(client: TestClient, path: str, rounds: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of `rounds` GETs of `path` (after one to warm up)."""
    assert (await client.get(path)).status == 200, path
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        response = await client.get(path)
        await response.read()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return walls, cpus


async def run(
    seed: int, rounds: int, folder: Path
) -> list[tuple[str, int, list[float], list[float]]]:
    trial = simulate_trial(seed=seed)
    result = replay(trial.lines(), trial.data_cut, RuleThresholds())
    url = f"sqlite:///{folder / 'desk-bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        write_batch(conn, result.alerts)
    busiest = Counter(a.patient_id for a in result.alerts if a.patient_id).most_common(1)[0][0]
    quiet = min(result.records.values(), key=lambda r: (len(r.alerted), r.patient_id))
    pages = {
        "inbox": "/desk",
        "inbox fragment (live refresh)": "/desk/inbox",
        "trial": trial_path(trial.trial_id),
        "patient (most alerts)": patient_path(trial.trial_id, busiest),
        "patient (no alert)": patient_path(trial.trial_id, quiet.patient_id),
    }
    reader = Authenticator(service=ServiceAccount(SecretStr(TOKEN)))
    app = build_api(ReplayView(result.records), Metrics(CollectorRegistry()), reader, engine)
    rows = []
    async with TestClient(TestServer(app)) as client:
        client.session.cookie_jar.update_cookies({"cartwatch_session": TOKEN})
        for name, path in pages.items():
            walls, cpus = await measure(client, path, rounds)
            size = len(await (await client.get(path)).read())
            rows.append((name, size, walls, cpus))
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rows = asyncio.run(run(args.seed, args.rounds, Path(folder)))
    print(f"{'page':32} {'KB':>6} {'wall p50':>9} {'wall max':>9} {'CPU p50':>8}  (ms)")
    for name, size, walls, cpus in rows:
        print(
            f"{name:32} {size / 1024:6.0f} {statistics.median(walls):9.0f} {max(walls):9.0f} "
            f"{statistics.median(cpus):8.0f}"
        )


if __name__ == "__main__":
    main()
