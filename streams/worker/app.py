"""The Faust app of one worker: its two global tables, the input path and the gauges.

`Worker` is the composition of the worker runtime: the input consumer
(streams/kafka/input_consumer.py, a service of the app) reads batches of input events and
hands each to `BatchProcessor` (batch.py), whose writes end in a checkpoint; a timer
refreshes the gauges (`GaugeRefresher`, gauges.py), and the API reads `WorkerView`
(view.py). The records and the trial monitor they share are `TrialState` (trial_state.py).
"""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from cartwatch.streams.kafka.faust_settings import (
    faust_settings,
    input_consumer_options,
    uses_embedded_broker,
)
from cartwatch.streams.kafka.input_consumer import InputConsumer
from cartwatch.streams.kafka.security import aiokafka_options
from cartwatch.streams.storage.writer import StorageWriter
from cartwatch.streams.worker.batch import BatchProcessor
from cartwatch.streams.worker.changelog_store import (
    BULK_STORE_URL,
    BulkLoadedStore,
    bulk_loaded_store,
)
from cartwatch.streams.worker.gauges import GaugeRefresher
from cartwatch.streams.worker.loop_lag import EventLoopLag
from cartwatch.streams.worker.metrics import Metrics
from cartwatch.streams.worker.settings import Settings
from cartwatch.streams.worker.tables import TableRecords
from cartwatch.streams.worker.trial_state import TrialState
from cartwatch.streams.worker.view import WorkerView


class Worker:
    """One cartwatch worker: the Faust app, wired to the batch processor, gauges and view."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        writer: StorageWriter | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = Metrics(registry or CollectorRegistry())
        self.metrics.start_at_zero(settings.input_topics)
        # The app id names the consumer group and the table changelogs: one per topic prefix,
        # so deployments (and test runs) with different prefixes never share state.
        embedded = uses_embedded_broker(settings)
        self.app = faust.App(settings.topic_prefix, **faust_settings(settings, embedded))
        self._bulk_stores: list[BulkLoadedStore] = []  # see `preload_tables`
        self.patient_to_record = self._global_table("patient_to_record", bytes)  # record_codec
        self.alert_id_to_alert = self._global_table("alert_id_to_alert", None)  # JSON dicts
        self.store = TableRecords(self.patient_to_record)
        self.trial = TrialState(self.store, settings.thresholds)
        self.processor = BatchProcessor(
            self.app, self.trial, self.alert_id_to_alert, self.metrics, settings, writer, embedded
        )
        self.input = InputConsumer(
            list(settings.input_topics),
            input_consumer_options(settings, embedded),
            self.processor,
            self._on_assigned,
            self._on_revoked,
            settings.batch_max,
            settings.batch_within_s,
            settings.checkpoint_events,
            settings.checkpoint_interval_s,
        )
        self.view = WorkerView(self.app, self.input, self.store, self.alert_id_to_alert, settings)
        self.gauges = GaugeRefresher(
            self.metrics,
            self.trial,
            settings.thresholds.toxicity,
            self.view.consumer_lag,
            self.view.is_consuming,
            writer,
            engine,
        )
        self.app.task(self._start_input)  # once the tables are recovered and the producer up
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
            store=BULK_STORE_URL,  # a fast restart; read to the end after each assignment
        )
        self._bulk_stores.append(bulk_loaded_store(table, aiokafka_options(self.settings)))
        return table

    async def preload_tables(self) -> None:
        """Read the global tables' changelogs in bulk; before the app starts (a fast restart)."""
        for store in self._bulk_stores:
            await store.preload()

    async def _start_input(self) -> None:
        """Start the input path as a service of the app (stopped with it, before its
        producer and tables)."""
        await self.app.add_runtime_dependency(self.input)

    async def _on_assigned(self) -> None:
        """Input partitions assigned: the tables read to their changelogs' ends (what the
        previous owners committed, their records hold), and the monitor rebuilt."""
        for store in self._bulk_stores:
            await store.catch_up()
        self.store.forget_owned()
        self.trial.invalidate()

    async def _on_revoked(self) -> None:
        self.store.forget_owned()
        self.trial.invalidate()
