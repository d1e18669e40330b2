"""Re-driving a dead letter: its original bytes, or a corrected message, back to its topic.

The message must now pass the contract (else InvalidCorrection with every reason). The
dead letter is claimed (`new` -> `redriven`), audited and sent in one transaction that
commits only once the broker has acknowledged the send, so a failed send leaves it `new`
and a second re-drive of the same dead letter is refused. Should the commit itself fail
after the send, a later re-drive sends the same `event_id` again, which the worker ignores
as a duplicate: a re-driven message counts exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from cartwatch.models.codec import decode_event
from cartwatch.models.errors import InvalidEvent
from cartwatch.models.events import TOPIC_SUFFIX_BY_TYPE
from cartwatch.streams.storage.audit import DEAD_LETTER_REDRIVEN, append_audit
from cartwatch.streams.storage.engine import now
from cartwatch.streams.storage.errors import AlreadyRedriven, DeadLetterNotFound, InvalidCorrection
from cartwatch.streams.storage.schema import dead_letters

# send(topic, key, value) returns once the broker acknowledged, or raises.
Sender = Callable[[str, bytes, bytes], None]


@dataclass(frozen=True, slots=True)
class Redriven:
    """Where a dead letter went."""

    dead_letter_id: int
    topic: str
    event_id: str
    corrected: bool


def redrive_dead_letter(
    engine: Engine,
    dead_letter_id: int,
    send: Sender,
    *,
    topic_prefix: str,
    actor: str,
    corrected: bytes | None = None,
) -> Redriven:
    """Re-drive one dead letter to the topic of its type, mark it, and audit it."""
    with engine.begin() as conn:
        stmt = select(dead_letters).where(dead_letters.c.id == dead_letter_id).with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise DeadLetterNotFound(f"no dead letter with id {dead_letter_id}")
        if row["status"] == "redriven":
            raise AlreadyRedriven(
                f"dead letter {dead_letter_id} was already re-driven "
                f"(as event {row['redriven_event_id']}); it is not sent twice"
            )
        if corrected is None and row["value"] is None:
            raise InvalidCorrection(["a tombstone (no value): re-drive a corrected message"])
        value = corrected if corrected is not None else bytes(row["value"])
        try:
            event = decode_event(value)
        except InvalidEvent as exc:
            raise InvalidCorrection(exc.reasons) from None
        topic = f"{topic_prefix}.{TOPIC_SUFFIX_BY_TYPE[event.type]}"
        claim = (
            update(dead_letters)
            .where(dead_letters.c.id == dead_letter_id, dead_letters.c.status == "new")
            .values(status="redriven", redriven_at=now(), redriven_event_id=event.event_id)
        )
        if conn.execute(claim).rowcount != 1:  # a concurrent re-drive got there first
            raise AlreadyRedriven(f"dead letter {dead_letter_id} is being re-driven")
        append_audit(
            conn,
            actor=actor,
            action=DEAD_LETTER_REDRIVEN,
            subject=f"dead_letter:{dead_letter_id}",
            details={
                "source": [row["source_topic"], row["source_partition"], row["source_offset"]],
                "topic": topic,
                "event_id": event.event_id,
                "corrected": corrected is not None,
                "sha256": hashlib.sha256(value).hexdigest(),
            },
        )
        send(topic, event.patient_id.encode(), value)
    return Redriven(dead_letter_id, topic, event.event_id, corrected is not None)
