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


def dead_letter_record(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]], max_bytes: int
) -> tuple[bytes | None, bytes | None]:
    """The dead letter's key and value: the original ones, or without the value (and, if
    still too large, the key) when with the headers they would not fit in a produce request
    of `max_bytes` (a message the broker took whole can outgrow the limit by its headers); a
    header then says so and how large they were. The worker's database keeps the original
    whatever its size (`dead_letters`)."""

    def size(*parts: bytes | None) -> int:
        framing = RECORD_FRAMING_BYTES + sum(len(name) + len(text) for name, text in headers)
        return framing + sum(len(part or b"") for part in parts)

    if size(key, value) <= max_bytes:
        return key, value
    omitted = [f"value of {len(value or b'')} bytes"]
    if size(key) > max_bytes:
        omitted.append(f"key of {len(key or b'')} bytes")
        key = None
    note = f"{' and '.join(omitted)}, too large for the topic; kept in the database (cartwatch dlq)"
    headers.append((HEADER_VALUE_OMITTED, note.encode()))
    return key, None


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
