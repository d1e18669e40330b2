"""One batch of input records: applied through the core, then published and stored in the
order that loses nothing (docs/ARCHITECTURE.md, "Delivery guarantees").

Alerts and dead letters are acknowledged by the broker, then the alerts' entries in the
alert table, then the database has every row of the batch, and only then are the patient
records (with their seen event ids and alerted levels) written to the table; the input
offsets are committed after that (streams/kafka/input_consumer.py, the checkpoint). A
crash at any point replays the batch into idempotent writes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import faust

from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.pipeline import Handled
from cartwatch.models.events import AdverseEvent
from cartwatch.streams.kafka.deadletter import dead_letter_headers, dead_letter_record
from cartwatch.streams.kafka.sends import Outgoing, outgoing, send_all
from cartwatch.streams.storage.items import (
    AdverseEventReport,
    DeadLetter,
    PatientSnapshot,
    StorageItem,
)
from cartwatch.streams.storage.writer import StorageWriter
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.settings import Settings
from cartwatch.streams.worker.tables import TableRecords, table_write
from cartwatch.streams.worker.trial_state import TrialState


class InputRecord(Protocol):
    """An input record as aiokafka's consumer gives it (`ConsumerRecord`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int  # milliseconds since the epoch


# Messages applied between two turns of the event loop (~20-100 us each): a batch of 5,000
# holds the loop ~25 ms at a time, not its whole length.
MESSAGES_PER_TURN = 500


@dataclass
class Batch:
    """What one batch of input messages did, gathered before anything is published."""

    touched: dict[str, int] = field(default_factory=dict)  # record key -> input partition
    raised: list[tuple[AlertRaised, InputRecord]] = field(default_factory=list)
    invalid: list[tuple[InputRecord, list[str]]] = field(default_factory=list)
    adverse_events: list[AdverseEvent] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, handled: Handled, message: InputRecord) -> None:
        self.outcomes[handled.event_type, handled.outcome] += 1
        if handled.outcome == "invalid":
            self.invalid.append((message, handled.reasons))
        elif handled.outcome == "accepted":
            self.touched[handled.record_key] = message.partition
            self.raised += [(alert, message) for alert in handled.alerts]
            if isinstance(handled.event, AdverseEvent):
                self.adverse_events.append(handled.event)

    def extend(self, other: Batch) -> None:
        """Add what a later batch produced (a checkpoint spans batches)."""
        self.touched.update(other.touched)
        self.raised += other.raised
        self.invalid += other.invalid
        self.adverse_events += other.adverse_events
        self.outcomes.update(other.outcomes)

    def storage_items(self, store: TableRecords) -> Iterator[StorageItem]:
        """The database rows of the batch: snapshots, reports, alerts, dead letters."""
        for key in self.touched:
            yield PatientSnapshot.of(store[key])
        yield from (AdverseEventReport.of(event) for event in self.adverse_events)
        yield from (alert for alert, _ in self.raised)
        for m, reasons in self.invalid:
            yield DeadLetter(m.topic, m.partition, m.offset, m.key, m.value, reasons)


