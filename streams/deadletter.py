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


def read_dead_letter_headers(headers: list[tuple[str, bytes]] | None) -> dict:
    """Inverse of `dead_letter_headers`: {'topic', 'partition', 'offset', 'reasons'}."""
    found = dict(headers or [])
    return {
        "topic": found[HEADER_TOPIC].decode(),
        "partition": int(found[HEADER_PARTITION]),
        "offset": int(found[HEADER_OFFSET]),
        "reasons": json.loads(found[HEADER_REASONS]),
    }
