"""CONTRACT section 1: lab units, canonical or a documented equivalent converted on intake."""

from __future__ import annotations

import json

import pytest

from cartwatch.models.codec import decode_event
from cartwatch.models.errors import InvalidEvent
from tests.unit.builders import CANONICAL, at, decode, lab


def canonical(analyte: str, value: float, unit: str) -> tuple[float, str]:
    event = decode(lab(analyte, value, at(1), unit=unit))
    return event.value, event.unit


@pytest.mark.parametrize(("analyte", "unit"), sorted(CANONICAL.items()))
def test_a_value_in_the_canonical_unit_is_kept_as_is(analyte: str, unit: str) -> None:
    assert canonical(analyte, 12.5, unit) == (12.5, unit)


def test_crp_in_mg_per_dl_is_multiplied_by_ten() -> None:
    value, unit = canonical("CRP", 9.8, "mg/dL")
    assert value == pytest.approx(98.0)
    assert unit == "mg/L"


def test_a_value_that_overflows_when_converted_is_rejected_with_a_reason() -> None:
    with pytest.raises(InvalidEvent) as raised:
        decode_event(json.dumps(lab("CRP", 1e308, at(1), unit="mg/dL")))
    assert raised.value.reasons == ["value: 1e+308 mg/dL is out of range in mg/L"]


@pytest.mark.parametrize("unit", ["umol/L", "µmol/L"])
def test_creatinine_in_micromoles_is_divided_by_88_42(unit: str) -> None:
    value, canonical_unit = canonical("CREATININE", 88.42, unit)
    assert value == pytest.approx(1.0)
    assert canonical_unit == "mg/dL"
    assert canonical("CREATININE", 176.84, unit)[0] == pytest.approx(2.0)


@pytest.mark.parametrize("unit", ["ug/L", "µg/L"])
def test_ferritin_in_micrograms_per_litre_equals_nanograms_per_millilitre(unit: str) -> None:
    assert canonical("FERRITIN", 4210.0, unit) == (4210.0, "ng/mL")


def test_the_micro_sign_survives_utf8_encoding() -> None:
    raw = json.dumps(lab("FERRITIN", 500, at(1), unit="µg/L"), ensure_ascii=False)
    event = decode_event(raw.encode("utf-8"))
    assert (event.value, event.unit) == (500, "ng/mL")


@pytest.mark.parametrize("analyte", ["ANC", "PLT"])
@pytest.mark.parametrize("unit", ["10^3/uL", "K/uL"])
def test_blood_counts_per_microlitre_equal_counts_per_nanolitre(analyte: str, unit: str) -> None:
    assert canonical(analyte, 112.0, unit) == (112.0, "10^9/L")


@pytest.mark.parametrize("analyte", ["IL6", "IFNG"])
def test_cytokines_in_ng_per_litre_equal_pg_per_millilitre(analyte: str) -> None:
    assert canonical(analyte, 184.5, "ng/L") == (184.5, "pg/mL")


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("CRP", "mmol/L"),
        ("CRP", "ng/L"),
        ("FERRITIN", "mg/dL"),
        ("LDH", "IU/L"),
        ("LDH", "ukat/L"),
        ("CREATININE", "mmol/L"),
        ("ANC", "/uL"),
        ("PLT", "10^6/uL"),
        ("BM_BLASTS", "fraction"),
        ("MRD", "K/uL"),
        ("IL6", "mg/dL"),
        ("CRP", "mg/dl"),
        ("CRP", ""),
    ],
)
def test_a_unit_not_documented_for_the_analyte_is_invalid(analyte: str, unit: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(lab(analyte, 1.0, at(1), unit=unit))
    assert any(r.startswith("unit") for r in caught.value.reasons), caught.value.reasons


def test_a_unit_that_is_not_a_string_is_invalid() -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode(lab("CRP", 1.0, at(1), unit=10))
    assert any(r.startswith("unit") for r in caught.value.reasons)
