"""A global table's in-memory store that reads its changelog in bulk before Faust recovers it.

Faust restores an in-memory table by replaying its changelog one message at a time, and the
embedded broker answers that consumer's many small fetches slowly: 35 s for the 200,000
records of 100,000 patients (docs/BENCHMARKS.md). This store reads the changelog with a
plain aiokafka consumer (no group, large fetches) up to the end offsets, and tells Faust the
last offset it applied (`persisted_offset`), so Faust's own recovery replays only what was
written since. It reads once before the worker joins its group (`preload`, a long read in
the rebalance would stop the heartbeats), then on each rebalance the records written since,
within half the session timeout. Faust's recovery, and its live reading of the changelog
afterwards, go through `apply_changelog_batch`, which keeps the offsets current. The input
path reads to the ends again (`catch_up`) after each assignment of input partitions, before
it processes any of their events: the records the previous owner wrote are then here.

Both paths apply a changelog partition's records in offset order, and neither applies a
record at or below the last offset applied (they overlap), so the table only moves forward.
The values are what Faust's serializer for the table gives (`app.serializers`), so the
table holds the same data whichever path read a record.

Faust makes the store from the table's URL (`BULK_STORE_URL`): the scheme is registered as
a Faust store in pyproject.toml (entry point group `faust.stores`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.stores import memory
from faust.types import TP, EventT

log = logging.getLogger(__name__)

FETCH_BYTES = 64 * 1024 * 1024  # large fetches: the point is few round trips
# aiokafka's default wait. The embedded broker returns what it gathers within the wait and
# spends time on each fetch in proportion to the partition's length: 80,000 records took
# 25 s in 203 fetches with a 20 ms wait, 2.4 s in 10 with 500 ms (and 64 MB fetches).
FETCH_WAIT_MS = 500
LOAD_TIMEOUT_S = 300.0  # before the join; then Faust's recovery reads what is left
CATCH_UP_TIMEOUT_S = 60.0  # after an assignment of input partitions; then it is tried again
BULK_STORE_URL = "cartwatch-bulk://memory"  # the entry point in pyproject.toml (a URL with
# nothing after the scheme is false to Faust, which then takes its default store)


class BulkLoadedStore(memory.Store):
    """Faust's memory store, loaded from its changelog in bulk on a rebalance."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.consumer_options: dict[str, Any] = {}  # set by `use_bulk_loaded_store`
        self.applied: dict[TP, int] = {}  # changelog partition -> last offset applied
        self.bulk_loaded = 0  # records read in bulk, in all (for the logs and the tests)

    def persisted_offset(self, tp: TP) -> int | None:
        """The last changelog offset in the store: Faust's recovery goes on from there."""
        return self.applied.get(tp)

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Faust's recovery and live reading; the offsets are kept for the next rebalance."""
        events = [e for e in batch if e.message.offset > self.applied.get(e.message.tp, -1)]
        super().apply_changelog_batch(events, to_key, to_value)
        for event in events:
            self.applied[event.message.tp] = event.message.offset

    async def preload(self) -> None:
        """Read the whole changelog (what is there) before the worker joins its group.

        Called before the Faust app starts (streams/worker/main.py): a long read inside
        the rebalance would stop the group heartbeats (aiokafka sends none while the
        assignment callbacks run) and get the worker evicted.
        """
        topic = self.table.changelog_topic.get_topic_name()
        await self._load(topic, None, LOAD_TIMEOUT_S)

    async def catch_up(self) -> None:
        """Read the changelog to its end offsets (as they are now); raises if it could not."""
        topic = self.table.changelog_topic.get_topic_name()
        if not await self._load(topic, None, CATCH_UP_TIMEOUT_S):
            raise TimeoutError(f"{self.table_name}: changelog not read to its end")

    async def on_rebalance(
        self, assigned: set[TP], revoked: set[TP], newly_assigned: set[TP], generation_id: int = 0
    ) -> None:
        """Read what was written since `preload` or the last rebalance, within half the
        session timeout (no heartbeats meanwhile); Faust's recovery reads anything left.

        Faust calls this before its recovery asks for `persisted_offset`; the partitions
        are those the recovery will read (a global table's are all of them).
        """
        assignor, topic = self.app.assignor, self.table.changelog_topic.get_topic_name()
        tps = assignor.assigned_actives() | assignor.assigned_standbys()
        partitions = {tp.partition for tp in tps if tp.topic == topic}
        if partitions:
            await self._load(topic, partitions, self.app.conf.broker_session_timeout / 2)

    async def _load(self, topic: str, partitions: set[int] | None, budget_s: float) -> bool:
        """Read `partitions` of `topic` (None: all) from where the store stands to their end
        offsets, for at most `budget_s`; whether it got there. What was read stands if
        anything fails."""
        started, before, unfinished = time.monotonic(), self.bulk_loaded, False
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # offset 0 gone (retention): from the first kept
            fetch_max_wait_ms=FETCH_WAIT_MS,
            fetch_max_bytes=FETCH_BYTES,
            max_partition_fetch_bytes=FETCH_BYTES,
            **self.consumer_options,
        )
        try:
            await consumer.start()
            if partitions is None:
                await consumer.topics()  # the cluster's metadata, so the next line knows
                partitions = consumer.partitions_for_topic(topic) or set()
            unfinished = await self._read(consumer, topic, partitions, started + budget_s)
        except Exception as exc:  # Faust's recovery reads whatever this did not
            log.warning("%s: bulk read stopped (%s)", self.table_name, type(exc).__name__)
            unfinished = True
        finally:
            with contextlib.suppress(Exception):  # a consumer that did not start
                await consumer.stop()
        log.info(
            "%s: %d changelog records read in bulk in %.1f s%s",
            self.table_name, self.bulk_loaded - before, time.monotonic() - started,
            "; not to the end" if unfinished else "",
        )  # fmt: skip
        return not unfinished

    async def _read(
        self, consumer: AIOKafkaConsumer, topic: str, partitions: set[int], deadline: float
    ) -> bool:
        """Fetch until every partition reaches its end offset; True if the deadline came first."""
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return False
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, self.applied.get(TP(topic, tp.partition), -1) + 1)
        wanted = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
        while wanted and time.monotonic() < deadline:
            fetched = await consumer.getmany(*wanted, timeout_ms=1000, max_records=50_000)
            for tp, records in fetched.items():
                self._apply_records(TP(tp.topic, tp.partition), records)
            wanted = [tp for tp in wanted if await consumer.position(tp) < ends[tp]]
        return bool(wanted)

    def _apply_records(self, tp: TP, records: list) -> None:
        data, serializers = self.data, self.app.serializers
        last = self.applied.get(tp, -1)
        records = [record for record in records if record.offset > last]
        for record in records:
            key = serializers.loads_key(self.key_type, record.key, serializer=self.key_serializer)
            if record.value is None:
                data.pop(key, None)
            else:
                data[key] = serializers.loads_value(
                    self.value_type, record.value, serializer=self.value_serializer
                )
        if records:
            self.applied[tp] = records[-1].offset
            self.bulk_loaded += len(records)


def bulk_loaded_store(
    table: faust.GlobalTable, consumer_options: dict[str, Any]
) -> BulkLoadedStore:
    """The store of a table made with `store=BULK_STORE_URL`, given the options of the
    consumers it reads the changelog with."""
    store = table.data
    if not isinstance(store, BulkLoadedStore):
        raise TypeError(f"table {table.name}: store {type(store).__name__}, not BulkLoadedStore")
    store.consumer_options = consumer_options
    return store
