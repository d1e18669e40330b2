"""`cartwatch replay`: lines in file order, as_of, invalid lines counted, outputs written."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from cartwatch.alerts.replay import replay
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.streams.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "events.jsonl"
AS_OF = datetime.fromisoformat("2025-06-01T00:00:00+00:00")


def _lines() -> list[bytes]:
    return EXAMPLES.read_bytes().splitlines()


def test_the_contract_example_gives_one_cr_with_mrd_negativity_and_two_alerts():
    result = replay(_lines(), AS_OF, RuleThresholds())
    (trial,) = result.report["trials"]
    assert trial["n_infused"] == 1
    assert trial["efficacy"]["cr"]["n"] == 1
    assert trial["efficacy"]["mrd_negative"]["n"] == 1
    # The bedside data (fever with 4 L/min by cannula; ICE 6) meet ASTCT grade 2 before
    # the reports arrive, so the derived-grade rules fire first.
    assert [a.alert_id for a in result.alerts] == [
        "CART19-ALL-01:S01-0007:crs_derived:2",
        "CART19-ALL-01:S01-0007:crs_grade:2",
        "CART19-ALL-01:S01-0007:icans_derived:2",
        "CART19-ALL-01:S01-0007:icans_grade:2",
    ]


def test_lines_after_as_of_are_skipped_and_fire_nothing():
    as_of = datetime.fromisoformat("2025-02-08T00:00:00+01:00")
    result = replay(_lines(), as_of, RuleThresholds())
    assert [a.rule for a in result.alerts] == ["crs_derived", "crs_grade"]
    assert result.after_as_of == 8
    assert result.report["trials"][0]["efficacy"]["remission"]["n"] == 0


def test_invalid_lines_are_counted_with_their_line_number_and_never_fatal():
    lines = [b"{oops", *_lines(), b'{"type": "lab"}']
    result = replay(lines, AS_OF, RuleThresholds())
    assert [n for n, _ in result.invalid] == [1, len(lines)]
    assert result.accepted == 16


def test_blank_lines_are_no_messages_but_are_counted_and_shown(tmp_path: Path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([_lines()[0], b"", b"   \t", _lines()[1]]) + b"\n")
    result = replay(events.read_bytes().splitlines(), AS_OF, RuleThresholds())
    assert (result.accepted, result.invalid, result.blank) == (2, [], 2)
    out = [str(events), "--as-of", AS_OF.isoformat(), "--report-out", str(tmp_path / "r.json")]
    assert main(["replay", *out, "--alerts-out", str(tmp_path / "a.jsonl")]) == 0
    assert "2 accepted, 0 duplicates, 0 invalid, 0 after as_of, 2 blank" in capsys.readouterr().err


@pytest.mark.parametrize("as_of", ["2025-06-01T00:00:00", "2025-06-01", "yesterday"])
def test_an_as_of_without_an_offset_is_refused_by_the_command(as_of: str, tmp_path: Path, capsys):
    out = [str(tmp_path / "r.json"), "--alerts-out", str(tmp_path / "a.jsonl")]
    with pytest.raises(SystemExit) as exit_:
        main(["replay", str(EXAMPLES), "--as-of", as_of, "--report-out", *out])
    assert exit_.value.code == 2
    assert "RFC 3339 timestamp with offset" in capsys.readouterr().err


def test_the_as_of_is_read_as_events_timestamps_are(tmp_path: Path):
    reports = []
    for as_of in ("2025-06-01T02:00:00+02:00", "2025-06-01t00:00:00z", "2025-06-01 00:00:00Z"):
        report = tmp_path / "report.json"
        args = ["--report-out", str(report), "--alerts-out", str(tmp_path / "a.jsonl")]
        assert main(["replay", str(EXAMPLES), "--as-of", as_of, *args]) == 0
        written = json.loads(report.read_text())
        assert written["as_of"] == as_of
        reports.append(written["trials"])
    assert reports[0] == reports[1] == reports[2]


def test_the_command_writes_the_report_and_the_alerts(tmp_path: Path):
    report, alerts = tmp_path / "report.json", tmp_path / "alerts.jsonl"
    code = main(
        [
            "replay",
            str(EXAMPLES),
            "--as-of",
            "2025-06-01T00:00:00Z",
            "--report-out",
            str(report),
            "--alerts-out",
            str(alerts),
        ]
    )
    assert code == 0
    written = json.loads(report.read_text())
    assert written["as_of"] == "2025-06-01T00:00:00Z"  # echoed as given
    assert [t["trial_id"] for t in written["trials"]] == ["CART19-ALL-01"]
    rules = [json.loads(line)["rule"] for line in alerts.read_text().splitlines()]
    assert rules == ["crs_derived", "crs_grade", "icans_derived", "icans_grade"]
