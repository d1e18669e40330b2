"""`cartwatch replay` gives the same bytes as the release the golden files were made with.

The golden files in tests/golden/ are the outputs of `cartwatch replay` on the example
stream and on `cartwatch simulate --seed 1`, as of 2030-01-01T00:00:00Z. REPORT.json must
match byte for byte; ALERTS.jsonl line by line, but for `detected_at` (processing time).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cartwatch.streams.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
AS_OF = "2030-01-01T00:00:00Z"


def _without_processing_time(line: str) -> dict:
    alert = json.loads(line)
    assert alert.pop("detected_at")  # present, and the one field that may differ
    return alert


def _replay(events: Path, out: Path) -> tuple[bytes, list[str]]:
    report, alerts = out / "REPORT.json", out / "ALERTS.jsonl"
    assert main(["replay", str(events), "--as-of", AS_OF, "--report-out", str(report),
                 "--alerts-out", str(alerts)]) == 0  # fmt: skip
    return report.read_bytes(), alerts.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", ["example", "sim1"])
def test_replay_outputs_equal_the_golden_files(name: str, tmp_path: Path, capsys) -> None:
    if name == "example":
        events = ROOT / "docs" / "examples" / "events.jsonl"
    else:
        events = tmp_path / "sim1.jsonl"
        assert main(["simulate", "--seed", "1", "--out", str(events)]) == 0
    report, alerts = _replay(events, tmp_path)
    assert report == (GOLDEN / f"{name}.report.json").read_bytes()
    golden = (GOLDEN / f"{name}.alerts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(alerts) == len(golden)
    assert [_without_processing_time(a) for a in alerts] == [json.loads(g) for g in golden]
