"""The bytes a patient record is stored as: read back whole, bounded per event, and readable
when written by the earlier plain-JSON layout."""

from __future__ import annotations

import json

import pytest

from cartwatch.models.patient import PatientRecord, event_key
from cartwatch.models.record_codec import CorruptRecord, decode_record, encode_record
from tests.unit.builders import at, crs, decode, disposition, infusion, lab, observation, record_of


def _record(ids: list[str]) -> PatientRecord:
    """A patient with an infusion, labs, CRS, bedside data and a disposition, ids given."""
    events = [
        infusion(at(0), event_id=ids[0]),
        lab("IL6", 12.5, at(1), event_id=ids[1]),
        lab("BM_BLASTS", 2.0, at(28), event_id=ids[2]),
        crs(2, at(2), event_id=ids[3]),
        observation(
            "oxygen",
            {"device": "low_flow_cannula", "flow_lpm": 4},
            at(2),
            event_id=ids[4],
        ),
        observation("temperature_c", 39.1, at(2), event_id=ids[5]),
        disposition("withdrawn", at(90), event_id=ids[6]),
    ]
    return record_of(*events)


def test_a_stored_record_reads_back_equal():
    record = _record([f"e{n}" for n in range(7)])
    assert decode_record(encode_record(record)) == record


def test_the_stored_size_does_not_grow_with_the_length_of_the_event_ids():
    short = _record([f"{n}" for n in range(7)])
    longest = _record([f"{n}".rjust(128, "x") for n in range(7)])  # CONTRACT 1: up to 128
    assert len(encode_record(short)) == len(encode_record(longest))


def test_an_event_is_still_a_duplicate_after_the_record_was_stored_and_read_back():
    event = lab("IL6", 12.5, at(1), event_id="the-lab")
    restored = decode_record(encode_record(record_of(event)))
    assert restored.apply(decode(event)) is False
    assert restored.apply(decode(lab("IL6", 12.5, at(1), event_id="another-lab"))) is True


def test_a_record_written_as_plain_json_with_event_ids_still_loads():
    record = _record([f"e{n}" for n in range(7)])
    earlier = record.to_dict() | {"s": [f"e{n}" for n in range(7)]}  # the layout before digests
    restored = decode_record(json.dumps(earlier).encode())
    assert restored == record
    assert restored.apply(decode(infusion(at(0), event_id="e0"))) is False


def test_the_digests_tell_ids_apart_and_repeat_for_the_same_id():
    keys = {event_key(f"EVT-{n:06d}") for n in range(100_000)}
    assert len(keys) == 100_000
    assert event_key("EVT-000001") == event_key("EVT-000001")
    assert all(0 <= k < 2**64 for k in keys)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x02", b"\x02\x05\x00\x00\x00", b"\x02\x00\x00\x00\x00not zlib", b"\x07" + b"\x00" * 8],
)
def test_bytes_that_are_not_a_record_raise_a_clear_error(data: bytes):
    with pytest.raises(CorruptRecord):
        decode_record(data)
