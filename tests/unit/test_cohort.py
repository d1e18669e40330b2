"""CONTRACT sections 3 and 5: the cohort figures and the exact shape of a trial report."""

from __future__ import annotations

import json

import pytest

from cartwatch.models.cohort import DAYS_PER_MONTH, trial_report
from cartwatch.models.survival import clopper_pearson
from tests.unit.builders import (
    at,
    blood_blasts,
    crs,
    disposition,
    icans,
    infusion,
    lab,
    marrow_blasts,
    observation,
    recovered_counts,
    report_of,
    reports_of,
)

REPORT_KEYS = {"trial_id", "n_infused", "efficacy", "safety"}
EFFICACY_KEYS = {
    "remission",
    "cr",
    "cri",
    "mrd_negative",
    "in_remission",
    "relapsed",
    "median_dor_months",
    "median_follow_up_months",
}
TOXICITY_KEYS = {"any", "grade3plus", "by_grade", "median_onset_day", "median_duration_days"}


def p1() -> list:
    """CR with MRD negativity, relapse on day 88, CRS 2 and ICANS 3, death on day 150."""
    return [
        infusion(at(0), patient="P1"),
        marrow_blasts(1.0, at(28), patient="P1"),
        recovered_counts(at(28), patient="P1"),
        lab("MRD", 0.001, at(28), patient="P1"),
        blood_blasts(2.0, at(88), patient="P1"),
        crs(2, at(1), resolved=at(5), reported=at(6), patient="P1"),
        icans(3, at(5), resolved=at(8), reported=at(9), patient="P1"),
        disposition("death", at(150), patient="P1"),
    ]


def p2() -> list:
    """CRi on day 30, in remission (last marrow day 90), CRS 1 unresolved, lost on day 120."""
    return [
        infusion(at(0), patient="P2"),
        marrow_blasts(2.0, at(30), patient="P2"),
        marrow_blasts(1.0, at(90), patient="P2"),
        crs(1, at(3), patient="P2"),
        disposition("lost_to_follow_up", at(120), patient="P2"),
    ]


def p3() -> list:
    """No remission, CRS 4 (days 2-12), a grade 5 CRS before infusion, withdrawn day 40."""
    return [
        crs(5, at(-2), ae_id="AE-pre", patient="P3"),
        infusion(at(0), patient="P3"),
        marrow_blasts(60.0, at(28), patient="P3"),
        crs(4, at(2), resolved=at(12), reported=at(13), patient="P3"),
        disposition("withdrawn", at(40), patient="P3"),
    ]


def p4_not_infused() -> list:
    return [
        marrow_blasts(1.0, at(28), patient="P4"),
        crs(3, at(2), patient="P4"),
        icans(4, at(3), patient="P4"),
        lab("MRD", 0.0, at(28), patient="P4"),
        disposition("death", at(30), patient="P4"),
    ]


def p5() -> list:
    """Infused on day 10, ICANS 1 on day 17 unresolved, last seen day 100."""
    return [
        infusion(at(10), patient="P5"),
        icans(1, at(17), patient="P5"),
        observation("temperature_c", 36.8, at(100), patient="P5"),
    ]


def cohort() -> list:
    return [*p1(), *p2(), *p3(), *p4_not_infused(), *p5()]


# --- every figure of a small cohort ---------------------------------------------------


def test_efficacy_figures_of_a_small_cohort() -> None:
    efficacy = report_of(cohort())["efficacy"]
    assert efficacy == {
        "remission": {"n": 2, "rate": 0.5, "ci95": list(clopper_pearson(2, 4))},
        "cr": {"n": 1, "rate": 0.25},
        "cri": {"n": 1, "rate": 0.25},
        "mrd_negative": {"n": 1},
        "in_remission": {"n": 1, "fraction_of_remission": 0.5},
        "relapsed": {"n": 1},
        # DOR: P1 60 days (relapse), P2 60 days censored: S(60) = 1/2.
        "median_dor_months": 60 / DAYS_PER_MONTH,
        # Follow-up: 40, 90, 120 (events), 150 (death, censored): S(90) = 3/4 * 2/3.
        "median_follow_up_months": 90 / DAYS_PER_MONTH,
    }


def test_safety_figures_of_a_small_cohort() -> None:
    safety = report_of(cohort())["safety"]
    assert safety == {
        "crs": {
            "any": {"n": 3, "rate": 0.75},
            "grade3plus": {"n": 1, "rate": 0.25},
            "by_grade": {"1": 1, "2": 1, "3": 0, "4": 1, "5": 0},
            "median_onset_day": 2.0,
            "median_duration_days": 7.0,
        },
        "icans": {
            "any": {"n": 2, "rate": 0.5},
            "grade3plus": {"n": 1, "rate": 0.25},
            "by_grade": {"1": 1, "2": 0, "3": 1, "4": 0, "5": 0},
            "median_onset_day": 6.0,
            "median_duration_days": 3.0,
        },
        "deaths": {"n": 1},
    }


