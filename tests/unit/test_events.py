"""CONTRACT section 1: what the codec accepts, and every reason it refuses the rest.

Long (over 400 lines) for a reason: one module mirrors the one section of the contract,
field by field, so a reader checks the section against it in one place.
"""

from __future__ import annotations

import json

import pytest

from cartwatch.models.codec import decode_event
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.events import AdverseEvent, Disposition, Infusion, Lab, Oxygen
from tests.unit.builders import (
    adverse_event,
    at,
    decode,
    disposition,
    infusion,
    lab,
    observation,
)


def reasons_for(event: dict | bytes) -> list[str]:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    with pytest.raises(InvalidEvent) as caught:
        decode_event(raw)
    assert caught.value.reasons, "an invalid message must carry at least one reason"
    return caught.value.reasons


def rejected_field(event: dict, field: str) -> None:
    reasons = reasons_for(event)
    assert any(r.startswith(f"{field}") for r in reasons), reasons


# --- every type decodes ------------------------------------------------------------


def test_an_infusion_decodes_with_its_fields() -> None:
    event = decode(infusion(at(0), event_id="inf-1"))
    assert isinstance(event, Infusion)
    assert (event.event_id, event.trial_id, event.patient_id) == ("inf-1", "T1", "P1")
    assert event.dose_cells_per_kg == 1_000_000


def test_the_lot_of_an_infusion_is_optional() -> None:
    event = infusion(at(0))
    del event["lot"]
    assert decode(event).lot is None


def test_a_lab_decodes_and_its_loinc_is_optional() -> None:
    event = lab("IL6", 184.5, at(1))
    assert isinstance(decode(event), Lab)
    assert decode({**event, "loinc": "26881-3"}).loinc == "26881-3"


def test_an_adverse_event_defaults_to_status_reported_and_no_treatments() -> None:
    event = adverse_event("CRS", 2, at(1))
    del event["resolved_at"]
    decoded = decode(event)
    assert isinstance(decoded, AdverseEvent)
    assert decoded.status == "reported"
    assert decoded.resolved_at is None
    assert decoded.treatments == []


def test_an_adverse_event_accepts_entered_in_error_and_a_list_of_treatments() -> None:
    event = {**adverse_event("CRS", 2, at(1), status="entered_in_error")}
    event["treatments"] = ["tocilizumab", "corticosteroids"]
    decoded = decode(event)
    assert decoded.status == "entered_in_error"
    assert decoded.treatments == ["tocilizumab", "corticosteroids"]


def test_an_adverse_event_of_any_other_term_is_accepted() -> None:
    assert decode(adverse_event("Febrile neutropenia", 3, at(2))).term == "Febrile neutropenia"


@pytest.mark.parametrize("status", ["death", "withdrawn", "lost_to_follow_up"])
def test_every_disposition_status_is_accepted(status: str) -> None:
    event = decode({**disposition(status, at(30)), "cause": "progression"})
    assert isinstance(event, Disposition)
    assert event.status == status


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("temperature_c", 39.1),
        ("temperature_c", 39),
        ("systolic_bp_mmhg", 85),
        ("vasopressors", 0),
        ("vasopressors", 2),
        ("oxygen", {"device": "low_flow_cannula", "flow_lpm": 4}),
        ("oxygen", {"device": "room_air", "flow_lpm": None}),
        ("ice_score", 0),
        ("ice_score", 10),
        ("consciousness", "awakens_to_touch"),
        ("seizure", "prolonged"),
        ("motor_weakness", True),
        ("cerebral_edema", "diffuse"),
        ("anti_cytokine_given", False),
    ],
)
def test_every_observation_code_accepts_its_value(code: str, value: object) -> None:
    assert decode(observation(code, value, at(1))).code == code


def test_a_str_message_decodes_like_bytes() -> None:
    event = infusion(at(0))
    assert decode_event(json.dumps(event)) == decode(event)


# --- strict types ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (lab("CRP", "12.5", at(1)), "value"),
        ({**infusion(at(0)), "dose_cells_per_kg": "1000000"}, "dose_cells_per_kg"),
        (observation("temperature_c", "39.1", at(1)), "value"),
        (observation("ice_score", "7", at(1)), "value"),
        (adverse_event("CRS", "2", at(1)), "grade"),
    ],
)
def test_a_string_where_a_number_is_due_is_invalid(event: dict, field: str) -> None:
    rejected_field(event, field)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (lab("CRP", True, at(1)), "value"),
        ({**infusion(at(0)), "dose_cells_per_kg": True}, "dose_cells_per_kg"),
        (observation("temperature_c", True, at(1)), "value"),
        (observation("vasopressors", True, at(1)), "value"),
        (observation("ice_score", False, at(1)), "value"),
        (adverse_event("CRS", True, at(1)), "grade"),
    ],
)
def test_a_boolean_where_a_number_is_due_is_invalid(event: dict, field: str) -> None:
    rejected_field(event, field)


