"""The processing core shared by the worker and replay."""

from __future__ import annotations

import json

import pytest

from cartwatch.alerts.pipeline import Pipeline, record_key
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.kafka.producer import route
from cartwatch.streams.worker.settings import Settings

BASE = {"trial_id": "T1", "patient_id": "P1"}


def _raw(**fields) -> bytes:
    return json.dumps(BASE | fields).encode()


def _pipeline() -> tuple[Pipeline, dict[str, PatientRecord]]:
    records: dict[str, PatientRecord] = {}
    return Pipeline(records, RuleThresholds()), records


def _infusion(event_id: str = "i1") -> bytes:
    return _raw(
        event_id=event_id,
        type="infusion",
        occurred_at="2025-01-01T10:00:00+00:00",
        product="CD19 CAR-T",
        dose_cells_per_kg=1e6,
    )


def test_a_valid_message_is_accepted_and_stored_under_its_patient():
    pipeline, records = _pipeline()
    handled = pipeline.handle(_infusion(), expected_type="infusion")
    assert handled.outcome == "accepted"
    assert handled.event_type == "infusion"
    assert records[record_key("T1", "P1")].infusions


def test_a_second_message_with_the_same_event_id_is_a_duplicate():
    pipeline, records = _pipeline()
    pipeline.handle(_infusion())
    handled = pipeline.handle(_infusion())
    assert handled.outcome == "duplicate"
    assert len(records[record_key("T1", "P1")].infusions) == 1


def test_bad_input_is_invalid_with_its_reasons_and_never_raises():
    pipeline, records = _pipeline()
    for raw in (b"not json", b"[]", b"", _raw(event_id="x", type="lab")):
        handled = pipeline.handle(raw)
        assert handled.outcome == "invalid"
        assert handled.reasons
    assert records == {}


def test_an_invalid_message_counts_under_the_known_type_its_json_names():
    pipeline, _ = _pipeline()
    lab = _raw(event_id="x", type="lab")  # no analyte, value, unit, time
    assert pipeline.handle(lab).event_type == "lab"
    # on another type's topic too: the message says what it is, the topic where it went
    assert pipeline.handle(lab, expected_type="infusion").event_type == "lab"
    assert pipeline.handle(_infusion(), expected_type="lab").event_type == "infusion"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        None,  # a tombstone
        _raw(event_id="x", type="Lab"),  # not one of the five
        _raw(event_id="x", type="x" * 10_000),
        _raw(event_id="x", type=["lab"]),
        _raw(event_id="x"),
    ],
)
def test_an_invalid_message_naming_no_known_type_counts_under_its_topics_type(raw):
    pipeline, _ = _pipeline()
    assert pipeline.handle(raw, expected_type="observation").event_type == "observation"
    assert pipeline.handle(raw).event_type == "unknown"  # no topic (a file line)


def test_an_event_on_another_types_topic_is_invalid():
    pipeline, _ = _pipeline()
    handled = pipeline.handle(_infusion(), expected_type="lab")
    assert handled.outcome == "invalid"
    assert "does not belong on the lab topic" in handled.reasons[0]


def test_an_invalid_event_on_another_types_topic_gets_both_reasons():
    pipeline, _ = _pipeline()
    raw = _raw(event_id="l1", type="lab", occurred_at="2025-01-02T10:00:00+00:00")
    raw = raw[:-1] + b', "analyte": "IL6", "value": 5, "unit": "furlongs"}'
    handled = pipeline.handle(raw, expected_type="infusion", key=b"P1")
    assert handled.outcome == "invalid"
    assert handled.reasons == [
        "unit: 'furlongs' is not accepted for IL6 (accepted: pg/mL, ng/L)",
        "type: 'lab' does not belong on the infusion topic",
    ]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (b"wrong-key", "Kafka key: not the message's patient_id (it must be)"),
        (None, "Kafka key: missing; it must be the message's patient_id"),
    ],
)
def test_a_message_not_keyed_by_its_patient_id_is_invalid(key, reason):
    # Keyed otherwise, a patient's messages land on several partitions, each building its own
    # record of the patient: a restart brought back one of them (events lost).
    pipeline, records = _pipeline()
    handled = pipeline.handle(_infusion(), expected_type="infusion", key=key)
    assert (handled.outcome, handled.reasons) == ("invalid", [reason])
    assert records == {}
    assert pipeline.handle(_infusion(), expected_type="infusion", key=b"P1").outcome == "accepted"


def test_a_message_that_is_invalid_and_wrongly_keyed_gets_both_reasons():
    pipeline, _ = _pipeline()
    raw = _raw(event_id="i1", type="infusion", occurred_at="2025-01-01T10:00:00")
    handled = pipeline.handle(raw, expected_type="infusion", key=b"P2")
    assert handled.reasons[-1] == "Kafka key: not the message's patient_id (it must be)"
    assert len(handled.reasons) == 4  # no offset, no product, no dose; then the key


def test_record_keys_do_not_collide_whatever_the_ids_hold():
    assert record_key("T:1", "P") != record_key("T", ":1P")
    assert record_key('T"', "P") != record_key("T", '"P')


def test_an_alert_is_returned_with_the_event_that_caused_it():
    pipeline, _ = _pipeline()
    pipeline.handle(_infusion())
    handled = pipeline.handle(
        _raw(
            event_id="ae1",
            type="adverse_event",
            occurred_at="2025-01-03T10:00:00+00:00",
            ae_id="A1",
            term="CRS",
            grade=3,
            onset_at="2025-01-03T08:00:00+00:00",
        )
    )
    assert [a.alert_id for a in handled.alerts] == ["T1:P1:crs_grade:3"]
    assert handled.alerts[0].source_event_id == "ae1"


# Messages pydantic refuses but the standard library reads otherwise (or not at all): the
# reasons of an invalid message are built from a second reading of it, which must not fail.
HOSTILE = [
    None,  # a tombstone on an input topic
    b'{"type": ["lab"], "patient_id": "P1"}',  # an unhashable type
    b'{"type": {}, "patient_id": "P1"}',
    b"[" * 3_000 + b"]" * 3_000,  # too deep for json.loads
    b'{"type": "lab", "patient_id": "P\\udc00"}',  # a lone surrogate: no UTF-8 for it
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_a_hostile_message_is_invalid_and_never_raises(raw):
    pipeline, records = _pipeline()
    handled = pipeline.handle(raw, expected_type="lab", key=b"P1")
    assert handled.outcome == "invalid" and handled.reasons
    assert records == {}


@pytest.mark.parametrize("raw", [r for r in HOSTILE if r is not None])
def test_produce_routes_a_hostile_line_without_raising(raw):
    routed = route(raw, Settings())
    assert routed.topic in {Settings().dead_letter_topic, Settings().topic("labs")}
