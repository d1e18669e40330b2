"""`cartwatch demo --once` from the command line: the published figures come out of Kafka."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from cartwatch.streams.devtools.broker import free_port


def _report_from(output: str) -> dict:
    """The JSON report the demo prints after its tables."""
    lines = output.splitlines()
    start = lines.index("{")
    end = next(i for i in range(start, len(lines)) if lines[i] == "}")
    return json.loads("\n".join(lines[start : end + 1]))


def test_the_demo_streams_the_simulated_trial_and_prints_the_published_figures(tmp_path):
    port = free_port()
    env = os.environ | {"COLUMNS": "120", "CARTWATCH_DATA_DIR": str(tmp_path)}
    command = ["demo", "--once", "--duration", "10", "--api-port", str(port)]
    done = subprocess.run(
        [sys.executable, "-m", "cartwatch.streams.cli.main", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = _report_from(done.stdout)
    efficacy = report["efficacy"]
    assert report["n_infused"] == 94
    assert efficacy["remission"]["n"] == 75
    assert round(efficacy["remission"]["rate"], 3) == 0.798
    assert [round(x, 3) for x in efficacy["remission"]["ci95"]] == [0.702, 0.874]
    assert efficacy["in_remission"] == {"n": 48, "fraction_of_remission": 0.64}
    assert abs(efficacy["median_dor_months"] - 17.8) <= 0.3
    assert abs(efficacy["median_follow_up_months"] - 12.9) <= 0.3
    assert f"http://127.0.0.1:{port}/metrics" in done.stdout
    assert f"http://127.0.0.1:{port}/desk" in done.stdout
    assert re.search(r"sign in as demo\.physician with the token cw_[\w-]{40,}", done.stdout)
