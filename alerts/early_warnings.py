"""Laboratory early warnings of severe CRS and HLH-like toxicity, as pure patient rules.

Each rule reads the labs of an infused patient, at or after the first infusion (t0), and
fires when its level rises: the level only depends on the set of labs, never on their
arrival order, because every figure is a maximum over the set (a later lab can only
raise it). Sources, thresholds and severities are listed in the README ("Alert rules").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass as config_dataclass

from cartwatch.alerts.model import Severity
from cartwatch.models.patient import PatientRecord

HOUR = 3600.0
# Baselines below an assay's usual lower limit of quantification (a few pg/mL for IL-6 and
# IFN-gamma) would make fold rises meaningless; a baseline counts as at least 1 pg/mL.
BASELINE_FLOOR_PG_ML = 1.0
# The baseline is the lowest value drawn in the 7 days up to and including the infusion.
BASELINE_LOOKBACK_S = 7 * 24 * HOUR
# A modified-EASIX panel: an LDH with the highest CRP and lowest platelets within 24 h.
PANEL_S = 24 * HOUR


@config_dataclass(frozen=True, slots=True)
class WarningThresholds:
    """Early-warning thresholds (CARTWATCH_RULES__WARNINGS__*); docs/ALERT_RULES.md."""

    # Davila ML et al., Sci Transl Med 2014;6(224):224ra25: severe CRS showed cytokine
    # rises over baseline within the first 3 days of >= 75-fold (two cytokines) or
    # >= 250-fold (one cytokine); Teachey DT et al., Cancer Discov 2016;6(6):664-679:
    # IFN-gamma and IL-6 in the first 72 h predict severe CRS.
    cytokine_fold_info: Annotated[float, Field(gt=1)] = 75.0
    cytokine_fold_warning: Annotated[float, Field(gt=1)] = 250.0
    cytokine_window_h: Annotated[float, Field(gt=0)] = 72.0
    # Neelapu SS et al., Nat Rev Clin Oncol 2018;15(1):47-62 (CARTOX): CAR-T-related
    # HLH/MAS is suspected with a peak ferritin > 10,000 ng/mL.
    ferritin_ng_ml: Annotated[float, Field(gt=0)] = 10_000.0
    # Davila 2014 (as above): CRP >= 20 mg/dL (200 mg/L) identified patients with severe CRS.
    crp_mg_l: Annotated[float, Field(gt=0)] = 200.0
    # Pennisi M et al., Blood Adv 2021;5(17):3397-3406 (modified EASIX, CRP for creatinine)
    # publish no cut-off for monitoring after infusion: cartwatch's default, an info signal
    # (e.g. LDH 500 U/L x CRP 10 mg/dL / platelets 100 x10^9/L).
    modified_easix: Annotated[float, Field(gt=0)] = 50.0


@dataclass(frozen=True, slots=True)
class LabWarning:
    """A warning's level (0: none), the value behind it and the threshold it passed."""

    level: int
    value: float
    threshold: float
    severity: Severity


def _post_infusion(record: PatientRecord, analyte: str) -> list[tuple[float, float]]:
    t0 = min(record.infusions)
    return sorted((t, v) for t, v in record.labs.get(analyte, []) if t >= t0)


def cytokine_fold_rise(record: PatientRecord, analyte: str, window_h: float) -> float | None:
    """Highest value in (t0, t0 + window] over the pre-infusion baseline; None without one."""
    t0 = min(record.infusions)
    rows = record.labs.get(analyte, [])
    baseline = [v for t, v in rows if t0 - BASELINE_LOOKBACK_S <= t <= t0]
    rises = [v for t, v in rows if t0 < t <= t0 + window_h * HOUR]
    if not baseline or not rises:
        return None
    return max(rises) / max(min(baseline), BASELINE_FLOOR_PG_ML)


def modified_easix_series(record: PatientRecord) -> list[tuple[float, float]]:
    """(LDH time, LDH x CRP (mg/dL) / platelets) for each post-infusion LDH with a panel."""
    crp, plt = record.labs.get("CRP", []), record.labs.get("PLT", [])
    series = []
    for t, ldh in _post_infusion(record, "LDH"):
        crp_near = [v for s, v in crp if abs(s - t) <= PANEL_S]
        plt_near = [v for s, v in plt if abs(s - t) <= PANEL_S and v > 0]
        if crp_near and plt_near:  # CRP is stored in mg/L (CONTRACT 1); the index uses mg/dL
            series.append((t, ldh * (max(crp_near) / 10) / min(plt_near)))
    return series


def fold_rise_warning(record: PatientRecord, analyte: str, th: WarningThresholds) -> LabWarning:
    """Level 1 (info) from the first fold threshold, 2 (warning) from the second."""
    fold = cytokine_fold_rise(record, analyte, th.cytokine_window_h)
    if fold is not None and fold >= th.cytokine_fold_warning:
        return LabWarning(2, fold, th.cytokine_fold_warning, "warning")
    if fold is not None and fold >= th.cytokine_fold_info:
        return LabWarning(1, fold, th.cytokine_fold_info, "info")
    return LabWarning(0, fold or 0.0, th.cytokine_fold_info, "info")


def peak_warning(
    values: list[float], threshold: float, severity: Severity, strictly: bool = False
) -> LabWarning:
    """Level 1 when the highest value reaches (or, `strictly`, exceeds) the threshold."""
    peak = max(values, default=0.0)
    crossed = peak > threshold if strictly else peak >= threshold
    return LabWarning(int(crossed), peak, threshold, severity)
