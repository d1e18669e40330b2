"""Lab units: the canonical unit of each analyte and the documented equivalents (CONTRACT 1)."""

from __future__ import annotations

from cartwatch.models.errors import InvalidUnit

MICRO_SIGN = "\u00b5"  # the contract's µ
GREEK_MU = "\u03bc"  # the same prefix typed on many keyboards; accepted as an equivalent

# analyte -> (canonical unit, {accepted unit: factor to multiply by})
_UNITS: dict[str, tuple[str, dict[str, float]]] = {
    "IL6": ("pg/mL", {"ng/L": 1.0}),
    "IFNG": ("pg/mL", {"ng/L": 1.0}),
    "CRP": ("mg/L", {"mg/dL": 10.0}),
    "FERRITIN": ("ng/mL", {"ug/L": 1.0, f"{MICRO_SIGN}g/L": 1.0}),
    "LDH": ("U/L", {}),
    # Creatinine molar mass 113.12 g/mol: 1 mg/dL = 88.42 umol/L.
    "CREATININE": ("mg/dL", {"umol/L": 1 / 88.42, f"{MICRO_SIGN}mol/L": 1 / 88.42}),
    "ANC": ("10^9/L", {"10^3/uL": 1.0, "K/uL": 1.0}),
    "PLT": ("10^9/L", {"10^3/uL": 1.0, "K/uL": 1.0}),
    "BM_BLASTS": ("%", {}),
    "PB_BLASTS": ("%", {}),
    "MRD": ("%", {}),
}


def canonical_unit(analyte: str) -> str:
    """The unit every stored value of `analyte` is expressed in."""
    return _UNITS[analyte][0]


def _factor(analyte: str, unit: str) -> float | None:
    canonical, equivalents = _UNITS[analyte]
    unit = unit.replace(GREEK_MU, MICRO_SIGN)
    return 1.0 if unit == canonical else equivalents.get(unit)


def check_unit(analyte: str, unit: str) -> float:
    """The factor from `unit` to the analyte's canonical unit; raise InvalidUnit unless
    `unit` is that unit or an equivalent."""
    factor = _factor(analyte, unit)
    if factor is None:
        canonical, equivalents = _UNITS[analyte]
        accepted = ", ".join([canonical, *equivalents])
        raise InvalidUnit(f"{unit!r} is not accepted for {analyte} (accepted: {accepted})")
    return factor


def to_canonical(analyte: str, value: float, unit: str) -> tuple[float, str]:
    """Convert `value` in `unit` to the analyte's canonical unit, or raise InvalidUnit."""
    factor = check_unit(analyte, unit)
    # Factor 1.0 keeps the value bit-identical; others scale it.
    return (value if factor == 1.0 else value * factor), canonical_unit(analyte)
