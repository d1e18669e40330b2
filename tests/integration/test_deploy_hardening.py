"""deploy/ secure by default, checked without a cluster or a container engine: checkov's
policies over the Dockerfile and the manifests (and its secret scan over all of deploy/),
the manifests against the Kubernetes 1.30 schemas, and the settings that make each
container, pod and network path as narrow as the service allows.

Long-running check: checkov takes about ten seconds, once per module.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from tests.integration.deploy_queries import DEPLOY

KUBERNETES = "1.30.0"
MANIFEST_FILES = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
MANIFESTS = [doc for path in MANIFEST_FILES for doc in yaml.safe_load_all(path.read_text())]
KUSTOMIZATION = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
CHECKOV = Path(sys.executable).with_name("checkov")
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
METADATA_SERVICE = ipaddress.ip_address("169.254.169.254")


def _pods() -> dict[str, dict]:
    """The pod template of each workload, by its kind."""
    return {
        d["kind"]: d["spec"]["template"] for d in MANIFESTS if d["kind"] in ("Deployment", "Job")
    }


def _policies() -> list[dict]:
    return [d for d in MANIFESTS if d["kind"] == "NetworkPolicy"]


def _policy_for(labels: dict[str, str]) -> dict:
    (policy,) = (
        p
        for p in _policies()
        if p["spec"]["podSelector"]
        and p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    )
    return policy


def _ports(rule: dict) -> set[tuple[str, int]]:
    return {(p["protocol"], p["port"]) for p in rule["ports"]}


def _env(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.fixture(scope="module")
def checkov() -> list[dict]:
    """checkov's JSON reports over deploy/ (the operator's git-ignored secrets left out)."""
    ran = subprocess.run(
        [str(CHECKOV), "--directory", str(DEPLOY), "--skip-path", "deploy/secrets",
         "--framework", "dockerfile", "kubernetes", "secrets", "--skip-download",
         "--output", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    reports = json.loads(ran.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_checkov_fails_no_check_on_the_dockerfile_the_manifests_or_for_secrets(checkov):
    failed = [
        f"{r['check_type']} {c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for r in checkov
        for c in r["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    passed = {r["check_type"]: r["summary"]["passed"] for r in checkov}
    assert passed["dockerfile"] > 0 and passed["kubernetes"] > 0  # both were scanned


def test_every_checkov_skip_is_inline_with_a_reason(checkov):
    skipped = [c for r in checkov for c in r["results"]["skipped_checks"]]
    assert skipped, "no skip at all: drop this test's reason to exist"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= 8, (check["check_id"], check["resource"], reason)


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.name)
def test_every_manifest_is_valid_against_the_kubernetes_schemas_in_strict_mode(path: Path):
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)  # raises if invalid


def test_every_pod_runs_non_root_read_only_with_no_capability_token_or_escalation():
    for kind, template in _pods().items():
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False, kind
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["runAsUser"] >= 10000, kind
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, kind
            assert context["readOnlyRootFilesystem"] is True, kind
            assert context["capabilities"] == {"drop": ["ALL"]}, kind
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys() & resources["limits"].keys()
            written = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
            empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
            assert {
                m["name"] for m in container["volumeMounts"] if m["mountPath"] in written
            } <= empty
    namespace = next(d for d in MANIFESTS if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_worker_is_probed_and_keeps_its_data_dir_on_an_empty_dir():
    pod = _pods()["Deployment"]["spec"]
    (worker,) = pod["containers"]
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/healthz"
    data_dir = _env(worker)["CARTWATCH_DATA_DIR"]
    (mount,) = (m for m in worker["volumeMounts"] if m["mountPath"] == data_dir)
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == mount["name"])


def test_network_policy_denies_by_default_and_admits_only_ingress_and_prometheus():
    default = next(p for p in _policies() if p["spec"]["podSelector"] == {})
    assert set(default["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in default["spec"] and "egress" not in default["spec"]
    for kind, template in _pods().items():  # every pod has its own, narrower policy
        assert set(_policy_for(template["metadata"]["labels"])["spec"]["policyTypes"]) == {
            "Ingress",
            "Egress",
        }, kind
    worker = _pods()["Deployment"]
    policy = _policy_for(worker["metadata"]["labels"])["spec"]
    (rule,) = policy["ingress"]
    (container,) = worker["spec"]["containers"]
    api_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
    assert _ports(rule) == {("TCP", api_port)}
    sources = [
        (s["namespaceSelector"]["matchLabels"], s.get("podSelector", {}).get("matchLabels"))
        for s in rule["from"]
    ]
    assert sources == [
        ({"kubernetes.io/metadata.name": "ingress-nginx"}, None),
        ({"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "prometheus"}),
    ]
    assert "ingress" not in _policy_for(_pods()["Job"]["metadata"]["labels"])["spec"]


def test_network_policy_lets_the_worker_reach_dns_kafka_postgres_and_the_receivers_only():
    worker = _pods()["Deployment"]
    env = _env(worker["spec"]["containers"][0])
    kafka_port = int(str(env["CARTWATCH_KAFKA_BOOTSTRAP"]).rsplit(":", 1)[1])
    egress = _policy_for(worker["metadata"]["labels"])["spec"]["egress"]
    by_namespace = {
        rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: rule
        for rule in egress
        if "namespaceSelector" in rule["to"][0]
    }
    assert by_namespace.keys() == {"kube-system", "kafka", "postgres"}
    assert _ports(by_namespace["kube-system"]) == {("UDP", 53), ("TCP", 53)}
    assert by_namespace["kube-system"]["to"][0]["podSelector"]["matchLabels"] == {
        "k8s-app": "kube-dns"
    }
    assert _ports(by_namespace["kafka"]) == {("TCP", kafka_port)}
    assert _ports(by_namespace["postgres"]) == {("TCP", 5432)}
    (outside,) = (rule for rule in egress if "ipBlock" in rule["to"][0])
    assert _ports(outside) == {("TCP", 443), ("TCP", 587)}  # webhook (HTTPS), mail relay
    block = outside["to"][0]["ipBlock"]
    excluded = [ipaddress.ip_network(n) for n in block["except"]]
    for network in PRIVATE:
        assert any(network.subnet_of(e) for e in excluded), network
    assert any(METADATA_SERVICE in e for e in excluded)
    job = _pods()["Job"]
    job_egress = _policy_for(job["metadata"]["labels"])["spec"]["egress"]
    assert [r["to"][0]["namespaceSelector"]["matchLabels"] for r in job_egress] == [
        {"kubernetes.io/metadata.name": "kube-system"},
        {"kubernetes.io/metadata.name": "kafka"},
    ]


def test_kubernetes_talks_to_kafka_over_sasl_ssl_and_to_postgres_verifying_its_name():
    pod = _pods()["Deployment"]["spec"]
    env = _env(pod["containers"][0])
    assert env["CARTWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["CARTWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["CARTWATCH_KAFKA_SASL_PASSWORD"] == {
        "secretKeyRef": {"name": "cartwatch", "key": "kafka-sasl-password"}
    }
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    ca_dir, ca_file = str(env["CARTWATCH_KAFKA_SSL_CAFILE"]).rsplit("/", 1)
    ca_secret = volumes[mounts[ca_dir]]["secret"]["secretName"]
    generated = {
        g["name"]: [f.split("=", 1)[0] for f in g["files"]]
        for g in KUSTOMIZATION["secretGenerator"]
    }
    assert ca_file in generated[ca_secret] and "postgres-ca.crt" in generated[ca_secret]
    # The database URL is the operator's file; the documented form verifies the server's name
    # against the CA mounted beside Kafka's.
    readme = (DEPLOY / "secrets" / "README.md").read_text()
    (url,) = re.findall(r"`(postgresql://\S+)`", readme)
    assert f"sslmode=verify-full&sslrootcert={ca_dir}/postgres-ca.crt" in url


def test_no_secret_is_committed_and_every_generated_one_reads_a_git_ignored_file():
    assert not [d for d in MANIFESTS if d["kind"] == "Secret"]
    sources = (
        [f.split("=", 1)[1] for g in KUSTOMIZATION["secretGenerator"] for f in g["files"]]
        + [s["file"] for s in COMPOSE["secrets"].values()]
        + [f for s in COMPOSE["services"].values() for f in s.get("env_file", [])]
    )
    paths = [str((DEPLOY / source).resolve().relative_to(DEPLOY.parent)) for source in sources]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=DEPLOY.parent, capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    assert sorted(ignored) == sorted(paths)
    text = "\n".join(
        p.read_text() for p in DEPLOY.rglob("*") if p.is_file() and "secrets" not in p.parts
    )
    assert not re.findall(r"(?i)replace[-_ ]?me|change[-_ ]?me|replace-with", text)


def test_compose_runs_every_container_read_only_without_capabilities_and_health_checked():
    for name, service in COMPOSE["services"].items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        if service["restart"] != "no":  # the one-shot `topics` has nothing to check
            assert service["healthcheck"]["test"][0] == "CMD", name
        for variable, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", variable):  # only a file's path
                assert re.search(r"_FILE$", variable) and str(value).startswith("/run/secrets/")


def test_compose_talks_to_kafka_over_sasl_ssl_and_to_postgres_over_verified_tls(tmp_path: Path):
    made = subprocess.run(
        ["sh", str(DEPLOY / "generate-secrets.sh"), str(tmp_path / "secrets")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    secrets = tmp_path / "secrets"
    kafka = COMPOSE["services"]["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = dict(re.findall(r"(\w+)://([\w.-]+:\d+)", kafka["KAFKA_ADVERTISED_LISTENERS"]))
    for name in ("worker-1", "worker-2"):
        worker = COMPOSE["services"][name]
        env = worker["environment"]
        listener = next(n for n, a in advertised.items() if a == env["CARTWATCH_KAFKA_BOOTSTRAP"])
        assert protocols[listener] == env["CARTWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert (
            env["CARTWATCH_KAFKA_SSL_CAFILE"] == "/run/secrets/ca_crt"
            and "ca_crt" in worker["secrets"]
        )
    database = next(
        line.split("=", 1)[1]
        for line in (secrets / "worker.env").read_text().splitlines()
        if line.startswith("CARTWATCH_DATABASE_URL=")
    )
    assert database.endswith(
        "@postgres:5432/cartwatch?sslmode=verify-full&sslrootcert=/run/secrets/ca_crt"
    )
    # The generated certificates pass the checks those clients make: the CA, and the name.
    key, cert, _ = pkcs12.load_key_and_certificates(
        (secrets / "kafka.keystore.p12").read_bytes(),
        (secrets / "kafka-keystore-password").read_bytes(),
    )
    kafka_pem = tmp_path / "kafka.pem"
    kafka_pem.write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        + cert.public_bytes(Encoding.PEM)
    )
    for host in ("kafka", "localhost"):
        assert _handshake(kafka_pem, kafka_pem, secrets / "ca.crt", host) in ("TLSv1.2", "TLSv1.3")
    server = secrets / "postgres-server.crt", secrets / "postgres-server.key"
    assert _handshake(*server, secrets / "ca.crt", "postgres") in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(*server, secrets / "ca.crt", "kafka")


def _handshake(cert: Path, key: Path, ca: Path, hostname: str) -> str:
    """A TLS handshake on 127.0.0.1 with `cert`, verified as a client of `hostname` would."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(ca))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def accept() -> None:
            connection, _ = listener.accept()
            try:
                with server.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused: its error is the answer

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client.wrap_socket(raw, server_hostname=hostname) as tls,
        ):
            version = tls.version()
        thread.join(10)
    return str(version)