@pytest.mark.parametrize("grade", [2.0, 2.5])
def test_a_grade_that_is_a_float_is_invalid(grade: float) -> None:
    rejected_field(adverse_event("CRS", grade, at(1)), "grade")


@pytest.mark.parametrize("count", [1.0, 1.5, -1])
def test_vasopressors_must_be_a_non_negative_integer(count: float) -> None:
    rejected_field(observation("vasopressors", count, at(1)), "value")


@pytest.mark.parametrize("flag", ["true", 1, "yes"])
def test_a_boolean_observation_takes_only_a_json_boolean(flag: object) -> None:
    rejected_field(observation("motor_weakness", flag, at(1)), "value")


@pytest.mark.parametrize("grade", [0, 6, -1])
def test_a_grade_outside_one_to_five_is_invalid(grade: int) -> None:
    rejected_field(adverse_event("CRS", grade, at(1)), "grade")


@pytest.mark.parametrize("grade", [1, 5])
def test_grades_one_and_five_are_valid(grade: int) -> None:
    assert decode(adverse_event("ICANS", grade, at(1))).grade == grade


def test_a_lab_value_of_zero_is_valid_and_below_zero_is_not() -> None:
    assert decode(lab("MRD", 0, at(1))).value == 0
    rejected_field(lab("MRD", -0.001, at(1)), "value")


def test_a_dose_must_be_above_zero() -> None:
    rejected_field({**infusion(at(0)), "dose_cells_per_kg": 0}, "dose_cells_per_kg")


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_or_infinity_anywhere_is_not_json(literal: bytes) -> None:
    # In a field nobody reads too: RFC 8259 has no such value, so the message is no JSON.
    raw = json.dumps({**infusion(at(0)), "extra": [1, {"x": 2.5}]}).encode()
    assert reasons_for(raw.replace(b"2.5", literal)) == [
        f"not valid JSON: {literal.decode()} is not a JSON value"
    ]


def test_the_words_nan_and_infinity_in_a_text_are_only_text() -> None:
    assert decode({**infusion(at(0)), "product": "NaN-Infinity"}).product == "NaN-Infinity"


@pytest.mark.parametrize("literal", [b"Infinity", b"NaN", b"-Infinity"])
def test_a_non_finite_lab_value_is_invalid(literal: bytes) -> None:
    raw = json.dumps(lab("CRP", 1.5, at(1))).encode().replace(b"1.5", literal)
    rejected_field(raw, "value")


# --- timestamps --------------------------------------------------------------------


@pytest.mark.parametrize("field", ["occurred_at", "onset_at", "resolved_at"])
def test_a_timestamp_without_offset_is_invalid(field: str) -> None:
    event = adverse_event("CRS", 2, at(1), resolved=at(3))
    event[field] = "2025-01-08T10:00:00"
    rejected_field(event, field)


@pytest.mark.parametrize("stamp", ["2025-01-08", 1736326800, "yesterday", ""])
def test_a_timestamp_that_is_not_rfc3339_date_time_is_invalid(stamp: object) -> None:
    rejected_field({**disposition("death", at(1)), "occurred_at": stamp}, "occurred_at")


@pytest.mark.parametrize(
    ("stamp", "why"),
    [
        ("2025-01-08T10:00:00+24:00", "is not an RFC 3339 timestamp with offset"),
        ("2025-01-08T10:00:00+05:60", "is not an RFC 3339 timestamp with offset"),
        ("2025-02-30T10:00:00Z", "is not a valid date and time: day is out of range for month"),
        ("2025-01-08T24:00:00Z", "is not a valid date and time: hour must be in 0..23"),
    ],
)
def test_an_offset_or_date_out_of_range_is_invalid_with_a_plain_reason(stamp: str, why: str):
    reasons = reasons_for({**infusion(at(0)), "occurred_at": stamp})
    assert reasons == [f"occurred_at: {stamp!r} {why}" + (_EXAMPLE if "RFC" in why else "")]


