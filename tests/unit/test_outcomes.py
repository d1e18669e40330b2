"""CONTRACT section 2: the per-patient definitions, edge by edge.

Long (over 400 lines) for a reason: one module mirrors the one section of the contract,
definition by definition, so a reader checks the section against it in one place.
"""

from __future__ import annotations

import pytest

from cartwatch.models.outcomes import DAY, worst_grade
from tests.unit.builders import (
    adverse_event,
    at,
    blood_blasts,
    crs,
    decode,
    disposition,
    epoch,
    icans,
    infusion,
    lab,
    marrow_blasts,
    observation,
    outcome_of,
    record_of,
    recovered_counts,
)

T0 = at(0)


def infused() -> dict:
    return infusion(T0)


# --- infused, t0 ---------------------------------------------------------------------


def test_a_patient_without_an_infusion_has_no_outcome() -> None:
    assert outcome_of(marrow_blasts(2.0, at(30)), disposition("death", at(40))) is None


def test_t0_is_the_earliest_infusion_even_when_it_arrives_last() -> None:
    outcome = outcome_of(infusion(at(10)), infusion(at(0)), marrow_blasts(2.0, at(5)))
    assert outcome.t0 == epoch(at(0))
    assert outcome.remission_onset == epoch(at(5))


def test_an_infusion_after_as_of_does_not_make_the_patient_infused() -> None:
    assert outcome_of(infusion(at(10)), as_of=at(9)) is None


# --- remission assessment ------------------------------------------------------------


def test_marrow_blasts_exactly_five_is_not_a_remission() -> None:
    outcome = outcome_of(infused(), marrow_blasts(5.0, at(28)))
    assert outcome.remission_onset is None
    assert outcome.best_response is None


def test_marrow_blasts_of_4_99_is_a_remission() -> None:
    outcome = outcome_of(infused(), marrow_blasts(4.99, at(28)))
    assert outcome.remission_onset == epoch(at(28))
    assert outcome.best_response == "CRi"


def test_a_marrow_at_exactly_t0_is_not_a_remission_assessment() -> None:
    assert outcome_of(infused(), marrow_blasts(0.0, T0)).remission_onset is None


def test_a_marrow_one_second_after_t0_is_a_remission_assessment() -> None:
    outcome = outcome_of(infused(), marrow_blasts(0.0, at(0, seconds=1)))
    assert outcome.remission_onset == epoch(at(0, seconds=1))


def test_a_marrow_before_t0_is_not_a_remission_assessment() -> None:
    assert outcome_of(marrow_blasts(1.0, at(-3)), infused()).remission_onset is None


def test_remission_onset_is_the_first_assessment() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(56)), marrow_blasts(3.0, at(28)))
    assert outcome.remission_onset == epoch(at(28))


# --- CR versus CRi -----------------------------------------------------------------


@pytest.mark.parametrize("offset", [-7, 7, 0])
def test_counts_exactly_seven_days_away_make_a_cr(offset: int) -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(28)), recovered_counts(at(28 + offset)))
    assert outcome.best_response == "CR"


@pytest.mark.parametrize("seconds", [-(7 * 86400 + 1), 7 * 86400 + 1])
def test_counts_seven_days_and_one_second_away_leave_a_cri(seconds: int) -> None:
    counts = recovered_counts(at(28, seconds=seconds))
    assert outcome_of(infused(), marrow_blasts(1.0, at(28)), counts).best_response == "CRi"


def test_anc_exactly_one_and_plt_exactly_one_hundred_make_a_cr() -> None:
    counts = recovered_counts(at(30), anc=1.0, plt=100)
    assert outcome_of(infused(), marrow_blasts(1.0, at(28)), counts).best_response == "CR"


@pytest.mark.parametrize(("anc", "plt"), [(0.99, 150), (1.5, 99.9), (0.5, 20)])
def test_anc_below_one_or_plt_below_one_hundred_leave_a_cri(anc: float, plt: float) -> None:
    counts = recovered_counts(at(30), anc=anc, plt=plt)
    assert outcome_of(infused(), marrow_blasts(1.0, at(28)), counts).best_response == "CRi"


