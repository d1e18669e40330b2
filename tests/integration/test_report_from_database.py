"""`cartwatch report` and `cartwatch export` from the database (the worker's patient
snapshots and alerts, SQLite here): the same figures and data fingerprint as from the events
file the snapshots were built from, and the acknowledgements the database holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from cartwatch.streams.cli.main import main
from cartwatch.streams.storage.engine import make_engine
from cartwatch.streams.storage.items import PatientSnapshot
from cartwatch.streams.storage.operations import acknowledge_alert
from cartwatch.streams.storage.upserts import write_batch
from tests.unit.demo_trial import demo_replay, demo_trial

AS_OF = "2026-01-31T00:00:00Z"
TRIAL = "CART19-ALL-01"


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    """A migrated SQLite database holding the demo trial's snapshots and alerts, one of its
    critical CRS alerts acknowledged."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'cartwatch.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    replayed = demo_replay()
    engine = make_engine(url)
    with engine.begin() as conn:
        write_batch(conn, [PatientSnapshot.of(r) for r in replayed.records.values()])
        write_batch(conn, replayed.alerts)
    critical = next(
        a for a in replayed.alerts if a.rule == "crs_grade" and a.severity == "critical"
    )
    acknowledge_alert(engine, critical.alert_id, actor="dr.who", note="seen")
    engine.dispose()
    return url


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip


def _body(text: str) -> list[str]:
    """The lines that hold figures: not the generation time, the source or the alerts'."""
    kept = []
    for line in text.splitlines():
        if line.strip().startswith("6 Alerts"):
            break
        if not line.strip().startswith(("Generated", "Source")):
            kept.append(line)
    return kept


def test_the_database_gives_the_figures_and_fingerprint_of_the_events_file(
    database: str, tmp_path: Path
):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in demo_trial().lines()))
    base = ["report", TRIAL, "--as-of", AS_OF]
    assert main([*base, "--out", str(tmp_path / "db.pdf"), "--database-url", database]) == 0
    assert main([*base, "--out", str(tmp_path / "file.pdf"), "--events", str(events)]) == 0
    from_database, from_file = _text(tmp_path / "db.pdf"), _text(tmp_path / "file.pdf")
    assert _body(from_database) == _body(from_file)
    assert "database (patient snapshots)" in from_database


def test_the_alerts_carry_the_acknowledgements_of_the_database(database: str, tmp_path: Path):
    out = tmp_path / "db.pdf"
    assert (
        main(["report", TRIAL, "--as-of", AS_OF, "--out", str(out), "--database-url", database])
        == 0
    )
    line = next(
        x.split() for x in _text(out).splitlines() if x.split()[:2] == ["crs_grade", "critical"]
    )
    assert line[:4] == ["crs_grade", "critical", "29", "1"]
    assert "acknowledgements as stored" in _text(out).replace("\n", " ")


def test_an_export_from_the_database_holds_the_canonical_values_it_stores(
    database: str, tmp_path: Path
):
    out = tmp_path / "datasets"
    argv = ["export", TRIAL, "--as-of", AS_OF, "--format", "csv", "--out", str(out)]
    assert main([*argv, "--database-url", database]) == 0
    lb = pd.read_csv(out / "lb.csv", dtype=str, keep_default_na=False)
    assert (lb["LBORRES"] == lb["LBSTRESC"]).all() and (lb["LBORRESU"] == lb["LBSTRESU"]).all()
    ex = pd.read_csv(out / "ex.csv", dtype=str, keep_default_na=False)
    assert set(ex["EXTRT"]) == {"CAR T-CELL PRODUCT"} and set(ex["EXDOSE"]) == {""}
    dm = pd.read_csv(out / "dm.csv", dtype=str, keep_default_na=False)
    assert len(dm) == 98 and (dm["RFXSTDTC"] != "").sum() == 94
