"""The codec's shortcuts give what the long way gives: timestamps parsed by one plain
validator, and labs already in their canonical unit left as they are."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from cartwatch.models import events
from cartwatch.models.codec import decode_event
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.events import Analyte, Lab, Timestamp, parse_timestamp
from cartwatch.models.units import canonical_unit, to_canonical
from tests.unit.builders import at, infusion, lab


@pytest.mark.parametrize(
    "text",
    [
        "2025-02-07T14:00:00+01:00",
        "2025-02-07t14:00:00.5z",
        "2025-02-07 14:00:00.1234567-23:59",
        "0001-01-01T00:30:00+00:30",
    ],
)
def test_an_event_time_is_what_parse_timestamp_gives(text: str) -> None:
    event = decode_event(json.dumps({**infusion(at(0)), "occurred_at": text}))
    expected = parse_timestamp(text)
    assert event.occurred_at == expected
    assert event.occurred_at.utcoffset() == expected.utcoffset()
    assert type(event.occurred_at.tzinfo) is type(expected.tzinfo)


@pytest.mark.parametrize("value", [None, 1, "2025-02-07T14:00:00", "2025-02-30T00:00:00Z"])
def test_an_event_time_that_is_no_rfc_3339_timestamp_is_refused(value: object) -> None:
    with pytest.raises(InvalidEvent) as caught:
        decode_event(json.dumps({**infusion(at(0)), "occurred_at": value}))
    assert [r for r in caught.value.reasons if r.startswith("occurred_at: ")]


def test_a_timestamp_is_still_described_as_a_date_time() -> None:
    for mode in ("validation", "serialization"):
        schema = TypeAdapter(Timestamp).json_schema(mode=mode)
        assert schema == {"type": "string", "format": "date-time"}


@pytest.mark.parametrize("analyte", list(Analyte))
def test_a_lab_in_its_canonical_unit_keeps_its_value_bit_for_bit(analyte: Analyte) -> None:
    unit = canonical_unit(analyte.value)
    event = decode_event(json.dumps(lab(analyte.value, 0.1 + 0.2, at(1), unit=unit)))
    assert isinstance(event, Lab)
    assert (event.value, event.unit) == to_canonical(analyte.value, 0.1 + 0.2, unit)
    assert type(event.unit) is str


@pytest.mark.parametrize(
    ("analyte", "unit", "value"),
    [("CRP", "mg/dL", 2.5), ("CREATININE", "\u03bcmol/L", 100.0), ("FERRITIN", "ug/L", 3.0)],
)
def test_a_lab_in_an_equivalent_unit_is_still_converted(
    analyte: str, unit: str, value: float
) -> None:
    event = decode_event(json.dumps(lab(analyte, value, at(1), unit=unit)))
    assert (event.value, event.unit) == to_canonical(analyte, value, unit)
    assert event.unit == canonical_unit(analyte) != unit


def test_a_timestamp_parsed_before_gives_the_same_instant_again() -> None:
    text = "2025-03-01T08:15:00.25-05:00"
    first, second = (
        decode_event(json.dumps({**infusion(at(0)), "occurred_at": text})) for _ in range(2)
    )
    assert first.occurred_at == second.occurred_at == parse_timestamp(text)
    assert second.occurred_at.utcoffset() == parse_timestamp(text).utcoffset()


def test_an_invalid_timestamp_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(InvalidEvent) as caught:
            decode_event(json.dumps({**infusion(at(0)), "occurred_at": "2025-02-29T00:00:00Z"}))
        assert caught.value.reasons[0].startswith("occurred_at: '2025-02-29T00:00:00Z' is not")


def test_the_parsed_timestamps_kept_stay_few() -> None:
    for second in range(events._PARSED_MAX + 10):
        text = f"2025-03-01T08:00:{second % 60:02d}.{second:06d}Z"
        decode_event(json.dumps({**infusion(at(0)), "occurred_at": text}))
    assert 0 < len(events._PARSED) <= events._PARSED_MAX
