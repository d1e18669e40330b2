"""`cartwatch produce`: publish a file of events to their topics, keyed by patient_id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from cartwatch.alerts.pipeline import decode, json_fields
from cartwatch.models.errors import CartwatchError, InvalidEvent
from cartwatch.models.events import TOPIC_SUFFIX_BY_TYPE
from cartwatch.streams.kafka.deadletter import dead_letter_headers
from cartwatch.streams.kafka.security import kafka_python_options
from cartwatch.streams.worker.settings import Settings


@dataclass(slots=True)
class Routed:
    """Where one line goes: its type's topic, or straight to the dead-letter topic."""

    topic: str
    key: bytes | None
    reasons: list[str] | None = None


def route(raw: bytes, settings: Settings) -> Routed:
    """The line's topic from its `type`, its key from `patient_id` (best effort, not validation).

    A line whose type cannot be read cannot reach a worker, so it is dead-lettered here
    with the decoder's reasons; anything else is left for the worker to validate.
    """
    obj = json_fields(raw)
    kind = obj.get("type")
    suffix = TOPIC_SUFFIX_BY_TYPE.get(kind) if isinstance(kind, str) else None
    if suffix is None:
        try:
            decode(raw)
            reasons = ["type: missing or unknown"]
        except InvalidEvent as exc:
            reasons = exc.reasons
        return Routed(settings.dead_letter_topic, None, reasons)
    patient = obj.get("patient_id")
    key = patient.encode("utf-8", "surrogatepass") if isinstance(patient, str) else None
    return Routed(settings.topic(suffix), key)


def kafka_producer(settings: Settings) -> KafkaProducer:
    """A producer that waits for every replica (acks=all) and keeps order per partition."""
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=5,
        max_in_flight_requests_per_connection=1,
        retries=5,
        **kafka_python_options(settings),
    )


def publish_line(
    producer: KafkaProducer, raw: bytes, settings: Settings, source: str, number: int
) -> Routed:
    """Send one line to its topic; an unroutable line goes to the dead-letter topic."""
    routed = route(raw, settings)
    headers = None
    if routed.reasons is not None:
        headers = dead_letter_headers(source, -1, number, routed.reasons)
    producer.send(routed.topic, key=routed.key, value=raw, headers=headers)
    return routed


class LinesNotSent(CartwatchError):
    """Lines too large for a Kafka produce request: the others were sent, these not."""

    def __init__(self, sent: dict[str, int], lines: list[tuple[int, int]]) -> None:
        shown = ", ".join(f"{number} ({size} bytes)" for number, size in lines[:20])
        more = f" and {len(lines) - 20} more" if len(lines) > 20 else ""
        super().__init__(f"lines too large for a Kafka request, not sent: {shown}{more}")
        self.sent, self.lines = sent, lines


def produce_lines(
    lines: Iterable[bytes], settings: Settings, source: str, producer: KafkaProducer | None = None
) -> dict[str, int]:
    """Publish each non-blank line; returns how many went to each topic. A line too large to
    send is passed over, the rest sent, then LinesNotSent names them."""
    own = producer is None
    producer = producer or kafka_producer(settings)
    sent: dict[str, int] = {}
    too_large: list[tuple[int, int]] = []
    try:
        for number, raw in enumerate(lines, start=1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                routed = publish_line(producer, raw, settings, source, number)
            except MessageSizeTooLargeError:
                too_large.append((number, len(raw)))
                continue
            sent[routed.topic] = sent.get(routed.topic, 0) + 1
        producer.flush()
    finally:
        if own:
            producer.close()
    if too_large:
        raise LinesNotSent(sent, too_large)
    return sent
