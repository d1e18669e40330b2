"""One raw message through the core: decode, route check, deduplicate, apply, evaluate rules.

The worker and `cartwatch replay` both call `Pipeline.handle`; only the record store differs
(a Faust table in the worker, a dict offline).
"""

from __future__ import annotations

import json
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cartwatch.alerts.engine import process_event
from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.rules import RuleThresholds
from cartwatch.models.codec import decode_event
from cartwatch.models.digest_owners import DigestOwners
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.events import TOPIC_SUFFIX_BY_TYPE, Event
from cartwatch.models.patient import PatientRecord, event_key

Outcome = Literal["accepted", "duplicate", "invalid"]


@dataclass(slots=True)
class Handled:
    """What one message did."""

    outcome: Outcome
    event: Event | None = None
    reasons: list[str] = field(default_factory=list)
    alerts: list[AlertRaised] = field(default_factory=list)
    record_key: str | None = None
    readable_type: str = "unknown"  # an invalid message's type (`readable_type`)

    @property
    def event_type(self) -> str:
        """The type the message counts under: its event's, or an invalid one's readable type."""
        return self.event.type if self.event is not None else self.readable_type


def record_key(trial_id: str, patient_id: str) -> str:
    """Table key of a patient: length-prefixed, so unambiguous whatever the ids hold."""
    return f"{len(trial_id)}:{trial_id}:{patient_id}"


def trial_of_key(key: str) -> str:
    """The trial_id of a `record_key`."""
    length, _, rest = key.partition(":")
    return rest[: int(length)]


KEY_NOT_CHECKED = object()  # `decode`'s key for a message that has none to check (a file line)


def decode(
    raw: bytes, expected_type: str | None = None, key: bytes | object | None = KEY_NOT_CHECKED
) -> Event:
    """Decode, and check the message travels on its type's topic, keyed by its patient_id
    (CONTRACT 1: a patient's messages share a partition, and so the record they build);
    raise InvalidEvent with every reason."""
    try:
        event = decode_event(raw)
    except InvalidEvent as exc:
        exc.reasons += _routing_reasons(json_fields(raw), expected_type, key)
        raise
    # `_routing_reasons`' two checks, inline: every event passes here, few break one
    if (expected_type is not None and event.type != expected_type) or (
        key is not KEY_NOT_CHECKED and key != event.patient_id.encode()
    ):
        fields = {"type": event.type, "patient_id": event.patient_id}
        raise InvalidEvent(_routing_reasons(fields, expected_type, key))
    return event


def json_fields(raw: object) -> dict:
    """The message's JSON object, as far as it is one (for the reasons of an invalid one):
    whatever the message holds (None, nesting too deep for the standard library), {}."""
    try:
        obj = json.loads(raw)  # type: ignore[arg-type]
    except (ValueError, TypeError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


def readable_type(raw: object, topic_type: str | None) -> str:
    """The type an invalid message counts under: the one its JSON `type` names when that is
    one of the five, else its topic's, else "unknown". Always one of those six values, never
    text from the message, so a metric labelled with it keeps a small, fixed set of series."""
    named = json_fields(raw).get("type")
    for kind in (named, topic_type):
        if isinstance(kind, str) and kind in TOPIC_SUFFIX_BY_TYPE:
            return kind
    return "unknown"


def _routing_reasons(fields: dict, expected_type: str | None, key: object) -> list[str]:
    reasons = []
    kind, patient_id = fields.get("type"), fields.get("patient_id")
    known = isinstance(kind, str) and kind in TOPIC_SUFFIX_BY_TYPE
    if known and expected_type is not None and kind != expected_type:
        reasons.append(f"type: {kind!r} does not belong on the {expected_type} topic")
    if key is not KEY_NOT_CHECKED and isinstance(patient_id, str):
        if key is None:
            reasons.append("Kafka key: missing; it must be the message's patient_id")
        elif key != patient_id.encode("utf-8", "surrogatepass"):  # a lone surrogate: no UTF-8
            reasons.append("Kafka key: not the message's patient_id (it must be)")
    return reasons


class Pipeline:
    """The processing core bound to a record store and the rule thresholds."""

    def __init__(
        self, records: MutableMapping[str, PatientRecord], thresholds: RuleThresholds
    ) -> None:
        self.records = records
        self.thresholds = thresholds
        # Digest of each event_id seen -> the key of the record it went to. An event_id is
        # unique across trials and patients (CONTRACT 1-2): its second use is ignored
        # whatever it holds, also for another patient (whose record never sees it).
        self.owners = DigestOwners()  # ~12 bytes an event (models/digest_owners.py)

    def claim(self, record: PatientRecord) -> None:
        """Count the events of a record stored elsewhere (restored, another worker's) as seen."""
        key = sys.intern(record_key(record.trial_id, record.patient_id))
        self.owners.claim(record.seen, key)

    def handle(
        self,
        raw: bytes,
        expected_type: str | None = None,
        now: datetime | None = None,
        key: bytes | object | None = KEY_NOT_CHECKED,
    ) -> Handled:
        """Process one raw message (`expected_type` and `key`: its topic's type and its Kafka
        key, checked when given); never raises for bad input."""
        try:
            event = decode(raw, expected_type, key)
        except InvalidEvent as exc:  # read a second time for its type: invalid ones are few
            kind = readable_type(raw, expected_type)
            return Handled("invalid", reasons=exc.reasons, readable_type=kind)
        return self.apply(event, now)

    def apply(self, event: Event, now: datetime | None = None) -> Handled:
        """Apply a decoded event to its patient's record and evaluate the rules."""
        key = sys.intern(record_key(event.trial_id, event.patient_id))  # one str per patient
        digest = event_key(event.event_id)
        if self.owners.setdefault(digest, key) != key:
            return Handled("duplicate", event=event, record_key=key)  # another patient's id
        record = self.records.get(key) or PatientRecord(event.trial_id, event.patient_id)
        done = process_event(record, event, self.thresholds, now, digest)
        if done.outcome == "duplicate":
            return Handled("duplicate", event=event, record_key=key)
        self.records[key] = record
        return Handled("accepted", event=event, alerts=done.alerts, record_key=key)