def test_anc_and_plt_may_be_measured_on_different_days_within_the_window() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(28)),
        lab("ANC", 1.2, at(22)),
        lab("PLT", 130, at(34)),
    ]
    assert outcome_of(*events).best_response == "CR"


def test_one_count_outside_the_window_leaves_a_cri() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(28)),
        lab("ANC", 1.2, at(22)),
        lab("PLT", 130, at(36)),
    ]
    assert outcome_of(*events).best_response == "CRi"


def test_counts_in_thousands_per_microlitre_are_judged_after_conversion() -> None:
    counts = [lab("ANC", 1.0, at(29), unit="K/uL"), lab("PLT", 100, at(29), unit="10^3/uL")]
    assert outcome_of(infused(), marrow_blasts(1.0, at(28)), counts).best_response == "CR"


def test_a_later_assessment_with_counts_upgrades_a_cri_to_cr() -> None:
    events = [infused(), marrow_blasts(1.0, at(28)), marrow_blasts(0.5, at(90))]
    outcome = outcome_of(*events, recovered_counts(at(91)))
    assert outcome.best_response == "CR"
    assert outcome.remission_onset == epoch(at(28))


def test_best_response_counts_only_assessments_before_relapse() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(28)),
        blood_blasts(4.0, at(60)),
        marrow_blasts(0.5, at(90)),
        recovered_counts(at(90)),
    ]
    outcome = outcome_of(*events)
    assert outcome.relapse_at == epoch(at(60))
    assert outcome.best_response == "CRi"


def test_a_cr_assessment_before_relapse_stays_a_cr() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(28)),
        recovered_counts(at(30)),
        marrow_blasts(40, at(60)),
    ]
    assert outcome_of(*events).best_response == "CR"


# --- relapse -----------------------------------------------------------------------


def test_blood_blasts_exactly_one_after_onset_is_a_relapse() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(28)), blood_blasts(1.0, at(60)))
    assert outcome.relapse_at == epoch(at(60))


def test_blood_blasts_of_0_99_after_onset_is_not_a_relapse() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(28)), blood_blasts(0.99, at(60)))
    assert outcome.relapse_at is None


def test_marrow_blasts_exactly_five_after_onset_is_a_relapse() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(28)), marrow_blasts(5.0, at(90)))
    assert outcome.relapse_at == epoch(at(90))


def test_marrow_blasts_of_five_at_the_instant_of_onset_is_not_a_relapse() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(28)), marrow_blasts(7.0, at(28)))
    assert outcome.remission_onset == epoch(at(28))
    assert outcome.relapse_at is None


def test_blood_blasts_before_onset_are_not_a_relapse() -> None:
    outcome = outcome_of(infused(), blood_blasts(12.0, at(14)), marrow_blasts(1.0, at(28)))
    assert outcome.relapse_at is None


def test_relapse_is_the_first_qualifying_blasts_after_onset() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(28)),
        marrow_blasts(30, at(120)),
        blood_blasts(2, at(100)),
    ]
    assert outcome_of(*events).relapse_at == epoch(at(100))


def test_without_remission_there_is_no_relapse() -> None:
    outcome = outcome_of(infused(), marrow_blasts(50, at(28)), blood_blasts(20, at(60)))
    assert outcome.relapse_at is None


# --- MRD ---------------------------------------------------------------------------


def mrd_negative(*events: dict) -> bool:
    return outcome_of(infused(), marrow_blasts(1.0, at(28)), *events).mrd_negative


def test_mrd_exactly_0_01_is_not_negative() -> None:
    assert not mrd_negative(lab("MRD", 0.01, at(28)))


def test_mrd_of_0_0099_is_negative() -> None:
    assert mrd_negative(lab("MRD", 0.0099, at(28)))


def test_mrd_measured_at_remission_onset_counts() -> None:
    assert mrd_negative(lab("MRD", 0.0, at(28)))


def test_mrd_before_remission_onset_does_not_count() -> None:
    assert not mrd_negative(lab("MRD", 0.0, at(27)))


