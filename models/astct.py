"""ASTCT 2019 consensus grades of CRS and ICANS derived from bedside observations.

Source of every threshold: Lee DW et al., "ASTCT Consensus Grading for Cytokine Release
Syndrome and Neurologic Toxicity Associated with Immune Effector Cells", Biol Blood
Marrow Transplant 2019;25(4):625-638 (Table 2: CRS; Tables 4-5: ICE score and ICANS for
adults). Pure functions: observations in, a grade out; times are POSIX seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Table 2: "Fever is defined as temperature >= 38 C."
FEVER_C = 38.0
# Table 2 footnote: hypotension is systolic blood pressure below 90 mmHg (adults).
HYPOTENSION_BELOW_MMHG = 90.0
# Table 2: "low-flow nasal cannula is defined as oxygen delivered at <= 6 L/minute".
LOW_FLOW_MAX_LPM = 6.0
# Table 2 gives no time frame for fever, hypotension and hypoxia to coincide; cartwatch
# counts them together when at most this far apart (configurable: CARTWATCH_CRS_WINDOW_H).
DEFAULT_CRS_WINDOW_S = 24 * 3600.0

# Table 2, hypoxia by the support it needs: 2 blow-by or low-flow cannula <= 6 L/min;
# 3 high-flow cannula (> 6 L/min), facemask, non-rebreather or Venturi mask; 4 positive
# pressure (CPAP, BiPAP, intubation and mechanical ventilation).
HYPOXIA_GRADE_BY_DEVICE = {
    "room_air": 0,
    "blow_by": 2,
    "low_flow_cannula": 2,
    "high_flow_cannula": 3,
    "facemask": 3,
    "nonrebreather": 3,
    "venturi": 3,
    "cpap": 4,
    "bipap": 4,
    "mechanical_ventilation": 4,
}
# Table 5 (adults): ICE 7-9 grade 1, 3-6 grade 2, 0-2 grade 3 (0 and unarousable: grade
# 4, carried by the consciousness domain); depressed consciousness: awakens to voice 2,
# to tactile stimulus 3, unarousable 4; seizure: rapidly resolving 3, prolonged (> 5 min)
# or repetitive without return to baseline 4; deep focal motor weakness 4; cerebral
# edema: focal/local on imaging 3, diffuse 4.
CONSCIOUSNESS_GRADE = {"awake": 0, "awakens_to_voice": 2, "awakens_to_touch": 3, "unarousable": 4}
SEIZURE_GRADE = {"none": 0, "self_limiting": 3, "prolonged": 4}
EDEMA_GRADE = {"none": 0, "focal": 3, "diffuse": 4}

ICANS_CODES = frozenset(
    {"ice_score", "consciousness", "seizure", "motor_weakness", "cerebral_edema"}
)
CRS_CODES = frozenset({"temperature_c", "systolic_bp_mmhg", "vasopressors", "oxygen"})

Observed = tuple[float, str, object]  # (time, code, value)


@dataclass(frozen=True, slots=True)
class CrsSigns:
    """What ASTCT CRS grading reads at one moment."""

    fever: bool
    anti_cytokine_given: bool  # after antipyretic or anti-cytokine therapy fever is not needed
    hypotension: int  # 0, or its grade 2-4
    hypoxia: int  # 0, or its grade 2-4


def is_fever(temperature_c: float) -> bool:
    """Table 2: temperature >= 38.0 C."""
    return temperature_c >= FEVER_C


def hypotension_grade(systolic_mmhg: float | None = None, vasopressors: int | None = None) -> int:
    """Table 2: hypotension graded by its treatment (vasopressin is never in the count)."""
    if vasopressors is not None and vasopressors >= 2:
        return 4  # "requiring multiple vasopressors (excluding vasopressin)"
    if vasopressors == 1:
        return 3  # "requiring a vasopressor with or without vasopressin"
    if systolic_mmhg is not None and systolic_mmhg < HYPOTENSION_BELOW_MMHG:
        return 2  # "not requiring vasopressors"
    return 0


def hypoxia_grade(device: str, flow_lpm: float | None) -> int:
    """Table 2: hypoxia graded by oxygen support; a low-flow cannula above 6 L/min is 3."""
    grade = HYPOXIA_GRADE_BY_DEVICE[device]
    if device == "low_flow_cannula" and flow_lpm is not None and flow_lpm > LOW_FLOW_MAX_LPM:
        return 3
    return grade


def crs_grade(signs: CrsSigns) -> int:
    """Table 2: fever required (unless treated); grade is the worse of hypotension, hypoxia."""
    if not (signs.fever or signs.anti_cytokine_given):
        return 0
    organ = max(signs.hypotension, signs.hypoxia)
    if organ:
        return organ
    return 1 if signs.fever else 0


def crs_sign_of(code: str, value: object) -> int:
    """The CRS level one observation points to: 1 fever, 2-4 hypotension or hypoxia, else 0."""
    if code == "temperature_c":
        return 1 if is_fever(value) else 0  # type: ignore[arg-type]
    if code == "systolic_bp_mmhg":
        return hypotension_grade(systolic_mmhg=value)  # type: ignore[arg-type]
    if code == "vasopressors":
        return hypotension_grade(vasopressors=value)  # type: ignore[arg-type]
    if code == "oxygen":
        device, flow = value  # type: ignore[misc]
        return hypoxia_grade(device, flow)
    return 0


def icans_domain_grade(code: str, value: object) -> int:
    """Table 5: the ICANS grade one neurological observation points to."""
    if code == "ice_score":
        score = int(value)  # type: ignore[call-overload]
        return 0 if score == 10 else 1 if score >= 7 else 2 if score >= 3 else 3
    if code == "consciousness":
        return CONSCIOUSNESS_GRADE[value]  # type: ignore[index]
    if code == "seizure":
        return SEIZURE_GRADE[value]  # type: ignore[index]
    if code == "motor_weakness":
        return 4 if value else 0
    if code == "cerebral_edema":
        return EDEMA_GRADE[value]  # type: ignore[index]
    return 0


def peak_icans_grade(observations: Iterable[Observed]) -> int:
    """Highest ICANS grade: the most severe domain of any neurological observation."""
    grades = (icans_domain_grade(c, v) for _, c, v in observations if c in ICANS_CODES)
    return max(grades, default=0)


def peak_crs_grade(
    observations: Iterable[Observed],
    anti_cytokine_from: float | None,
    window_s: float = DEFAULT_CRS_WINDOW_S,
) -> int:
    """Highest CRS grade over every window of `window_s` (both ends included).

    Fever, hypotension and hypoxia count together when at most `window_s` apart.
    Hypotension or hypoxia observed at or after `anti_cytokine_from` counts without fever
    (Table 2 footnote: antipyretics and anti-cytokine therapy mask fever). The peak is a
    function of the set of observations, whatever order they arrived in.
    """
    marks = [
        (t, level) for t, c, v in observations if c in CRS_CODES and (level := crs_sign_of(c, v))
    ]
    return peak_of_crs_marks(marks, anti_cytokine_from, window_s)


def peak_of_crs_marks(
    marks: list[tuple[float, int]], anti_cytokine_from: float | None, window_s: float
) -> int:
    """`peak_crs_grade` of the observations' marks: (time, `crs_sign_of`) of those that point
    to a sign (level > 0), in any order (sorted here, in place)."""
    marks.sort()
    counts = [0] * 5  # marks in the window by level (1 = fever)
    treated = [0] * 5  # hypotension and hypoxia marks at or after the first treatment
    peak, start = 0, 0
    for t, level in marks:
        after = anti_cytokine_from is not None and anti_cytokine_from <= t
        counts[level] += 1
        treated[level] += after
        while marks[start][0] < t - window_s:
            old_t, old_level = marks[start]
            counts[old_level] -= 1
            treated[old_level] -= anti_cytokine_from is not None and anti_cytokine_from <= old_t
            start += 1
        fever = counts[1] > 0
        signs = counts if fever else treated
        organ = 4 if signs[4] else 3 if signs[3] else 2 if signs[2] else 0  # the worst one
        peak = max(peak, _CRS_GRADE[fever, after, organ])
    return peak


# `crs_grade` of every (fever, treated, worst organ grade) the window walk meets: a look-up
# per mark instead of a CrsSigns and a call.
_CRS_GRADE = {
    (fever, treated, organ): crs_grade(CrsSigns(fever, treated, organ, 0))
    for fever in (False, True)
    for treated in (False, True)
    for organ in (0, 2, 3, 4)
}
