#!/bin/sh
# docker-compose.yml only: the SCRAM-SHA-512 credential the workers log in with, set through
# the broker's loopback listener (the `topics` service shares the broker's network). Idempotent.
#
#   CARTWATCH_KAFKA_BOOTSTRAP      the loopback listener (required)
#   CARTWATCH_KAFKA_SASL_USERNAME  the workers' principal (default cartwatch)
#   SASL_PASSWORD_FILE             its password (default /run/secrets/kafka_sasl_password)
set -eu

: "${CARTWATCH_KAFKA_BOOTSTRAP:?set CARTWATCH_KAFKA_BOOTSTRAP}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
password="$(cat "${SASL_PASSWORD_FILE:-/run/secrets/kafka_sasl_password}")"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$CARTWATCH_KAFKA_BOOTSTRAP" --alter \
  --entity-type users --entity-name "${CARTWATCH_KAFKA_SASL_USERNAME:-cartwatch}" \
  --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