def test_mrd_at_the_instant_of_relapse_does_not_count() -> None:
    assert not mrd_negative(blood_blasts(3.0, at(60)), lab("MRD", 0.001, at(60)))


def test_mrd_after_relapse_does_not_count() -> None:
    assert not mrd_negative(blood_blasts(3.0, at(60)), lab("MRD", 0.001, at(70)))


def test_mrd_before_relapse_counts() -> None:
    assert mrd_negative(lab("MRD", 0.001, at(59)), blood_blasts(3.0, at(60)))


def test_mrd_without_a_remission_is_not_negative() -> None:
    assert not outcome_of(infused(), lab("MRD", 0.0, at(28))).mrd_negative


# --- death, DOR --------------------------------------------------------------------


def test_death_is_the_earliest_death_disposition() -> None:
    outcome = outcome_of(infused(), disposition("death", at(90)), disposition("death", at(80)))
    assert outcome.death_at == epoch(at(80))


def test_dor_ends_at_relapse() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(30)), marrow_blasts(9, at(120)))
    assert (outcome.dor_days, outcome.dor_event) == (90, True)


def test_dor_ends_at_death_when_death_comes_before_relapse() -> None:
    events = [infused(), marrow_blasts(1.0, at(30)), marrow_blasts(9, at(120))]
    outcome = outcome_of(*events, disposition("death", at(100)))
    assert (outcome.dor_days, outcome.dor_event) == (70, True)


def test_dor_ends_at_relapse_when_relapse_comes_before_death() -> None:
    events = [infused(), marrow_blasts(1.0, at(30)), blood_blasts(2, at(80))]
    outcome = outcome_of(*events, disposition("death", at(100)))
    assert (outcome.dor_days, outcome.dor_event) == (50, True)


def test_dor_without_event_is_censored_at_the_last_blasts_assessment() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(30)),
        marrow_blasts(0.5, at(60)),
        blood_blasts(0.2, at(75)),
        recovered_counts(at(100)),
        observation("temperature_c", 37.0, at(110)),
        disposition("withdrawn", at(120)),
    ]
    outcome = outcome_of(*events)
    assert (outcome.dor_days, outcome.dor_event) == (45, False)


def test_dor_with_only_the_onset_marrow_is_censored_at_zero() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(30)), lab("ANC", 2.0, at(60)))
    assert (outcome.dor_days, outcome.dor_event) == (0, False)


def test_no_remission_means_no_dor() -> None:
    outcome = outcome_of(infused(), marrow_blasts(50, at(30)), disposition("death", at(40)))
    assert outcome.dor_days is None
    assert outcome.dor_event is False


def test_dor_is_in_exact_seconds_over_86400() -> None:
    events = [infused(), marrow_blasts(1.0, at(30)), blood_blasts(5, at(30, seconds=3600))]
    assert outcome_of(*events).dor_days == 3600 / DAY


# --- follow-up ---------------------------------------------------------------------


def test_follow_up_ends_at_death_and_death_censors_it() -> None:
    outcome = outcome_of(infused(), disposition("death", at(200)), lab("LDH", 300, at(250)))
    assert (outcome.follow_up_days, outcome.follow_up_event) == (200, False)


@pytest.mark.parametrize("status", ["withdrawn", "lost_to_follow_up"])
def test_follow_up_ends_at_withdrawal_or_loss_as_an_event(status: str) -> None:
    outcome = outcome_of(infused(), disposition(status, at(150)), disposition("death", at(200)))
    assert (outcome.follow_up_days, outcome.follow_up_event) == (150, True)


def test_follow_up_ends_at_the_earliest_disposition() -> None:
    events = [infused(), disposition("lost_to_follow_up", at(160)), disposition("death", at(140))]
    outcome = outcome_of(*events)
    assert (outcome.follow_up_days, outcome.follow_up_event) == (140, False)


def test_follow_up_without_disposition_runs_to_the_latest_event_of_any_type() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(30)),
        observation("ice_score", 10, at(250)),
        lab("CRP", 3.0, at(200)),
    ]
    outcome = outcome_of(*events)
    assert (outcome.follow_up_days, outcome.follow_up_event) == (250, True)


