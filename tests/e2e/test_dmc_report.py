"""`cartwatch report` on the simulated demo trial: the PDF's text (pdftotext) holds the JSON
report's figures of the same cut, the published ones among them; the same cut twice gives
the same figures and fingerprint; pdftoppm renders every page."""

from __future__ import annotations

import re
import subprocess
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.cohort import cohort_reports
from cartwatch.models.data_cut import fingerprint, records_as_of
from cartwatch.streams.cli.main import main
from cartwatch.streams.reports.pdf import trial_report_pdf
from cartwatch.streams.reports.sources import from_events
from tests.unit.demo_trial import demo_replay, demo_trial

AS_OF = "2026-01-31T00:00:00Z"  # the simulator's data cut
TRIAL = "CART19-ALL-01"
COLUMNS = re.compile(r"\s{2,}")


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "events.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in demo_trial().lines()))
    return path


@cache
def _report() -> dict:
    (report,) = cohort_reports(demo_replay().records.values(), demo_trial().data_cut.timestamp())
    return report


def _run_report(events: Path, out: Path) -> tuple[str, float]:
    started = time.perf_counter()
    assert (
        main(["report", TRIAL, "--as-of", AS_OF, "--out", str(out), "--events", str(events)]) == 0
    )
    took = time.perf_counter() - started
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    return text, took


def _cells(text: str, label: str) -> list[str]:
    """The columns of the first line that starts with `label`."""
    line = next(x.strip() for x in text.splitlines() if x.strip().startswith(label))
    return COLUMNS.split(line)[1:]


def _pct(rate: float) -> str:
    return f"{100 * rate:.1f}%"


def test_the_pdf_holds_the_published_figures(events: Path, tmp_path: Path):
    text, took = _run_report(events, tmp_path / "report.pdf")
    assert _cells(text, "Infused") == ["94"]
    assert _cells(text, "Remission (CR or CRi)") == ["75", "79.8%", "0.702–0.874"]
    assert _cells(text, "In remission at the cut") == ["48", "64.0%"]
    assert _cells(text, "Duration of remission")[0] == "17.8"
    assert _cells(text, "Follow-up")[0] == "12.9"
    assert took < 60, f"the report of 94 patients took {took:.1f} s"


def test_every_figure_in_the_pdf_equals_the_json_report_of_the_same_cut(
    events: Path, tmp_path: Path
):
    text, _ = _run_report(events, tmp_path / "report.pdf")
    report = _report()
    eff, safety = report["efficacy"], report["safety"]
    n = report["n_infused"]
    low, high = eff["remission"]["ci95"]
    assert _cells(text, "Remission (CR or CRi)") == [
        str(eff["remission"]["n"]), _pct(eff["remission"]["rate"]), f"{low:.3f}–{high:.3f}"
    ]  # fmt: skip
    assert _cells(text, "Complete remission (CR)") == [str(eff["cr"]["n"]), _pct(eff["cr"]["rate"])]
    assert _cells(text, "CR with incomplete") == [str(eff["cri"]["n"]), _pct(eff["cri"]["rate"])]
    mrd = eff["mrd_negative"]["n"]
    assert _cells(text, "MRD-negative remission") == [str(mrd), _pct(mrd / n)]
    assert _cells(text, "In remission at the cut") == [
        str(eff["in_remission"]["n"]), _pct(eff["in_remission"]["fraction_of_remission"])
    ]  # fmt: skip
    relapsed = eff["relapsed"]["n"]
    assert _cells(text, "Relapsed") == [str(relapsed), _pct(relapsed / n)]
    assert _cells(text, "Duration of remission")[0] == f"{eff['median_dor_months']:.1f}"
    assert _cells(text, "Follow-up")[0] == f"{eff['median_follow_up_months']:.1f}"
    crs, icans = safety["crs"], safety["icans"]
    for label, key in (("Any grade", "any"), ("Grade ≥ 3", "grade3plus")):
        assert _cells(text, label) == [
            f"{s[key]['n']} ({_pct(s[key]['rate'])})" for s in (crs, icans)
        ]
    for grade in "12345":
        assert _cells(text, f"Grade {grade}") == [str(s["by_grade"][grade]) for s in (crs, icans)]
    onset = _cells(text, "Onset day, median (range)")
    assert [o.split(" ")[0] for o in onset] == [
        f"{s['median_onset_day']:.1f}" for s in (crs, icans)
    ]
    duration = _cells(text, "Duration in days, median (range)")
    assert [d.split(" ")[0] for d in duration] == [
        f"{s['median_duration_days']:.1f}" for s in (crs, icans)
    ]
    dead = safety["deaths"]["n"]
    assert f"Deaths: {dead} of {n} infused ({_pct(dead / n)})" in text
    assert f"Deaths ({dead})" in text


def test_the_cover_names_the_cut_the_version_and_the_datas_fingerprint(
    events: Path, tmp_path: Path
):
    text, _ = _run_report(events, tmp_path / "report.pdf")
    cut = demo_trial().data_cut.timestamp()
    expected = fingerprint(records_as_of(demo_replay().records.values(), cut))
    assert expected in text.replace("\n", "")
    assert _cells(text, "Data cut (as of)") == [f"{AS_OF} (2026-01-31 00:00 UTC)"]
    assert _cells(text, "Infused") == ["94"] and _cells(text, "Patients with data") == ["98"]
    assert re.search(r"cartwatch version\s+\d+\.\d+", text)


def test_the_same_cut_twice_gives_the_same_figures_and_fingerprint(events: Path, tmp_path: Path):
    first, _ = _run_report(events, tmp_path / "first.pdf")
    second, _ = _run_report(events, tmp_path / "second.pdf")

    def without_generation_time(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.strip().startswith("Generated")]

    assert without_generation_time(first) == without_generation_time(second)


def test_the_same_cut_and_generation_time_give_the_same_bytes(events: Path):
    data = from_events(events, TRIAL, demo_trial().data_cut, RuleThresholds())
    at = datetime(2026, 12, 1, tzinfo=UTC)
    stopping = RuleThresholds().toxicity
    one = trial_report_pdf(data, demo_trial().data_cut, AS_OF, stopping, at)
    assert trial_report_pdf(data, demo_trial().data_cut, AS_OF, stopping, at) == one


def test_every_page_renders(events: Path, tmp_path: Path):
    _run_report(events, tmp_path / "report.pdf")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "report.pdf"),
                    str(tmp_path / "page")], check=True)  # fmt: skip
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 7 and all(p.stat().st_size > 3000 for p in pages)
