"""Where alerts go besides the Kafka topic: a signed webhook and email, behind `AlertSink`.

`base` is the interface, `webhook` and `smtp` the sinks, `routing` which severities each
one gets. The sinks only deliver; `streams/worker/delivery.py` decides when, retries and records.
"""