def test_the_report_names_its_trial_and_counts_infused_patients_only() -> None:
    report = report_of(cohort())
    assert (report["trial_id"], report["n_infused"]) == ("T1", 4)


def test_non_infused_patients_are_excluded_from_every_figure() -> None:
    with_p4 = report_of(cohort())
    without_p4 = report_of([*p1(), *p2(), *p3(), *p5()])
    assert with_p4 == without_p4


# --- shape -------------------------------------------------------------------------


def test_the_report_has_exactly_the_keys_of_the_contract() -> None:
    report = report_of(cohort())
    assert set(report) == REPORT_KEYS
    efficacy, safety = report["efficacy"], report["safety"]
    assert set(efficacy) == EFFICACY_KEYS
    assert set(efficacy["remission"]) == {"n", "rate", "ci95"}
    assert set(efficacy["cr"]) == set(efficacy["cri"]) == {"n", "rate"}
    assert set(efficacy["mrd_negative"]) == set(efficacy["relapsed"]) == {"n"}
    assert set(efficacy["in_remission"]) == {"n", "fraction_of_remission"}
    assert set(safety) == {"crs", "icans", "deaths"}
    for term in ("crs", "icans"):
        assert set(safety[term]) == TOXICITY_KEYS
        assert set(safety[term]["any"]) == set(safety[term]["grade3plus"]) == {"n", "rate"}
        assert list(safety[term]["by_grade"]) == ["1", "2", "3", "4", "5"]
    assert set(safety["deaths"]) == {"n"}


def test_the_report_is_plain_json() -> None:
    report = report_of(cohort())
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_the_confidence_interval_is_a_list_of_two_floats() -> None:
    ci95 = report_of(cohort())["efficacy"]["remission"]["ci95"]
    assert isinstance(ci95, list) and len(ci95) == 2
    assert all(type(bound) is float for bound in ci95)


def counts_in(report: dict) -> list[object]:
    efficacy, safety = report["efficacy"], report["safety"]
    counts = [report["n_infused"], safety["deaths"]["n"]]
    counts += [efficacy[key]["n"] for key in ("remission", "cr", "cri", "mrd_negative")]
    counts += [efficacy[key]["n"] for key in ("in_remission", "relapsed")]
    for term in ("crs", "icans"):
        counts += [safety[term]["any"]["n"], safety[term]["grade3plus"]["n"]]
        counts += list(safety[term]["by_grade"].values())
    return counts


def test_a_trial_without_infused_patients_has_zero_counts_and_null_rates() -> None:
    report = report_of(p4_not_infused())
    assert all(type(n) is int and n == 0 for n in counts_in(report))
    efficacy, safety = report["efficacy"], report["safety"]
    assert efficacy["remission"]["rate"] is None
    assert efficacy["remission"]["ci95"] is None
    assert efficacy["cr"]["rate"] is None and efficacy["cri"]["rate"] is None
    assert efficacy["in_remission"]["fraction_of_remission"] is None
    assert efficacy["median_dor_months"] is None
    assert efficacy["median_follow_up_months"] is None
    for term in ("crs", "icans"):
        assert safety[term]["any"]["rate"] is None
        assert safety[term]["grade3plus"]["rate"] is None
        assert safety[term]["median_onset_day"] is None
        assert safety[term]["median_duration_days"] is None


def test_counts_are_integers_not_booleans() -> None:
    assert all(type(n) is int for n in counts_in(report_of(cohort())))


def test_an_empty_trial_report_is_all_zero_and_null() -> None:
    report = trial_report("T9", [])
    assert report["n_infused"] == 0
    assert report["efficacy"]["remission"] == {"n": 0, "rate": None, "ci95": None}
    assert report["safety"]["crs"]["by_grade"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}


def test_without_responders_the_fraction_in_remission_and_median_dor_are_null() -> None:
    efficacy = report_of(p3())["efficacy"]
    assert efficacy["remission"]["n"] == 0
    assert efficacy["remission"]["rate"] == 0.0
    assert efficacy["remission"]["ci95"][0] == 0.0
    assert efficacy["in_remission"] == {"n": 0, "fraction_of_remission": None}
    assert efficacy["median_dor_months"] is None


