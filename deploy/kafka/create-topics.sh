#!/bin/sh
# Create cartwatch's topics on Apache Kafka; idempotent (--if-not-exists), safe to re-run.
# Used by the `topics` service of docker-compose.yml and the Kubernetes Job (kustomization.yaml).
#
#   CARTWATCH_KAFKA_BOOTSTRAP   bootstrap servers (required; the worker's variable)
#   CARTWATCH_TOPIC_PREFIX      topic prefix (default cartwatch; the worker's variable)
#   CARTWATCH_TOPIC_PARTITIONS  partitions of every topic (default 6; give the workers the same)
#   REPLICATION_FACTOR          replicas per partition (default 3)
#   MIN_INSYNC_REPLICAS         with the producers' acks=all, a write needs this many (default 2)
#   CLIENT_PROPERTIES           optional client properties file (TLS, SASL): --command-config
#   KAFKA_BIN                   where kafka-topics.sh is (default /opt/kafka/bin, apache/kafka)
#
# Retention: every topic keeps its records for ever (retention.ms=-1). The input topics are
# the trial's source data, from which a worker rebuilds every figure; alerts and dead letters
# are part of the safety record (ICH E6 essential records must be kept for years). Table
# changelogs are compacted: only the latest record of a patient or alert matters.
# The five input topics must have the same partition count (co-partitioned by patient_id);
# never change it for a running trial (see docs/OPERATIONS.md, "Sizing").
set -eu

: "${CARTWATCH_KAFKA_BOOTSTRAP:?set CARTWATCH_KAFKA_BOOTSTRAP}"
PREFIX="${CARTWATCH_TOPIC_PREFIX:-cartwatch}"
PARTITIONS="${CARTWATCH_TOPIC_PARTITIONS:-6}"
REPLICATION="${REPLICATION_FACTOR:-3}"
MIN_ISR="${MIN_INSYNC_REPLICAS:-2}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"

create() { # create NAME CLEANUP_POLICY
  set -- "$1" "$2" --bootstrap-server "$CARTWATCH_KAFKA_BOOTSTRAP"
  if [ -n "${CLIENT_PROPERTIES:-}" ]; then
    set -- "$@" --command-config "$CLIENT_PROPERTIES"
  fi
  name="$1" policy="$2"
  shift 2
  "$KAFKA_BIN/kafka-topics.sh" "$@" --create --if-not-exists --topic "$name" \
    --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config "cleanup.policy=$policy" --config retention.ms=-1 --config retention.bytes=-1 \
    --config "min.insync.replicas=$MIN_ISR"
}

for suffix in infusions labs adverse-events observations dispositions alerts dead-letter; do
  create "$PREFIX.$suffix" delete
done
# Faust's table changelogs (the app id is the topic prefix), created here with the
# cluster's replication rather than by the worker with Faust's default of one replica.
for table in patient_to_record alert_id_to_alert; do
  create "$PREFIX-$table-changelog" compact
done
echo "cartwatch topics ready on $CARTWATCH_KAFKA_BOOTSTRAP (prefix $PREFIX, $PARTITIONS partitions)"
