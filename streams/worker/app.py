"""The Faust app: topics, tables and the agent that feeds the processing core.

The agent stays short: decode and apply through `Pipeline`, publish what it returns.
At-least-once (see README, "Delivery guarantees"): a patient's alerts are acknowledged
by the broker before the patient's record (with its seen event ids and alerted levels)
is written to the table, so a crash between the two replays the event and re-sends the
same `alert_id` rather than losing the alert.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import faust
from faust.exceptions import ConsumerNotStarted
from prometheus_client import CollectorRegistry

from cartwatch.alerts.engine import TrialMonitor
from cartwatch.alerts.model import AlertRaised
from cartwatch.alerts.pipeline import Handled, Pipeline, record_key
from cartwatch.models.cohort import add_outcomes, trial_report
from cartwatch.models.dlt import boundary_report, toxicity_status
from cartwatch.models.events import AdverseEvent
from cartwatch.models.outcomes import PatientOutcome
from cartwatch.models.patient import PatientRecord
from cartwatch.streams.kafka import faust_patches
from cartwatch.streams.kafka.deadletter import dead_letter_headers, dead_letter_record
from cartwatch.streams.kafka.faust_settings import (
    faust_settings,
    fetch_wait_ms,
    uses_embedded_broker,
)
from cartwatch.streams.kafka.security import aiokafka_options
from cartwatch.streams.kafka.sends import Outgoing, outgoing, send_all
from cartwatch.streams.storage.items import (
    AdverseEventReport,
    DeadLetter,
    PatientSnapshot,
    StorageItem,
)
from cartwatch.streams.storage.writer import StorageWriter
from cartwatch.streams.worker.batches import take_ready
from cartwatch.streams.worker.changelog_store import BulkLoadedStore, use_bulk_loaded_store
from cartwatch.streams.worker.metrics import Metrics, on_study_by_days
from cartwatch.streams.worker.settings import Settings
from cartwatch.streams.worker.tables import TableRecords, table_write

GAUGE_PAUSE_FACTOR = 4  # pause after a trial-gauge refresh, in multiples of its duration
# Records decoded between two turns of the event loop when the whole table is first read
# (~0.1-0.3 ms each here: the API and /metrics answer within ~0.15 s meanwhile).
RECORDS_PER_TURN = 500
# Records whose outcome and on-study bucket are derived between two turns of a trial-gauge
# refresh (~60 µs each): a batch waits ~6 ms at each of its sends meanwhile (25 ms with 500
# outcomes a step put the alerts' p99 there).
RECORDS_PER_STEP = 100


def _key(alert: AlertRaised) -> bytes | None:
    return alert.patient_id.encode() if alert.patient_id is not None else None


def _value(alert: AlertRaised) -> bytes:
    return alert.model_dump_json().encode()


def withhold_acks(consumer: faust.types.ConsumerT, events: Iterable[faust.EventT]) -> None:
    """Keep the events of a batch that did not finish from being committed; read them again.

    `take_ready` (like Faust's `take_events`) acknowledges a batch's events in a `finally`
    when its generator is closed, also after the agent raised or was cancelled mid-batch (a
    send that failed, SIGTERM), and the next commit would then pass events whose alerts,
    rows or records were never written. Marked as acknowledged here, the messages never reach
    the consumer's acknowledgements: the committed offset stays before them, and each
    partition is handed out again from the batch's first event
    (`cartwatch.streams.kafka.faust_patches.read_again`).
    """
    first: dict[faust.types.TP, int] = {}
    for event in events:
        message = event.message
        message.acked = True
        first[message.tp] = min(first.get(message.tp, message.offset), message.offset)
    faust_patches.read_again(consumer, first)


@dataclass
class Batch:
    """What one batch of input messages did, gathered before anything is published."""

    touched: dict[str, int] = field(default_factory=dict)  # record key -> input partition
    raised: list[tuple[AlertRaised, faust.types.Message]] = field(default_factory=list)
    invalid: list[tuple[faust.types.Message, list[str]]] = field(default_factory=list)
    adverse_events: list[AdverseEvent] = field(default_factory=list)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, handled: Handled, message: faust.types.Message) -> None:
        self.outcomes[handled.event_type, handled.outcome] += 1
        if handled.outcome == "invalid":
            self.invalid.append((message, handled.reasons))
        elif handled.outcome == "accepted":
            self.touched[handled.record_key] = message.partition
            self.raised += [(alert, message) for alert in handled.alerts]
            if isinstance(handled.event, AdverseEvent):
                self.adverse_events.append(handled.event)

    def storage_items(self, store: TableRecords) -> Iterator[StorageItem]:
        """The database rows of the batch: snapshots, reports, alerts, dead letters."""
        for key in self.touched:
            yield PatientSnapshot.of(store[key])
        yield from (AdverseEventReport.of(event) for event in self.adverse_events)
        yield from (alert for alert, _ in self.raised)
        for m, reasons in self.invalid:
            yield DeadLetter(m.topic, m.partition, m.offset, m.key, m.value, reasons)


class Worker:
    """One cartwatch worker: the Faust app and the read-only view the API serves."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        writer: StorageWriter | None = None,
    ) -> None:
        faust_patches.install()  # see the module: input records in order; the fetch wait
        self.settings = settings
        self.metrics = Metrics(registry or CollectorRegistry())
        self.metrics.start_at_zero(settings.input_topics)
        # The app id names the consumer group and the table changelogs: one per topic prefix,
        # so deployments (and test runs) with different prefixes never share state.
        embedded = self.embedded = uses_embedded_broker(settings)
        self.app = faust.App(settings.topic_prefix, **faust_settings(settings, embedded))
        fetch_wait = fetch_wait_ms(settings, embedded)
        if fetch_wait is not None:
            faust_patches.set_fetch_wait(self.app, fetch_wait)
        self.type_by_topic = settings.input_topics
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.inputs = self.app.topic(*self.type_by_topic, **raw)
        self._bulk_stores: list[BulkLoadedStore] = []  # see `preload_tables`
        self.patient_to_record = self._global_table("patient_to_record", bytes)  # record_codec
        self.alert_id_to_alert = self._global_table("alert_id_to_alert", None)  # JSON dicts
        self.store = TableRecords(self.patient_to_record)
        self.pipeline = Pipeline(self.store, settings.thresholds)
        # Trial-level rules see every patient: this worker's through `observe`, the other
        # workers' through the global table, reloaded on every gauge refresh and before the
        # first batch after a start or a rebalance (see `_process_batch`).
        self.monitor = TrialMonitor(settings.thresholds)
        self._monitor_loaded = False
        self._monitored: dict[tuple[str, str], PatientRecord] = {}  # record last loaded
        self.writer = writer
        self.take_batches = take_ready  # streams/worker/batches.py: no wait while events are ready
        self.app.agent(self.inputs, name="process_patient_events")(self._process_patient_events)
        self.app.on_partitions_revoked.connect(self._on_partitions_revoked)
        self._clock = time.monotonic
        self._next_trial_refresh = 0.0  # on self._clock; see _refresh_gauges
        self.app.timer(settings.gauge_interval_s)(self._refresh_gauges)

    def _global_table(self, name: str, value_type: type | None) -> faust.GlobalTable:
        """A table every worker holds in full, kept live from its changelog.

        recovery_buffer_size=1: Faust applies a global table's changelog in batches of this
        size and keeps reading after recovery only when it is 1; with the default (1000)
        another worker's last few hundred updates would wait for the next rebalance.
        """
        table = self.app.GlobalTable(
            name,
            key_type=None,  # JSON
            value_type=value_type,  # Faust stores bytes as they are and anything else as JSON
            partitions=self.settings.topic_partitions,
            recovery_buffer_size=1,
        )
        store = use_bulk_loaded_store(table, aiokafka_options(self.settings))  # fast restart
        self._bulk_stores.append(store)
        return table

    async def preload_tables(self) -> None:
        """Read the global tables' changelogs in bulk; before the app starts (a fast restart)."""
        for store in self._bulk_stores:
            await store.preload()

    async def _on_partitions_revoked(self, sender: object, revoked: set, **kwargs: object) -> None:
        self.store.forget_owned()
        self._monitor_loaded = False

    async def _process_patient_events(self, stream: faust.StreamT) -> None:
        def read_again(events: list[faust.EventT]) -> None:
            withhold_acks(self.app.consumer, events)

        settings = self.settings
        batches = self.take_batches(stream, settings.batch_max, settings.batch_within_s, read_again)
        try:
            async for events in batches:
                try:
                    await self._process_batch(events)
                except BaseException:
                    read_again(events)
                    self._monitor_loaded = False  # it observed events that will come again
                    raise
        finally:  # now, not when collected: Faust restarts a crashed agent on the same stream
            await batches.aclose()

    async def _process_batch(self, events: list[faust.EventT]) -> None:
        """Apply a batch, then publish, store and commit in the order that loses nothing.

        Alerts and dead letters are acknowledged by the broker, then the alerts' entries
        in the alert table, then the database has every row of the batch, and only then
        are the records (with their seen event ids and alerted levels) written to the
        table; the offsets are committed after that. A crash at any point replays the
        batch into idempotent writes.
        """
        if not self._monitor_loaded:
            # After a start or a rebalance the tables are recovered before any event comes:
            # a monitor that saw only the patients of new events would judge the boundary
            # on part of the trial (a false crossing, seen after a SIGKILL).
            await self.store.decode_all(RECORDS_PER_TURN)
            self._reload_trial_monitor()
            self._monitor_loaded = True
        batch = Batch()
        self.store.begin_batch()
        for event in events:
            message = event.message
            kind = self.type_by_topic.get(message.topic)
            handled = self.pipeline.handle(event.value, kind, key=message.key)
            batch.add(handled, message)
            if handled.outcome == "accepted":
                record = self.store[handled.record_key]
                batch.raised += [(a, message) for a in self.monitor.observe(record, handled.event)]
        await self._publish(batch)
        await self._store(batch)
        # The events are acknowledged when this returns, and committed soon after: their
        # changelog records must be on the broker by then (`tables.table_write`). The
        # alert table's entries before them: a patient record that claims an alert is never
        # on the broker without the alert's entry (a crash between would skip it for good).
        await send_all(self.store.commit(batch.touched), self.embedded)
        for (event_type, outcome), n in batch.outcomes.items():  # counted once stored
            self.metrics.events.labels(event_type, outcome).inc(n)

    async def _publish(self, batch: Batch) -> None:
        """Send the dead letters and the alerts, wait for the broker, then write and wait
        for the alerts' entries in the alert table.

        Each goes to the partition of the message that caused it: every topic has the same
        partitions, and the inputs are keyed by patient, so a patient's alerts stay in order.
        Events read again after a crash raise their alerts again: an alert whose entry is
        in the table is on the alerts topic already (the entry follows its acknowledgement)
        and is not sent a second time. (Its database row is written again, a no-op.)
        """
        new = [(a, m) for a, m in batch.raised if a.alert_id not in self.alert_id_to_alert]
        records = [self._dead_letter(message, reasons) for message, reasons in batch.invalid]
        records += [self._alert(alert, message.partition) for alert, message in new]
        await send_all(records, self.embedded)
        for message, _ in batch.invalid:  # counted once on the broker, not per attempt
            self.metrics.dead_letters.labels(message.topic).inc()
        writes = []
        for alert, message in new:
            self.metrics.alerts.labels(alert.rule, alert.severity).inc()
            self.metrics.event_to_alert.observe(max(0.0, time.time() - message.timestamp))
            value, partition = alert.model_dump(), message.partition
            writes.append(table_write(self.alert_id_to_alert, alert.alert_id, value, partition))
        await send_all(writes, self.embedded)

    async def _store(self, batch: Batch) -> None:
        if self.writer is None:
            return
        for item in batch.storage_items(self.store):
            await self.writer.put(item)
        await self.writer.flush()

    def _alert(self, alert: AlertRaised, partition: int) -> Outgoing:
        topic = self.settings.alerts_topic
        return outgoing(self.app.producer, topic, partition, _key(alert), _value(alert))

    def _dead_letter(self, message: faust.types.Message, reasons: list[str]) -> Outgoing:
        headers = dead_letter_headers(message.topic, message.partition, message.offset, reasons)
        topic, partition = self.settings.dead_letter_topic, message.partition
        limit = self.app.conf.producer_max_request_size
        key, value = dead_letter_record(message.key, message.value, headers, limit)
        return outgoing(self.app.producer, topic, partition, key, value, headers)

    async def _refresh_gauges(self) -> None:
        """The consumer gauges on every tick; the trial gauges (over every record) and the
        trial monitor's reload (of the records that changed), when due.

        That work grows with the number of patients: it waits until the pause since its last
        run is `GAUGE_PAUSE_FACTOR` times that run's duration, so it never takes more than a
        fifth of the time however large the trial (the trial gauges lag instead).
        """
        self.metrics.observe_consumer(self._consumer_lag(), self.is_consuming())
        failing = self.writer is not None and not self.writer.healthy
        self.metrics.database_writes_failing.set(1 if failing else 0)
        started = self._clock()
        if started < self._next_trial_refresh:
            return
        await self._refresh_trials()
        self._next_trial_refresh = started + (self._clock() - started) * (1 + GAUGE_PAUSE_FACTOR)

    async def _refresh_trials(self) -> None:
        """Every trial's gauges and the trial monitor, from one listing of the records.

        It runs in the event loop between batches, so it gives the loop a turn every
        `RECORDS_PER_STEP` records and after each trial's report (in one step, 3,300
        patients held every event for ~0.25 s, the alerts' p99; in a thread, the GIL waits
        cost more). The listing and the monitor's reload are one step, so no batch changes
        records between them; the figures are then computed over that listing while batches
        go on (a batch replaces records, it never changes one in place). The boundary status
        comes from the monitor's courses, current after the reload.
        """
        await self.store.decode_all(RECORDS_PER_TURN)  # all bytes after a restart
        now, toxicity = time.time(), self.settings.thresholds.toxicity
        records = list(self.store.all())
        self._reload_trial_monitor(records)
        outcomes: dict[str, list[PatientOutcome]] = {}
        on_study: dict[str, dict[str, int]] = {}
        for start in range(0, len(records), RECORDS_PER_STEP):
            await asyncio.sleep(0)
            add_outcomes(outcomes, records[start : start + RECORDS_PER_STEP], now)
            on_study_by_days(records[start : start + RECORDS_PER_STEP], now, into=on_study)
        for trial in sorted(outcomes):
            await asyncio.sleep(0)
            self.metrics.observe_report(trial_report(trial, outcomes[trial]))
            courses = self.monitor.courses.get(trial, {}).values()
            self.metrics.observe_boundary(trial, toxicity_status(courses, toxicity, now).to_dict())
        self.metrics.observe_trial_operations(on_study)

    def _reload_trial_monitor(self, records: Iterable[PatientRecord] | None = None) -> None:
        """Courses of the patients (all workers') whose record changed since the last
        reload, and those records' event ids as seen (an id another worker used is then
        refused here too); without `records`, of every patient, the boundary levels fired
        forgotten. A record is replaced, never changed, once stored, so an unchanged one is
        the same object (one walk of 3,300 patients' courses held every event ~30 ms)."""
        if records is None:
            self._monitored.clear()
            self.pipeline.owners.clear()  # a failed batch's claims go with its records
            # A new monitor: a failed batch's courses and boundary levels go too. A boundary
            # alert raised again is recognised by its entry in the alert table (`_publish`)
            # and its database row written again, so a crash before the row leaves none
            # missing.
            self.monitor = TrialMonitor(self.settings.thresholds)
            records = self.store.all()
        monitored, changed = self._monitored, []
        for record in records:
            key = (record.trial_id, record.patient_id)
            if monitored.get(key) is not record:
                monitored[key] = record
                changed.append(record)
                self.pipeline.claim(record)
        self.monitor.load(changed)

    def _consumer_lag(self) -> dict[tuple[str, int], int]:
        """Highwater minus committed offset of each owned input partition (Faust's view)."""
        consumer, lag = self.app.consumer, {}
        try:
            owned = consumer.assignment()
        except ConsumerNotStarted:
            return lag
        for tp in owned:
            # next offset to read, as in Kafka; nothing committed yet counts from the start
            committed = consumer._committed_offset.get(tp) or 0
            highwater = consumer.highwater(tp) if tp.topic in self.type_by_topic else None
            if highwater is not None:
                lag[(tp.topic, tp.partition)] = max(0, highwater - committed)
        return lag

    # -- the read-only view served by the API (cartwatch.streams.http.api.StateView) --

    def records(self, trial_id: str | None = None) -> Iterable[PatientRecord]:
        return self.store.all(trial_id)

    def record(self, trial_id: str, patient_id: str) -> PatientRecord | None:
        return self.store.read(record_key(trial_id, patient_id))

    def trial_ids(self) -> list[str]:
        return sorted({r.trial_id for r in self.store.all()})

    def recent_alerts(self, trial_id: str | None = None) -> list[dict]:
        alerts = [a for a in self.alert_id_to_alert.values() if trial_id in (None, a["trial_id"])]
        alerts.sort(key=lambda a: (a["detected_at"], a["alert_id"]), reverse=True)
        return alerts[: self.settings.recent_alerts]

    def toxicity_boundary(self, trial_id: str, as_of: float | None = None) -> dict:
        return boundary_report(self.store.all(trial_id), self.settings.thresholds.toxicity, as_of)

    def is_consuming(self) -> bool:
        """Partitions assigned, this worker's table partitions restored, not rebalancing."""
        app = self.app
        if app.rebalancing or app.in_recovery or not app.consumer.assignment():
            return False
        # Not `standbys_ready`: that waits for changelog traffic and never comes on an idle
        # trial; other workers' partitions are read continuously after recovery anyway.
        return app.tables.recovery.completed.is_set()
