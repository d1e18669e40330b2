"""Configuration: thresholds nested as the core defines them, old names refused, one-line errors."""

from __future__ import annotations

import pytest

from cartwatch.alerts.rules import RuleThresholds
from cartwatch.streams.cli.main import main
from cartwatch.streams.worker.settings import RENAMED, Settings


def test_nested_variables_set_the_rules_warnings_and_boundary(monkeypatch):
    monkeypatch.setenv("CARTWATCH_RULES__CRS_GRADE_MIN", "3")
    monkeypatch.setenv("CARTWATCH_RULES__WARNINGS__FERRITIN_NG_ML", "5000")
    monkeypatch.setenv("CARTWATCH_RULES__TOXICITY__P0", "0.3")
    thresholds = Settings().thresholds
    assert thresholds.crs_grade_min == 3
    assert thresholds.warnings.ferritin_ng_ml == 5000
    assert thresholds.toxicity.p0 == 0.3
    assert thresholds.icans_grade_min == RuleThresholds().icans_grade_min  # the rest default


def test_the_settings_defaults_are_the_cores():
    assert Settings().thresholds == RuleThresholds()


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_a_threshold_under_its_old_flat_name_stops_the_command(old, monkeypatch, capsys):
    monkeypatch.setenv(old, "3")
    assert main(["replay", "x.jsonl", "--as-of", "2030-01-01T00:00:00Z",
                 "--report-out", "r.json", "--alerts-out", "a.jsonl"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{old} is now {RENAMED[old]}" in err


def test_an_out_of_range_threshold_is_one_line_naming_its_variable(monkeypatch, capsys):
    monkeypatch.setenv("CARTWATCH_RULES__TOXICITY__P0", "3")
    assert main(["simulate", "--out", "x.jsonl"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "cartwatch simulate: error: configuration: "
        "CARTWATCH_RULES__TOXICITY__P0: Input should be less than 1\n"
    )


@pytest.mark.parametrize("given", ["api_tls_cert", "api_tls_key"])
def test_a_tls_certificate_without_its_key_or_the_reverse_is_refused(given):
    with pytest.raises(ValueError, match="CARTWATCH_API_TLS_CERT and CARTWATCH_API_TLS_KEY"):
        Settings(**{given: "/etc/cartwatch/tls/file.pem"})


def test_tls_for_the_api_is_off_by_default_and_on_with_both_files():
    assert Settings().api_tls_cert is None and Settings().api_tls_key is None
    both = Settings(api_tls_cert="/tls/tls.crt", api_tls_key="/tls/tls.key")
    assert (both.api_tls_cert, both.api_tls_key) == ("/tls/tls.crt", "/tls/tls.key")
