"""Threshold rules of CONTRACT section 4, as pure functions over a patient's record."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from cartwatch.alerts.early_warnings import (
    LabWarning,
    WarningThresholds,
    fold_rise_warning,
    modified_easix_series,
    peak_warning,
)
from cartwatch.alerts.model import Severity
from cartwatch.models.astct import (
    CRS_CODES,
    ICANS_CODES,
    crs_sign_of,
    icans_domain_grade,
    peak_icans_grade,
    peak_of_crs_marks,
)
from cartwatch.models.dlt import DltCourse, dlt_course, toxicity_status
from cartwatch.models.events import Analyte, Event, Lab
from cartwatch.models.outcomes import counted_toxicities, worst_grade
from cartwatch.models.patient import PatientRecord
from cartwatch.models.stopping import StoppingConfig, compute_boundary


@dataclass(frozen=True, slots=True)
class Crossing:
    """A rule reaching a new level for one patient; the engine turns it into an alert."""

    rule: str
    level: int
    value: float
    threshold: float
    severity: Severity
    message: str


@config_dataclass(frozen=True, slots=True)
class RuleThresholds:
    """Configurable thresholds (CARTWATCH_RULES__*, docs/ALERT_RULES.md); defaults are the
    contract's. The one home of every rule's default: the settings nest this model."""

    crs_grade_min: Annotated[int, Field(ge=1, le=5)] = 2  # CONTRACT 4: crs_grade from 2
    icans_grade_min: Annotated[int, Field(ge=1, le=5)] = 1  # CONTRACT 4: icans_grade from 1
    # Derived ASTCT grades fire from the same grades as the reported ones.
    crs_derived_min: Annotated[int, Field(ge=1, le=4)] = 2
    icans_derived_min: Annotated[int, Field(ge=1, le=4)] = 1
    # Fever, hypotension and hypoxia count together within it (models/astct.py).
    crs_window_h: Annotated[float, Field(gt=0)] = 24.0
    warnings: WarningThresholds = field(default_factory=WarningThresholds)
    toxicity: StoppingConfig = field(default_factory=StoppingConfig)


def _grade_severity(level: int, warning_from: int) -> Severity:
    # CONTRACT 4: grade 3-5 critical for both; CRS 2 and ICANS 1-2 warning.
    if level >= 3:
        return "critical"
    return "warning" if level >= warning_from else "info"


def _evaluate_grade(
    record: PatientRecord, rule: str, term: str, minimum: int, warning_from: int
) -> Crossing | None:
    if not record.infusions:
        return None
    grade = worst_grade(counted_toxicities(record, min(record.infusions), None), term)
    what = f"{term} reached ASTCT grade {grade}"
    return _grade_crossing(record, rule, grade, minimum, warning_from, what)


def _grade_crossing(
    record: PatientRecord, rule: str, grade: int, minimum: int, warning_from: int, what: str
) -> Crossing | None:
    """A crossing when `grade` is at or above the minimum and above the level already fired."""
    if grade < minimum or grade <= record.alerted.get(rule, 0):
        return None
    return Crossing(
        rule=rule,
        level=grade,
        value=grade,
        threshold=minimum,
        severity=_grade_severity(grade, warning_from),
        message=f"{what} (alert threshold: grade {minimum}).",
    )


def evaluate_crs_grade(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`crs_grade`: the patient's CRS worst grade reaches a new level at or above the minimum."""
    return _evaluate_grade(record, "crs_grade", "CRS", thresholds.crs_grade_min, 2)


