"""The Faust app of one worker: its input topics, its two global tables and the agent.

`Worker` is the composition of the worker runtime: the agent reads batches of input events
(`batches.take_ready`) and hands each to `BatchProcessor` (batch.py), a timer refreshes the
gauges (`GaugeRefresher`, gauges.py), and the API reads `WorkerView` (view.py). The
records and the trial monitor they share are `TrialState` (trial_state.py).
"""

from __future__ import annotations

from collections.abc import Iterable

import faust
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from cartwatch.streams.kafka import faust_patches
from cartwatch.streams.kafka.faust_settings import (
    faust_settings,
    fetch_wait_ms,
    uses_embedded_broker,
)
from cartwatch.streams.kafka.security import aiokafka_options
from cartwatch.streams.storage.writer import StorageWriter
from cartwatch.streams.worker.batch import BatchProcessor
from cartwatch.streams.worker.batches import take_ready
from cartwatch.streams.worker.changelog_store import BulkLoadedStore, use_bulk_loaded_store
from cartwatch.streams.worker.gauges import GaugeRefresher
from cartwatch.streams.worker.loop_lag import EventLoopLag
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.settings import Settings
from cartwatch.streams.worker.tables import TableRecords
from cartwatch.streams.worker.trial_state import TrialState
from cartwatch.streams.worker.view import WorkerView


def withhold_acks(consumer: faust.types.ConsumerT, events: Iterable[faust.EventT]) -> None:
    """Keep the events of a batch that did not finish from being committed; read them again.

    `take_ready` (like Faust's `take_events`) acknowledges a batch's events in a `finally`
    when its generator is closed, also after the agent raised or was cancelled mid-batch (a
    send that failed, SIGTERM), and the next commit would then pass events whose alerts,
    rows or records were never written. Marked as acknowledged here, the messages never reach
    the consumer's acknowledgements: the committed offset stays before them, and each
    partition is handed out again from the batch's first event (`faust_patches.read_again`).
    """
    first: dict[faust.types.TP, int] = {}
    for event in events:
        message = event.message
        message.acked = True
        first[message.tp] = min(first.get(message.tp, message.offset), message.offset)
    faust_patches.read_again(consumer, first)


class Worker:
    """One cartwatch worker: the Faust app, wired to the batch processor, gauges and view."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        writer: StorageWriter | None = None,
        engine: Engine | None = None,
    ) -> None:
        faust_patches.install()  # see the module: input records in order; the fetch wait
        self.settings = settings
        self.metrics = Metrics(registry or CollectorRegistry())
        self.metrics.start_at_zero(settings.input_topics)
        # The app id names the consumer group and the table changelogs: one per topic prefix,
        # so deployments (and test runs) with different prefixes never share state.
        embedded = uses_embedded_broker(settings)
        self.app = faust.App(settings.topic_prefix, **faust_settings(settings, embedded))
        fetch_wait = fetch_wait_ms(settings, embedded)
        if fetch_wait is not None:
            faust_patches.set_fetch_wait(self.app, fetch_wait)
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        self.inputs = self.app.topic(*settings.input_topics, **raw)
        self._bulk_stores: list[BulkLoadedStore] = []  # see `preload_tables`
        self.patient_to_record = self._global_table("patient_to_record", bytes)  # record_codec
        self.alert_id_to_alert = self._global_table("alert_id_to_alert", None)  # JSON dicts
        self.store = TableRecords(self.patient_to_record)
        self.trial = TrialState(self.store, settings.thresholds)
        self.view = WorkerView(self.app, self.store, self.alert_id_to_alert, settings)
        self.processor = BatchProcessor(
            self.app, self.trial, self.alert_id_to_alert, self.metrics, settings, writer, embedded
        )
        self.gauges = GaugeRefresher(
            self.metrics,
            self.trial,
            settings.thresholds.toxicity,
            self.view.consumer_lag,
            self.view.is_consuming,
            writer,
            engine,
        )
        self.take_batches = take_ready  # no wait while events are ready (batches.py)
        self.app.agent(self.inputs, name="process_patient_events")(self.process_patient_events)
        self.app.on_partitions_revoked.connect(self._on_partitions_revoked)
        self.app.timer(settings.gauge_interval_s)(self.gauges.tick)
        self.app.task(EventLoopLag(self.metrics.event_loop_lag).run)

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
        self.trial.invalidate()

    async def process_patient_events(self, stream: faust.StreamT) -> None:
        """The agent: batches of input events through the processor; a batch that fails is
        read again, and the agent raises (Faust restarts it on the same stream)."""

        def read_again(events: list[faust.EventT]) -> None:
            withhold_acks(self.app.consumer, events)

        settings = self.settings
        batches = self.take_batches(stream, settings.batch_max, settings.batch_within_s, read_again)
        try:
            async for events in batches:
                try:
                    await self.processor.process(events)
                except BaseException:
                    read_again(events)
                    self.trial.invalidate()  # it observed events that will come again
                    raise
        finally:  # now, not when collected: Faust restarts a crashed agent on the same stream
            await batches.aclose()
