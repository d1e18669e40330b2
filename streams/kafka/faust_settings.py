"""Faust's configuration and the input consumer's, derived from cartwatch settings, with
the embedded broker's workarounds."""

from __future__ import annotations

import logging

from cartwatch.streams.devtools.broker import is_embedded_broker
from cartwatch.streams.kafka.input_consumer import input_group
from cartwatch.streams.kafka.security import aiokafka_options, faust_credentials
from cartwatch.streams.worker.settings import Settings

log = logging.getLogger(__name__)


def uses_embedded_broker(settings: Settings) -> bool:
    """Whether the workarounds apply: as configured, or detected by the cluster id."""
    if settings.embedded_broker is not None:
        return settings.embedded_broker
    return is_embedded_broker(settings.kafka_bootstrap)


def faust_settings(settings: Settings, embedded: bool) -> dict:
    """Keyword arguments for `faust.App` (with the embedded broker's workarounds if it is)."""
    conf: dict = {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",
        "datadir": settings.data_dir,
        "topic_partitions": settings.topic_partitions,
        "web_enabled": False,  # the API is our own aiohttp app (streams/http/api.py), token-guarded
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_s / 3),
        # A batch's changelog records (~1.7 KB each) in a few produce requests; Faust's
        # default is 16 KB. Below the 1 MB a Kafka broker accepts by default.
        "producer_max_batch_size": 512 * 1024,
    }
    credentials = faust_credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    log.info("embedded-broker workarounds %s", "on" if embedded else "off")
    if embedded:
        conf |= embedded_broker_workarounds()
    return conf


# 10 ms: a raw consumer of the bench's 2,000 events/s lagged p99 24 ms (68 ms at 100 ms,
# 267 ms at 500 ms; docs/BENCHMARKS.md, 2026-11-30).
EMBEDDED_FETCH_WAIT_MS = 10


# aiokafka's default: Apache Kafka answers a fetch as soon as records arrive.
FETCH_WAIT_MS = 500


def fetch_wait_ms(settings: Settings, embedded: bool) -> int:
    """The input consumer's fetch wait."""
    if settings.fetch_wait_ms is not None:
        return settings.fetch_wait_ms
    return EMBEDDED_FETCH_WAIT_MS if embedded else FETCH_WAIT_MS


def input_consumer_options(settings: Settings, embedded: bool) -> dict:
    """Keyword arguments for the input consumer's `AIOKafkaConsumer` (its group, its
    timeouts as Faust's, the fetch wait; streams/kafka/input_consumer.py)."""
    session = settings.session_timeout_s
    conf = {
        "broker_session_timeout": session,
        "broker_heartbeat_interval": min(3.0, session / 3),
        "broker_rebalance_timeout": max(60.0, session),
    }
    if embedded:
        conf |= embedded_broker_workarounds()
    return aiokafka_options(settings) | {
        "group_id": input_group(settings.topic_prefix),
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": fetch_wait_ms(settings, embedded),
        "session_timeout_ms": int(conf["broker_session_timeout"] * 1000),
        "heartbeat_interval_ms": int(conf["broker_heartbeat_interval"] * 1000),
        "rebalance_timeout_ms": int(conf["broker_rebalance_timeout"] * 1000),
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
    }


def embedded_broker_workarounds() -> dict:
    """Settings that work around defects of the embedded Tansu broker (README: "Embedded broker").

    - Tansu answers ListOffsets(latest) with the first offset of the last batch plus one
      when that batch holds several records, so a table restored from its changelog stops
      short (measured: 4957 of 5000 keys) and a rebalance can crash a worker with
      "persisted offset higher than highwater". The worker sends each partition's last
      record of a batch alone (`sends.send_all`). Faust's consistency check is off:
      a crash between a batch's two sends leaves a several-record batch last, and the check
      would stop another worker over a "latest" that is wrong, not over lost data (the
      records in that batch belong to events not yet acknowledged, processed again).
    - A group join waits half the session timeout, and a restarted worker waits out its
      dead predecessor's session: 4 s (heartbeat 0.5 s) brings a start from ~32 s to ~4 s.
    - Tansu holds a fetch for the consumer's whole fetch wait even when records arrive
      meanwhile, so Faust's fixed 1,500 ms was an alert's latency floor (p50 ~1 s at 2,000
      events/s): the input consumer's `EMBEDDED_FETCH_WAIT_MS`. (Faust's own consumer reads
      only the tables' changelogs, and keeps its 1,500 ms: the input path reads the tables
      to their ends itself before it processes a partition it was given.)
    """
    return {
        "recovery_consistency_check": False,
        "broker_session_timeout": 4.0,
        "broker_heartbeat_interval": 0.5,
        "broker_rebalance_timeout": 4.0,
    }
