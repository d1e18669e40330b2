"""The dead-letter message: the original bytes as value, where it came from and why in headers.

This follows the Kafka Connect convention (original key and value untouched, error context
in headers), so any Kafka tool can inspect or re-drive a dead letter.
"""

from __future__ import annotations

import json

HEADER_TOPIC = "cartwatch.source.topic"
HEADER_PARTITION = "cartwatch.source.partition"
HEADER_OFFSET = "cartwatch.source.offset"
HEADER_REASONS = "cartwatch.reasons"
HEADER_VALUE_OMITTED = "cartwatch.value_omitted"
RECORD_FRAMING_BYTES = 1_024  # a produce request's, a batch's and a record's framing, generously


def dead_letter_headers(
    topic: str, partition: int, offset: int, reasons: list[str]
) -> list[tuple[str, bytes]]:
    """Kafka headers for a dead letter: source topic, partition, offset, and every reason."""
    return [
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
        (HEADER_REASONS, json.dumps(reasons, ensure_ascii=False).encode()),
    ]


def dead_letter_value(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]], max_bytes: int
) -> bytes | None:
    """The dead letter's value: the original bytes, or None when with its key and headers
    they would not fit in a produce request of `max_bytes` (a message the broker took
    whole can outgrow the limit by its headers); a header then says so and how large it
    was. The worker's database keeps the bytes whatever their size (`dead_letters`)."""
    size = len(key or b"") + len(value or b"") + RECORD_FRAMING_BYTES
    size += sum(len(name) + len(text) for name, text in headers)
    if value is None or size <= max_bytes:
        return value
    note = f"{len(value)} bytes, too large for the topic; kept in the database (cartwatch dlq)"
    headers.append((HEADER_VALUE_OMITTED, note.encode()))
    return None


def read_dead_letter_headers(headers: list[tuple[str, bytes]] | None) -> dict:
    """Inverse of `dead_letter_headers`: {'topic', 'partition', 'offset', 'reasons'}, and
    'value_omitted' (the note, or None)."""
    found = dict(headers or [])
    omitted = found.get(HEADER_VALUE_OMITTED)
    return {
        "topic": found[HEADER_TOPIC].decode(),
        "partition": int(found[HEADER_PARTITION]),
        "offset": int(found[HEADER_OFFSET]),
        "reasons": json.loads(found[HEADER_REASONS]),
        "value_omitted": omitted.decode() if omitted is not None else None,
    }