def test_rates_are_unrounded_floats() -> None:
    events = [
        *p1(),
        infusion(at(0), patient="P6"),
        infusion(at(0), patient="P7"),
    ]
    report = report_of(events)
    assert report["efficacy"]["remission"]["rate"] == 1 / 3
    assert report["safety"]["crs"]["any"]["rate"] == 1 / 3
    assert type(report["efficacy"]["remission"]["rate"]) is float


def test_a_rate_over_patients_is_a_float_even_when_whole() -> None:
    report = report_of(p1())
    assert report["efficacy"]["remission"]["rate"] == 1.0
    assert type(report["efficacy"]["remission"]["rate"]) is float


def test_median_dor_not_reached_is_null() -> None:
    assert report_of(p2())["efficacy"]["median_dor_months"] is None


def test_median_follow_up_not_reached_when_every_patient_died() -> None:
    assert report_of(p1())["efficacy"]["median_follow_up_months"] is None


# --- medians of toxicity ------------------------------------------------------------


def test_median_onset_day_is_per_patient_earliest_onset_after_t0() -> None:
    events = [
        infusion(at(0)),
        crs(2, at(4), ae_id="A"),
        crs(1, at(1.5), ae_id="B"),
        crs(3, at(9), ae_id="C"),
    ]
    assert report_of(events)["safety"]["crs"]["median_onset_day"] == 1.5


def test_median_duration_is_per_event_not_per_patient() -> None:
    events = [
        infusion(at(0)),
        crs(2, at(1), ae_id="A", resolved=at(2), reported=at(3)),
        crs(2, at(4), ae_id="B", resolved=at(6), reported=at(7)),
        crs(1, at(8), ae_id="C", resolved=at(14), reported=at(15)),
    ]
    assert report_of(events)["safety"]["crs"]["median_duration_days"] == 2.0


def test_median_duration_counts_only_events_resolved_by_as_of() -> None:
    events = [
        infusion(at(0)),
        crs(2, at(1), ae_id="A", resolved=at(3), reported=at(3)),
        crs(2, at(2), ae_id="B", resolved=at(12), reported=at(4)),
    ]
    assert report_of(events, as_of=at(10))["safety"]["crs"]["median_duration_days"] == 2.0
    assert report_of(events, as_of=at(12))["safety"]["crs"]["median_duration_days"] == 6.0


def test_withdrawn_events_leave_every_toxicity_figure() -> None:
    events = [
        infusion(at(0)),
        crs(4, at(1), resolved=at(3), reported=at(3)),
        crs(4, at(1), reported=at(5), status="entered_in_error"),
    ]
    crs_figures = report_of(events)["safety"]["crs"]
    assert crs_figures["any"] == {"n": 0, "rate": 0.0}
    assert crs_figures["median_onset_day"] is None
    assert crs_figures["median_duration_days"] is None


def test_a_grade_five_counts_in_by_grade_and_as_grade_three_plus() -> None:
    crs_figures = report_of([infusion(at(0)), crs(5, at(3))])["safety"]["crs"]
    assert crs_figures["by_grade"]["5"] == 1
    assert crs_figures["grade3plus"]["n"] == 1


# --- trials and as_of -------------------------------------------------------------------


def test_one_report_per_trial_sorted_by_trial_id() -> None:
    events = [
        infusion(at(0), trial="T2", patient="A"),
        infusion(at(0), trial="T10", patient="A"),
        infusion(at(0), trial="T1", patient="A"),
        infusion(at(0), trial="T1", patient="B"),
    ]
    reports = reports_of(events)
    assert [r["trial_id"] for r in reports] == ["T1", "T10", "T2"]
    assert [r["n_infused"] for r in reports] == [2, 1, 1]


def test_the_same_patient_id_in_two_trials_is_two_patients() -> None:
    events = [
        infusion(at(0), trial="T1"),
        marrow_blasts(1.0, at(28), trial="T1"),
        infusion(at(0), trial="T2"),
    ]
    t1, t2 = reports_of(events)
    assert (t1["efficacy"]["remission"]["n"], t2["efficacy"]["remission"]["n"]) == (1, 0)


@pytest.mark.parametrize(
    ("as_of", "n_infused", "remissions", "deaths"),
    [(at(-1), 0, 0, 0), (at(0), 3, 0, 0), (at(9), 3, 0, 0), (at(30), 4, 2, 0), (at(200), 4, 2, 1)],
)
def test_figures_as_of_an_instant_count_only_events_up_to_it(
    as_of: str, n_infused: int, remissions: int, deaths: int
) -> None:
    report = report_of(cohort(), as_of=as_of)
    assert report["n_infused"] == n_infused
    assert report["efficacy"]["remission"]["n"] == remissions
    assert report["safety"]["deaths"]["n"] == deaths