class BatchProcessor:
    """Applies batches of input events (`apply`: alerts and dead letters published at once)
    and writes what they changed at each checkpoint (`checkpoint`), in order."""

    def __init__(
        self,
        app: faust.App,
        trial: TrialState,
        alert_table: faust.GlobalTable,
        metrics: Metrics,
        settings: Settings,
        writer: StorageWriter | None,
        embedded: bool,
    ) -> None:
        self.app = app
        self.trial = trial
        self.alert_table = alert_table
        self.metrics = metrics
        self.settings = settings
        self.writer = writer
        self.embedded = embedded  # the embedded broker takes a batch's records one by one
        self.type_by_topic = settings.input_topics
        self.pending = Batch()  # what the batches since the last checkpoint produced

    async def apply(self, messages: list[InputRecord]) -> None:
        """Apply a batch of `messages` and publish its alerts and dead letters (steps 1-2);
        what it changed waits for the `checkpoint`."""
        trial = self.trial
        await trial.ensure_loaded()
        store, batch = trial.store, Batch()
        for n, message in enumerate(messages, start=1):
            if n % MESSAGES_PER_TURN == 0:
                await asyncio.sleep(0)  # the API, /metrics and the heartbeats meanwhile
            kind = self.type_by_topic.get(message.topic)
            handled = trial.pipeline.handle(message.value, kind, key=message.key)
            batch.add(handled, message)
            if handled.outcome == "accepted":
                record = store[handled.record_key]
                batch.raised += [(a, message) for a in trial.monitor.observe(record, handled.event)]
        await self._publish(batch)
        self.pending.extend(batch)
        self.metrics.events_applied.inc(len(messages))

    async def checkpoint(self) -> None:
        """Write what the batches since the last checkpoint changed: their database rows,
        then each touched patient's record once (steps 3-4); the caller then commits the
        input offsets."""
        batch = self.pending
        await self._store(batch)
        # The input offsets are committed when this returns: the changelog records must be
        # on the broker by then (`tables.table_write`). The alert table's entries before
        # them (`apply`): a patient record that claims an alert is never on the broker
        # without the alert's entry (a crash between would skip it for good).
        touched, writes = list(batch.touched.items()), []
        for start in range(0, len(touched), MESSAGES_PER_TURN):  # encoded a few at a time
            writes += self.trial.store.commit(dict(touched[start : start + MESSAGES_PER_TURN]))
            await asyncio.sleep(0)
        await send_all(writes, self.embedded)
        for (event_type, outcome), n in batch.outcomes.items():  # counted once stored
            self.metrics.events.labels(event_type, outcome).inc(n)
        self.pending = Batch()

    def discard(self) -> None:
        """Forget what the batches since the last checkpoint applied: their events are read
        again (a batch or a checkpoint failed)."""
        self.pending = Batch()
        self.trial.store.discard_pending()
        self.trial.invalidate()

    async def _publish(self, batch: Batch) -> None:
        """Send the dead letters and the alerts, wait for the broker, then write and wait
        for the alerts' entries in the alert table.

        Each goes to the partition of the message that caused it: every topic has the same
        partitions, and the inputs are keyed by patient, so a patient's alerts stay in order.
        Events read again after a crash raise their alerts again: an alert whose entry is
        in the table is on the alerts topic already (the entry follows its acknowledgement)
        and is not sent a second time. (Its database row is written again, a no-op.)
        """
        new = [(a, m) for a, m in batch.raised if a.alert_id not in self.alert_table]
        records = [self._dead_letter(message, reasons) for message, reasons in batch.invalid]
        records += [self._alert(alert, message.partition) for alert, message in new]
        await send_all(records, self.embedded)
        for message, _ in batch.invalid:  # counted once on the broker, not per attempt
            self.metrics.dead_letters.labels(message.topic).inc()
        writes = []
        for alert, message in new:
            self.metrics.alerts.labels(alert.rule, alert.severity).inc()
            self.metrics.event_to_alert.observe(max(0.0, time.time() - message.timestamp / 1000))
            value, partition = alert.model_dump(), message.partition
            writes.append(table_write(self.alert_table, alert.alert_id, value, partition))
        await send_all(writes, self.embedded)

    async def _store(self, batch: Batch) -> None:
        if self.writer is None:
            return
        for item in batch.storage_items(self.trial.store):
            await self.writer.put(item)
        await self.writer.flush()

    def _alert(self, alert: AlertRaised, partition: int) -> Outgoing:
        key = alert.patient_id.encode() if alert.patient_id is not None else None
        value = alert.model_dump_json().encode()
        topic = self.settings.alerts_topic
        return outgoing(self.app.producer, topic, partition, key, value)

    def _dead_letter(self, message: InputRecord, reasons: list[str]) -> Outgoing:
        headers = dead_letter_headers(message.topic, message.partition, message.offset, reasons)
        topic, partition = self.settings.dead_letter_topic, message.partition
        limit = self.app.conf.producer_max_request_size
        key, value = dead_letter_record(message.key, message.value, headers, limit)
        return outgoing(self.app.producer, topic, partition, key, value, headers)