def test_follow_up_counts_an_adverse_event_report_as_an_event() -> None:
    outcome = outcome_of(infused(), crs(1, at(2), reported=at(40)))
    assert outcome.follow_up_days == 40


def test_follow_up_as_of_stops_at_the_latest_counted_event() -> None:
    events = [
        infused(),
        lab("CRP", 3.0, at(20)),
        lab("CRP", 3.0, at(50)),
        disposition("death", at(60)),
    ]
    outcome = outcome_of(*events, as_of=at(45))
    assert (outcome.follow_up_days, outcome.follow_up_event) == (20, True)
    assert outcome.death_at is None


# --- adverse events ----------------------------------------------------------------


def toxicities(*events: dict, as_of: str | None = None):
    return outcome_of(*events, as_of=as_of).toxicities


def test_an_adverse_event_with_onset_before_t0_is_not_counted() -> None:
    assert toxicities(infused(), crs(3, at(0, seconds=-1), reported=at(1))) == []


def test_an_adverse_event_with_onset_exactly_at_t0_is_counted() -> None:
    assert worst_grade(toxicities(infused(), crs(3, T0)), "CRS") == 3


def test_an_infusion_arriving_after_its_adverse_event_report_still_counts_it() -> None:
    assert worst_grade(toxicities(crs(2, at(3)), infused()), "CRS") == 2


def test_an_earlier_infusion_arriving_later_makes_an_early_onset_count() -> None:
    events = [infusion(at(5)), crs(2, at(3)), infusion(at(1))]
    assert worst_grade(toxicities(*events), "CRS") == 2


def test_the_grade_is_the_worst_of_all_reports() -> None:
    events = [infused(), crs(3, at(2), reported=at(3)), crs(2, at(2), reported=at(6))]
    (tox,) = toxicities(*events)
    assert tox.grade == 3


def test_onset_and_resolution_come_from_the_latest_report_by_event_time() -> None:
    latest = crs(2, at(3), reported=at(9), resolved=at(8))
    earlier = crs(1, at(2), reported=at(4))
    for order in ([earlier, latest], [latest, earlier]):
        (tox,) = toxicities(infused(), *order)
        assert (tox.grade, tox.onset, tox.resolved) == (2, epoch(at(3)), epoch(at(8)))


def test_a_later_report_without_resolution_reopens_the_event() -> None:
    events = [
        infused(),
        crs(2, at(2), reported=at(5), resolved=at(5)),
        crs(2, at(2), reported=at(7)),
    ]
    (tox,) = toxicities(*events)
    assert tox.resolved is None


def test_reports_at_the_same_instant_are_ordered_by_arrival() -> None:
    first = crs(2, at(2), reported=at(6))
    second = crs(2, at(2), reported=at(6), resolved=at(5))
    (tox,) = toxicities(infused(), first, second)
    assert tox.resolved == epoch(at(5))
    (tox,) = toxicities(infused(), second, first)
    assert tox.resolved is None


def test_a_latest_report_moving_onset_before_t0_uncounts_the_event() -> None:
    events = [infused(), crs(3, at(2), reported=at(3)), crs(3, at(-1), reported=at(4))]
    assert toxicities(*events) == []


def test_entered_in_error_withdraws_the_whole_event() -> None:
    events = [
        infused(),
        crs(3, at(2), reported=at(3)),
        crs(3, at(2), reported=at(4), status="entered_in_error"),
    ]
    assert toxicities(*events) == []


def test_entered_in_error_withdraws_for_good_even_after_a_later_reported_report() -> None:
    events = [
        infused(),
        crs(2, at(2), reported=at(3)),
        crs(2, at(2), reported=at(4), status="entered_in_error"),
        crs(4, at(2), reported=at(5), status="reported"),
    ]
    assert toxicities(*events) == []


