"""Faust configuration derived from cartwatch settings, with embedded-broker workarounds."""

from __future__ import annotations

import logging

from streams.broker import is_embedded_broker
from streams.kafka_security import faust_credentials
from streams.settings import Settings

log = logging.getLogger(__name__)


def faust_settings(settings: Settings) -> dict:
    """Keyword arguments for `faust.App`."""
    conf: dict = {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",
        "datadir": settings.data_dir,
        "topic_partitions": settings.topic_partitions,
        "web_enabled": False,  # the API is our own aiohttp app (streams.api), token-guarded
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": min(3.0, settings.session_timeout_s / 3),
    }
    credentials = faust_credentials(settings)
    if credentials is not None:
        conf["broker_credentials"] = credentials
    embedded = settings.embedded_broker
    if embedded is None:
        embedded = is_embedded_broker(settings.kafka_bootstrap)
    log.info("embedded-broker workarounds %s", "on" if embedded else "off")
    if embedded:
        conf |= embedded_broker_workarounds()
    return conf


def embedded_broker_workarounds() -> dict:
    """Settings that work around defects of the embedded Tansu broker (README: "Embedded broker").

    - Tansu answers ListOffsets(latest) with the first offset of the last batch plus one
      when that batch holds several records, so a table restored from its changelog stops
      short (measured: 4957 of 5000 keys) and a rebalance can crash a worker with
      "persisted offset higher than highwater". aiokafka always accepts the first record
      of a batch, so a batch size of 1 byte means one record per batch and a right
      "latest" (5000/5000 and 20000/20000 keys recovered). Cost: about 30% throughput.
    - A group join waits half the session timeout, and a restarted worker waits out its
      dead predecessor's session: 4 s (heartbeat 0.5 s) brings a start from ~32 s to ~4 s.
    """
    return {
        "producer_max_batch_size": 1,
        "broker_session_timeout": 4.0,
        "broker_heartbeat_interval": 0.5,
        "broker_rebalance_timeout": 4.0,
    }