def evaluate_icans_grade(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`icans_grade`: the ICANS worst grade reaches a new level at or above the minimum."""
    return _evaluate_grade(record, "icans_grade", "ICANS", thresholds.icans_grade_min, 1)


def _observed(record: PatientRecord, codes: frozenset[str]) -> Iterator[tuple[float, str, object]]:
    """The observations of `codes` at or after the first infusion (derived grades are
    post-infusion)."""
    t0 = min(record.infusions)
    for code, rows in record.observations.items():
        if code in codes:
            yield from ((t, code, v) for t, v in rows if t >= t0)


def _derived(
    record: PatientRecord, rule: str, term: str, grade: int, minimum: int, warning_from: int
) -> Crossing | None:
    what = f"bedside observations meet ASTCT {term} grade {grade}"
    return _grade_crossing(record, rule, grade, minimum, warning_from, what)


def evaluate_crs_derived(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`crs_derived`: the ASTCT CRS grade derived from observations reaches a new level."""
    if not record.infusions:
        return None
    t0 = min(record.infusions)
    rows = record.observations.get("anti_cytokine_given", [])
    treated = min((t for t, given in rows if given and t >= t0), default=None)
    observations = record.observations
    marks = [  # `peak_crs_grade`'s marks of the post-infusion observations, read in place
        (t, level)
        for code in CRS_CODES
        for t, v in observations.get(code, ())
        if t >= t0 and (level := crs_sign_of(code, v))
    ]
    grade = peak_of_crs_marks(marks, treated, thresholds.crs_window_h * 3600)
    return _derived(record, "crs_derived", "CRS", grade, thresholds.crs_derived_min, 2)


def evaluate_icans_derived(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`icans_derived`: the ASTCT ICANS grade derived from observations reaches a new level."""
    if not record.infusions:
        return None
    grade = peak_icans_grade(_observed(record, ICANS_CODES))
    return _derived(record, "icans_derived", "ICANS", grade, thresholds.icans_derived_min, 1)


def _lab_crossing(
    record: PatientRecord, rule: str, warning: LabWarning, what: str
) -> Crossing | None:
    if warning.level == 0 or warning.level <= record.alerted.get(rule, 0):
        return None
    message = what.format(value=warning.value, threshold=warning.threshold)
    value = round(warning.value, 3)
    return Crossing(rule, warning.level, value, warning.threshold, warning.severity, message)


def _fold_rule(analyte: str, name: str):
    rule = f"{analyte.lower()}_fold_rise"

    def evaluate(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
        if not record.infusions:
            return None
        warning = fold_rise_warning(record, analyte, thresholds.warnings)
        hours = thresholds.warnings.cytokine_window_h
        what = (
            f"{name} rose {{value:.0f}}-fold over the pre-infusion baseline within"
            f" {hours:g} h of infusion (threshold {{threshold:g}}-fold)."
        )
        return _lab_crossing(record, rule, warning, what)

    evaluate.__name__ = f"evaluate_{rule}"
    evaluate.__doc__ = f"`{rule}`: {name} fold rise over its baseline soon after infusion."
    return evaluate


evaluate_il6_fold_rise = _fold_rule("IL6", "IL-6")
evaluate_ifng_fold_rise = _fold_rule("IFNG", "IFN-gamma")


def _post_infusion_values(record: PatientRecord, analyte: str) -> list[float]:
    t0 = min(record.infusions)
    return [v for t, v in record.labs.get(analyte, []) if t >= t0]


def evaluate_ferritin_high(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`ferritin_high`: a post-infusion ferritin above the HLH-like threshold."""
    if not record.infusions:
        return None
    values = _post_infusion_values(record, "FERRITIN")
    warning = peak_warning(values, thresholds.warnings.ferritin_ng_ml, "warning", strictly=True)
    what = "ferritin {value:.0f} ng/mL exceeds {threshold:g} ng/mL: consider HLH-like toxicity."
    return _lab_crossing(record, "ferritin_high", warning, what)


def evaluate_crp_high(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`crp_high`: a post-infusion CRP at or above the severe-CRS threshold."""
    if not record.infusions:
        return None
    values = _post_infusion_values(record, "CRP")
    warning = peak_warning(values, thresholds.warnings.crp_mg_l, "warning")
    what = "CRP {value:g} mg/L reached {threshold:g} mg/L, a marker of severe CRS."
    return _lab_crossing(record, "crp_high", warning, what)


def evaluate_modified_easix(record: PatientRecord, thresholds: RuleThresholds) -> Crossing | None:
    """`modified_easix`: LDH x CRP / platelets after infusion reaches the configured level."""
    if not record.infusions:
        return None
    values = [v for _, v in modified_easix_series(record)]
    warning = peak_warning(values, thresholds.warnings.modified_easix, "info")
    what = "modified EASIX (LDH x CRP / platelets) {value:.1f} reached {threshold:g}."
    return _lab_crossing(record, "modified_easix", warning, what)


PATIENT_RULES = (
    evaluate_crs_grade,
    evaluate_icans_grade,
    evaluate_crs_derived,
    evaluate_icans_derived,
    evaluate_il6_fold_rise,
    evaluate_ifng_fold_rise,
    evaluate_ferritin_high,
    evaluate_crp_high,
    evaluate_modified_easix,
)

# The inputs each patient rule reads besides the infusion (which moves t0 for all of them).
# A rule's result can only change when one of its inputs does, so the engine evaluates a
# rule only after such an event: the alerts are the same, the work per event much less.
CRS_DERIVED_INPUTS = CRS_CODES | {"anti_cytokine_given"}  # treatment: signs without fever
RULE_INPUTS = {
    evaluate_crs_grade: frozenset({"adverse_event"}),
    evaluate_icans_grade: frozenset({"adverse_event"}),
    evaluate_crs_derived: frozenset(f"observation:{code}" for code in CRS_DERIVED_INPUTS),
    evaluate_icans_derived: frozenset(f"observation:{code}" for code in ICANS_CODES),
    evaluate_il6_fold_rise: frozenset({"lab:IL6"}),
    evaluate_ifng_fold_rise: frozenset({"lab:IFNG"}),
    evaluate_ferritin_high: frozenset({"lab:FERRITIN"}),
    evaluate_crp_high: frozenset({"lab:CRP"}),
    evaluate_modified_easix: frozenset({"lab:LDH", "lab:CRP", "lab:PLT"}),
}
# input key -> the rules it feeds, in PATIENT_RULES order (the order alerts are raised in)
_RULES_BY_INPUT: dict[str, tuple] = {}
for _rule in PATIENT_RULES:
    for _key in RULE_INPUTS[_rule]:
        _RULES_BY_INPUT[_key] = (*_RULES_BY_INPUT.get(_key, ()), _rule)


_LAB_INPUT_KEYS = {analyte: f"lab:{analyte.value}" for analyte in Analyte}


def input_key(event: Event) -> str:
    """What kind of input an event is for the rules: its type, `lab:<analyte>`,
    `observation:<code>`, or `observation:no_sign` for an observation that points to no
    CRS or ICANS sign (a normal temperature, an ICE score of 10, no treatment given): the
    derived grades read only signs, so such an observation cannot change them."""
    if isinstance(event, Lab):
        return _LAB_INPUT_KEYS[event.analyte]
    if event.type == "observation":
        code, value = event.code, event.value  # type: ignore[union-attr]
        if code == "oxygen":
            value = (value.device, value.flow_lpm)
        if code in CRS_CODES:
            signed = crs_sign_of(code, value) > 0
        elif code in ICANS_CODES:
            signed = icans_domain_grade(code, value) > 0
        elif code == "anti_cytokine_given":
            signed = value is True
        else:
            signed = True
        return f"observation:{code}" if signed else "observation:no_sign"
    return event.type


def rules_for(event: Event) -> tuple:
    """The patient rules whose result `event` can change, in PATIENT_RULES order."""
    if event.type == "infusion":
        return PATIENT_RULES
    return _RULES_BY_INPUT.get(input_key(event), ())


TOXICITY_BOUNDARY = "toxicity_boundary"
METHOD_NAMES = {
    "bayes": "Bayesian beta-binomial (Geller 2003)",
    "pocock": "Pocock-type (Ivanova 2005)",
}


def evaluate_toxicity_boundary(
    trial: Iterable[PatientRecord | DltCourse], config: StoppingConfig, already_fired_level: int
) -> Crossing | None:
    """`toxicity_boundary` (trial level): the DLT count has crossed the stopping boundary."""
    if already_fired_level >= 1:
        return None  # one crossing per trial: the rule has a single level
    courses = [c if isinstance(c, DltCourse) else dlt_course(c, config) for c in trial]
    status = toxicity_status([c for c in courses if c is not None], config)
    if status.crossed_at is None:
        return None
    n, dlts = status.crossed_at
    method = METHOD_NAMES[config.method]
    return Crossing(
        rule=TOXICITY_BOUNDARY,
        level=1,
        value=dlts,
        threshold=compute_boundary(config).stop_at(n),
        severity="critical",
        message=(
            f"{dlts} of {n} evaluable patients had a dose-limiting toxicity, reaching the "
            f"{method} stopping boundary (p0 {config.p0:g}, alpha {config.alpha:g})."
        ),
    )