def test_entered_in_error_withdraws_only_its_own_ae_id() -> None:
    events = [
        infused(),
        crs(3, at(2), ae_id="AE1"),
        crs(2, at(9), ae_id="AE2"),
        crs(3, at(2), ae_id="AE1", reported=at(4), status="entered_in_error"),
    ]
    assert worst_grade(toxicities(*events), "CRS") == 2


def test_worst_grade_is_per_term() -> None:
    events = [
        infused(),
        crs(2, at(2)),
        icans(4, at(5)),
        adverse_event("Sepsis", 5, at(8), ae_id="S"),
    ]
    tox = toxicities(*events)
    assert (worst_grade(tox, "CRS"), worst_grade(tox, "ICANS")) == (2, 4)


def test_no_event_of_a_term_is_worst_grade_zero() -> None:
    assert worst_grade(toxicities(infused(), crs(2, at(2))), "ICANS") == 0


# --- as_of -------------------------------------------------------------------------


def test_an_event_exactly_at_as_of_counts() -> None:
    assert outcome_of(infused(), marrow_blasts(1.0, at(28)), as_of=at(28)).remission_onset


def test_a_marrow_after_as_of_does_not_count() -> None:
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(28)), as_of=at(27))
    assert outcome.remission_onset is None


def test_a_later_report_raising_the_grade_after_as_of_does_not_count() -> None:
    events = [infused(), crs(2, at(2), reported=at(3)), crs(4, at(2), reported=at(6))]
    assert worst_grade(toxicities(*events, as_of=at(5)), "CRS") == 2
    assert worst_grade(toxicities(*events, as_of=at(6)), "CRS") == 4


def test_a_resolution_after_as_of_is_not_yet_a_resolution() -> None:
    events = [infused(), crs(2, at(2), reported=at(3), resolved=at(7))]
    (tox,) = toxicities(*events, as_of=at(5))
    assert tox.resolved is None
    (tox,) = toxicities(*events, as_of=at(7))
    assert tox.resolved == epoch(at(7))


def test_a_report_after_as_of_with_entered_in_error_does_not_withdraw_yet() -> None:
    events = [infused(), crs(3, at(2)), crs(3, at(2), reported=at(9), status="entered_in_error")]
    assert worst_grade(toxicities(*events, as_of=at(8)), "CRS") == 3
    assert toxicities(*events, as_of=at(9)) == []


def test_relapse_and_death_after_as_of_do_not_count() -> None:
    events = [
        infused(),
        marrow_blasts(1.0, at(28)),
        blood_blasts(3, at(60)),
        disposition("death", at(70)),
    ]
    outcome = outcome_of(*events, as_of=at(59))
    assert (outcome.relapse_at, outcome.death_at) == (None, None)
    assert (outcome.dor_days, outcome.dor_event) == (0, False)


def test_counts_measured_after_as_of_do_not_make_a_cr() -> None:
    events = [infused(), marrow_blasts(1.0, at(28)), recovered_counts(at(30))]
    assert outcome_of(*events, as_of=at(29)).best_response == "CRi"


# --- idempotency --------------------------------------------------------------------


def test_a_second_event_with_a_seen_event_id_is_ignored_whatever_it_holds() -> None:
    record = record_of(infused(), marrow_blasts(1.0, at(28), event_id="m-1"))
    changed = record.apply(decode(marrow_blasts(80.0, at(60), event_id="m-1")))
    assert changed is False
    assert record.labs["BM_BLASTS"] == [(epoch(at(28)), 1.0)]


def test_a_duplicate_of_a_different_type_is_ignored_too() -> None:
    duplicate = disposition("death", at(40), event_id="m-1")
    outcome = outcome_of(infused(), marrow_blasts(1.0, at(28), event_id="m-1"), duplicate)
    assert outcome.death_at is None
    assert outcome.follow_up_days == 28


def test_a_duplicate_adverse_event_report_does_not_change_the_event() -> None:
    events = [
        infused(),
        crs(2, at(2), event_id="r-1"),
        crs(4, at(2), reported=at(5), event_id="r-1", status="entered_in_error"),
    ]
    assert worst_grade(toxicities(*events), "CRS") == 2
