#!/bin/sh
# The secrets docker-compose.yml reads, made on this host: random passwords and API token,
# a development CA, and certificates it signs for Kafka (kafka, localhost) and PostgreSQL
# (postgres). Written to deploy/secrets/ (git-ignored) or the directory given; a file that
# exists is kept, so running it again only adds what is missing (delete a file to renew it).
#
#   sh deploy/generate-secrets.sh [DIRECTORY]
#
# For Kubernetes, see deploy/secrets/README.md: the CAs and passwords there are your
# cluster's, not made here.
set -eu

dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
# The directory is the owner's alone; the files in it are readable by all, because the
# containers read them as their own users (10001, 999, 1000, 472) through bind mounts.
chmod 0700 "$dir"
cd "$dir"

random() { [ -e "$1" ] || openssl rand -hex 32 | tr -d '\n' > "$1"; }  # no newline: a value
for name in api-token postgres-password grafana-admin-password kafka-sasl-password \
  kafka-keystore-password; do
  random "$name"
done

if [ ! -e ca.crt ]; then
  openssl req -x509 -new -newkey rsa:3072 -noenc -keyout ca.key -out ca.crt -days 825 \
    -subj "/CN=cartwatch development CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi

issue() { # issue NAME DNS-NAMES...: NAME.key and NAME.crt signed by the CA
  name="$1"
  shift
  [ -e "$name.crt" ] && return
  sans=$(printf 'DNS:%s,' "$@")
  printf '%s\n' "subjectAltName=${sans%,}" "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer" > "$name.ext"
  openssl req -new -newkey rsa:3072 -noenc -keyout "$name.key" -out "$name.csr" -subj "/CN=$1" \
    2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
issue kafka kafka localhost
issue postgres-server postgres
if [ ! -e kafka.keystore.p12 ]; then
  openssl pkcs12 -export -name kafka -in kafka.crt -inkey kafka.key -certfile ca.crt \
    -passout file:kafka-keystore-password -out kafka.keystore.p12
fi

if [ ! -e worker.env ]; then
  {
    echo "CARTWATCH_API_TOKEN=$(cat api-token)"
    echo "CARTWATCH_DATABASE_URL=postgresql://cartwatch:$(cat postgres-password)@postgres:5432/cartwatch?sslmode=verify-full&sslrootcert=/run/secrets/ca_crt"
    echo "CARTWATCH_KAFKA_SASL_PASSWORD=$(cat kafka-sasl-password)"
  } > worker.env
fi
chmod 0644 ./*
chmod 0600 ca.key kafka.key  # no container reads these (the keystore holds Kafka's key)
echo "secrets in $(pwd)"
