"""Laboratory early warnings (alerts/early_warnings.py), one source per row.

Sources: Davila ML et al., Sci Transl Med 2014;6:224ra25 (cytokine fold rises over
baseline in the first 3 days: 75-fold, 250-fold; CRP >= 20 mg/dL); Teachey DT et al.,
Cancer Discov 2016;6:664-679 (IFN-gamma and IL-6 in the first 72 h); Neelapu SS et al.,
Nat Rev Clin Oncol 2018;15:47-62 (ferritin > 10,000 ng/mL: HLH/MAS); Pennisi M et al.,
Blood Adv 2021;5:3397-3406 (modified EASIX = LDH x CRP / platelets; the cut-off is
cartwatch's documented default, none being published for this use).
"""

from __future__ import annotations

import pytest

from cartwatch.alerts.early_warnings import WarningThresholds, modified_easix_series
from cartwatch.alerts.rules import RuleThresholds
from tests.unit.builders import alerts_of, at, infusion, lab, record_of


def fired(events: list[dict], thresholds: RuleThresholds | None = None) -> list[tuple]:
    grades = ("crs_grade", "icans_grade", "crs_derived", "icans_derived")
    return [
        (a.rule, a.level, a.severity) for a in alerts_of(events, thresholds) if a.rule not in grades
    ]


def il6(value: float, when: str) -> dict:
    return lab("IL6", value, when)


@pytest.mark.parametrize(
    ("peak", "expected", "source"),
    [
        (149.0, [], "Davila 2014: below 75-fold (baseline 2 pg/mL)"),
        (150.0, [("il6_fold_rise", 1, "info")], "Davila 2014: 75-fold"),
        (499.0, [("il6_fold_rise", 1, "info")], "Davila 2014: below 250-fold"),
        (500.0, [("il6_fold_rise", 1, "info"), ("il6_fold_rise", 2, "warning")], "Davila: 250x"),
    ],
)
def test_il6_fold_rise_over_the_pre_infusion_baseline(peak: float, expected, source: str):
    events = [il6(2.0, at(-1)), infusion(at(0)), il6(peak / 2, at(1)), il6(peak, at(2))]
    assert fired(events) == expected, source


def test_a_jump_straight_past_250_fold_gives_one_warning():
    events = [il6(2.0, at(-1)), infusion(at(0)), il6(600.0, at(1))]
    assert fired(events) == [("il6_fold_rise", 2, "warning")]


def test_ifng_rises_are_watched_the_same_way():
    events = [lab("IFNG", 1.0, at(0)), infusion(at(0)), lab("IFNG", 80.0, at(2))]
    assert fired(events) == [("ifng_fold_rise", 1, "info")]  # Teachey 2016: IFN-gamma, 72 h


@pytest.mark.parametrize(
    ("hours", "fires"),
    [(72, True), (73, False)],  # Teachey 2016 / Davila 2014: the first 72 h (3 days)
)
def test_only_rises_within_72_hours_of_infusion_count(hours: int, fires: bool):
    events = [il6(2.0, at(-1)), infusion(at(0)), il6(1000.0, at(0, seconds=hours * 3600))]
    assert bool(fired(events)) is fires


def test_without_a_pre_infusion_baseline_no_fold_rise_is_computed():
    assert fired([infusion(at(0)), il6(5.0, at(0, 60)), il6(5000.0, at(2))]) == []


def test_a_baseline_below_one_pg_per_ml_counts_as_one():
    events = [il6(0.0, at(-1)), infusion(at(0)), il6(75.0, at(1))]
    assert fired(events) == [("il6_fold_rise", 1, "info")]


@pytest.mark.parametrize(
    ("ferritin", "expected", "source"),
    [
        (10_000, [], "Neelapu 2018: > 10,000 ng/mL, 10,000 itself is not"),
        (10_001, [("ferritin_high", 1, "warning")], "Neelapu 2018: > 10,000 ng/mL"),
    ],
)
def test_ferritin_above_ten_thousand_suggests_hlh(ferritin: float, expected, source: str):
    assert fired([infusion(at(0)), lab("FERRITIN", ferritin, at(5))]) == expected, source


@pytest.mark.parametrize(
    ("crp", "unit", "fires", "source"),
    [
        (199.0, "mg/L", False, "Davila 2014: below 20 mg/dL"),
        (200.0, "mg/L", True, "Davila 2014: CRP >= 20 mg/dL (200 mg/L)"),
        (20.0, "mg/dL", True, "Davila 2014: 20 mg/dL, converted on intake"),
    ],
)
def test_crp_at_20_mg_per_dl_warns(crp: float, unit: str, fires: bool, source: str):
    alerts = fired([infusion(at(0)), lab("CRP", crp, at(3), unit=unit)])
    assert (alerts == [("crp_high", 1, "warning")]) is fires, source


def test_modified_easix_is_ldh_times_crp_in_mg_per_dl_over_platelets():
    record = record_of(
        infusion(at(0)),
        lab("LDH", 500, at(4)),
        lab("CRP", 100, at(4, seconds=3600)),  # 10 mg/dL
        lab("PLT", 100, at(3, seconds=7200)),
    )
    assert modified_easix_series(record) == [(pytest.approx(record.labs["LDH"][0][0]), 50.0)]


@pytest.mark.parametrize(("plt", "fires"), [(101.0, False), (100.0, True)])
def test_modified_easix_fires_an_info_at_the_default(plt: float, fires: bool):
    events = [
        infusion(at(0)),
        lab("LDH", 500, at(4)),
        lab("CRP", 100, at(4)),
        lab("PLT", plt, at(4)),
    ]
    assert (("modified_easix", 1, "info") in fired(events)) is fires  # cartwatch default 50


def test_labs_before_the_infusion_raise_no_warning():
    events = [lab("FERRITIN", 40_000, at(-2)), lab("CRP", 300, at(-2)), infusion(at(0))]
    assert fired(events) == []


def test_warning_thresholds_are_configurable():
    thresholds = RuleThresholds(warnings=WarningThresholds(ferritin_ng_ml=5_000))
    assert fired([infusion(at(0)), lab("FERRITIN", 6_000, at(5))], thresholds) == [
        ("ferritin_high", 1, "warning")
    ]