_EXAMPLE = " (e.g. 2025-02-07T14:00:00+01:00)"


@pytest.mark.parametrize(
    ("field", "stamp"),
    [("occurred_at", "9999-12-31T20:00:00-12:00"), ("onset_at", "0001-01-01T01:00:00+14:00")],
)
def test_a_timestamp_beyond_the_years_1_to_9999_in_utc_is_invalid(field: str, stamp: str) -> None:
    # It jammed the worker: its database rows hold UTC times, which it cannot be written as.
    event = {**adverse_event("CRS", 2, at(1)), field: stamp}
    rejected_field(event, field)
    assert any("out of range" in reason for reason in reasons_for(event))


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "0001-01-01T14:00:00+14:00"])
def test_the_first_and_last_instants_in_utc_are_valid(stamp: str) -> None:
    assert decode({**infusion(at(0)), "occurred_at": stamp}).occurred_at.year in (1, 9999)


@pytest.mark.parametrize(
    ("field", "value"),
    [("patient_id", "S01\x000007"), ("term", "CRS\x00"), ("treatments", ["tocilizumab\x00"])],
)
def test_a_text_holding_the_nul_character_is_invalid(field: str, value: object) -> None:
    # It jammed a worker on PostgreSQL, which stores no NUL in text.
    event = {**adverse_event("CRS", 2, at(1)), field: value}
    assert reasons_for(event) == [f"{field}: must not contain the NUL character (U+0000)"]


def test_a_backslash_before_u0000_is_only_text() -> None:
    event = decode({**adverse_event("CRS", 2, at(1)), "term": "CRS \\u0000"})
    assert event.term == "CRS \\u0000"


def test_the_same_instant_in_two_offsets_is_the_same_time() -> None:
    utc = decode({**infusion(at(0)), "occurred_at": "2025-02-05T09:15:00Z"})
    paris = decode({**infusion(at(0)), "occurred_at": "2025-02-05T10:15:00+01:00"})
    assert utc.occurred_at == paris.occurred_at


# --- unknown names -------------------------------------------------------------------


def test_an_unknown_type_is_invalid() -> None:
    rejected_field({**infusion(at(0)), "type": "vital"}, "type")


def test_a_missing_type_is_invalid() -> None:
    event = infusion(at(0))
    del event["type"]
    rejected_field(event, "type")


def test_an_unknown_analyte_is_invalid() -> None:
    rejected_field(lab("TROPONIN", 3.0, at(1), unit="ng/L"), "analyte")


def test_an_unknown_unit_is_invalid() -> None:
    rejected_field(lab("CRP", 3.0, at(1), unit="mmol/L"), "unit")


def test_an_unknown_observation_code_is_invalid() -> None:
    rejected_field(observation("heart_rate", 110, at(1)), "code")


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("consciousness", "drowsy"),
        ("seizure", "brief"),
        ("cerebral_edema", "mild"),
    ],
)
def test_an_unknown_observation_value_is_invalid(code: str, value: str) -> None:
    rejected_field(observation(code, value, at(1)), "value")


def test_an_unknown_adverse_event_status_is_invalid() -> None:
    rejected_field(adverse_event("CRS", 2, at(1), status="deleted"), "status")


def test_an_unknown_disposition_status_is_invalid() -> None:
    rejected_field(disposition("discharged", at(1)), "status")


# --- every reason, every malformed message ----------------------------------------------


@pytest.mark.parametrize(
    ("change", "tag"),
    [
        ({"type": None}, "type"),  # missing
        ({"type": "vitals"}, "type"),
        ({"code": "heart_rate"}, "code"),
    ],
)
def test_an_unknown_or_missing_type_does_not_hide_the_other_reasons(change, tag) -> None:
    event = observation("temperature_c", 38.5, at(1)) | change
    event = {k: v for k, v in event.items() if v is not None}
    del event["patient_id"]
    event["occurred_at"] = "2025-01-08T10:00:00"  # no offset
    reasons = reasons_for(event)
    for field in (tag, "patient_id", "occurred_at"):
        assert any(r.startswith(f"{field}:") for r in reasons), reasons


def test_every_bad_field_is_reported_not_only_the_first() -> None:
    event = lab("CRP", "high", at(1), event_id="", patient="P" * 65)
    event["occurred_at"] = "2025-01-08T10:00:00"
    reasons = reasons_for(event)
    for field in ("event_id", "patient_id", "occurred_at", "value"):
        assert any(r.startswith(field) for r in reasons), (field, reasons)
    assert len(reasons) == 4


def test_every_missing_field_is_reported() -> None:
    reasons = reasons_for({"type": "adverse_event"})
    for field in ("event_id", "trial_id", "patient_id", "occurred_at", "ae_id", "term"):
        assert any(r.startswith(field) for r in reasons), (field, reasons)
    for field in ("grade", "onset_at"):
        assert any(r.startswith(field) for r in reasons), (field, reasons)


@pytest.mark.parametrize(
    "raw", [b"not json", b'{"event_id": "e1", ', b"\xff\xfe\x00", b"", b"{'a': 1}"]
)
def test_bytes_that_are_not_json_are_invalid(raw: bytes) -> None:
    reasons = reasons_for(raw)
    assert any("JSON" in r for r in reasons), reasons


@pytest.mark.parametrize("raw", [b"[1, 2]", b"42", b'"infusion"', b"null", b"true"])
def test_json_that_is_not_an_object_is_invalid(raw: bytes) -> None:
    reasons_for(raw)


# --- lengths of ids ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "limit"), [("event_id", 128), ("trial_id", 64), ("patient_id", 64)]
)
def test_an_id_at_its_maximum_length_is_valid(field: str, limit: int) -> None:
    event = {**infusion(at(0)), field: "x" * limit}
    assert getattr(decode(event), field) == "x" * limit


@pytest.mark.parametrize(
    ("field", "limit"), [("event_id", 128), ("trial_id", 64), ("patient_id", 64)]
)
def test_an_id_one_character_too_long_is_invalid(field: str, limit: int) -> None:
    rejected_field({**infusion(at(0)), field: "x" * (limit + 1)}, field)


@pytest.mark.parametrize("field", ["event_id", "trial_id", "patient_id"])
def test_an_empty_id_is_invalid(field: str) -> None:
    rejected_field({**infusion(at(0)), field: ""}, field)


@pytest.mark.parametrize("field", ["event_id", "trial_id", "patient_id"])
def test_an_id_that_is_a_number_is_invalid(field: str) -> None:
    rejected_field({**infusion(at(0)), field: 12345}, field)


def test_id_lengths_count_characters_not_bytes() -> None:
    event = decode({**infusion(at(0)), "patient_id": "é" * 64})
    assert len(event.patient_id) == 64


# --- oxygen, ICE score ---------------------------------------------------------------


def test_oxygen_is_an_object_with_device_and_flow() -> None:
    event = decode(observation("oxygen", {"device": "high_flow_cannula", "flow_lpm": 30}, at(1)))
    assert isinstance(event, Oxygen)
    assert (event.value.device, event.value.flow_lpm) == ("high_flow_cannula", 30)


@pytest.mark.parametrize(
    "value",
    [
        "low_flow_cannula",
        6,
        {"device": "helmet", "flow_lpm": 6},
        {"flow_lpm": 6},
        {"device": "facemask", "flow_lpm": "6"},
        {"device": "facemask", "flow_lpm": True},
    ],
)
def test_oxygen_that_is_not_a_valid_object_is_invalid(value: object) -> None:
    rejected_field(observation("oxygen", value, at(1)), "value")


@pytest.mark.parametrize(
    "device",
    [
        "room_air",
        "blow_by",
        "low_flow_cannula",
        "high_flow_cannula",
        "facemask",
        "nonrebreather",
        "venturi",
        "cpap",
        "bipap",
        "mechanical_ventilation",
    ],
)
def test_every_oxygen_device_of_the_contract_is_accepted(device: str) -> None:
    value = {"device": device, "flow_lpm": None}
    assert decode(observation("oxygen", value, at(1))).value.device == device


@pytest.mark.parametrize("score", [-1, 11, 5.0])
def test_an_ice_score_outside_zero_to_ten_or_not_an_integer_is_invalid(score: float) -> None:
    rejected_field(observation("ice_score", score, at(1)), "value")


# --- extra fields -----------------------------------------------------------------


def test_extra_fields_are_ignored() -> None:
    plain = decode(infusion(at(0), event_id="inf-x"))
    extended = decode({**infusion(at(0), event_id="inf-x"), "site": "Paris", "v": 2})
    assert extended == plain


def test_extra_fields_inside_the_oxygen_object_are_ignored() -> None:
    value = {"device": "facemask", "flow_lpm": 8, "fio2": 0.4}
    assert decode(observation("oxygen", value, at(1))).value.flow_lpm == 8
