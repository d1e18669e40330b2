"""deploy/ checked without Docker or a cluster: Prometheus' and Alertmanager's own checkers,
the rule unit tests, and the compose file, the manifests, the Dockerfile and the topic
script parsed and held against the service's own configuration, metrics and topics."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from cartwatch.streams.kafka.topics import all_topics
from cartwatch.streams.worker.app import Worker
from cartwatch.streams.worker.settings import Settings
from tests.integration.deploy_queries import (
    DASHBOARDS,
    DEPLOY,
    RULE_FILES,
    exported_series,
    names_in,
    panel_queries,
    rule_queries,
)

COMPOSE = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
WORKERS = {name: s for name, s in SERVICES.items() if name.startswith("worker-")}
KUSTOMIZATION = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
MANIFESTS = [
    doc
    for resource in KUSTOMIZATION["resources"]
    for doc in yaml.safe_load_all((DEPLOY / resource).read_text())
]
SETTINGS = {f"CARTWATCH_{name.upper()}" for name in Settings.model_fields}
# Pinned official images, and the one this repository builds (deploy/Dockerfile).
OFFICIAL_IMAGES = {
    "apache/kafka",
    "postgres",
    "prom/prometheus",
    "prom/alertmanager",
    "grafana/grafana",
}
BUILT_IMAGE = "cartwatch:0.1.0"
# Documented variables of each official image (their READMEs on Docker Hub).
KAFKA_BROKER_CONFIGS = {
    "node.id", "process.roles", "listeners", "advertised.listeners",
    "listener.security.protocol.map", "controller.listener.names",
    "inter.broker.listener.name", "controller.quorum.voters",
    "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr", "group.initial.rebalance.delay.ms",
    "auto.create.topics.enable", "log.dirs", "sasl.enabled.mechanisms",
    "ssl.keystore.type",
}  # fmt: skip
# The image's own variables for TLS (files under /etc/kafka/secrets) and the JVM's options.
KAFKA_IMAGE_VARIABLES = {
    "KAFKA_SSL_KEYSTORE_FILENAME", "KAFKA_SSL_KEYSTORE_CREDENTIALS", "KAFKA_SSL_KEY_CREDENTIALS",
    "KAFKA_OPTS",
}  # fmt: skip
IMAGE_VARIABLES = {
    "apache/kafka": {"CLUSTER_ID"}
    | KAFKA_IMAGE_VARIABLES
    | {"KAFKA_" + config.upper().replace(".", "_") for config in KAFKA_BROKER_CONFIGS},
    "postgres": {"POSTGRES_USER", "POSTGRES_PASSWORD_FILE", "POSTGRES_DB"},
    "grafana/grafana": {
        "GF_SECURITY_ADMIN_USER", "GF_SECURITY_ADMIN_PASSWORD__FILE",
        "GF_AUTH_ANONYMOUS_ENABLED", "GF_USERS_ALLOW_SIGN_UP",
    },
}  # fmt: skip
TOPIC_SCRIPT_VARIABLES = {"REPLICATION_FACTOR", "MIN_INSYNC_REPLICAS", "CLIENT_PROPERTIES"}
KAFKA_TOOL_VARIABLES = {"LOG_DIR"}  # kafka-run-class.sh's log directory (the root is read-only)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What deploy/generate-secrets.sh makes, as an operator runs it before `compose up`."""
    where = tmp_path_factory.mktemp("deploy") / "secrets"
    made = _run("sh", str(DEPLOY / "generate-secrets.sh"), str(where))
    assert made.returncode == 0, made.stderr
    return where


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _image(service: dict) -> str:
    return service["image"].rsplit(":", 1)[0]


def _deployment() -> dict:
    return next(d for d in MANIFESTS if d["kind"] == "Deployment")


def _container_env(container: dict) -> dict[str, object]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# -- Prometheus, Alertmanager: their own checkers --


def test_promtool_accepts_the_prometheus_configuration_and_its_rule_files():
    checked = _run("promtool", "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = _run("promtool", "check", "rules", *map(str, RULE_FILES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout


def test_every_alert_rule_fires_on_its_condition_and_not_on_the_nearest_harmless_case():
    tested = _run("promtool", "test", "rules", str(DEPLOY / "prometheus/tests/rules_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    spec = yaml.safe_load((DEPLOY / "prometheus/tests/rules_test.yml").read_text())
    covered = {t["alertname"] for case in spec["tests"] for t in case["alert_rule_test"]}
    assert covered == {q.title for q in rule_queries()}


def test_amtool_accepts_the_alertmanager_configuration_with_webhook_and_email():
    path = DEPLOY / "alertmanager" / "alertmanager.yml"
    checked = _run("amtool", "check-config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(path.read_text())
    for receiver in config["receivers"]:
        assert receiver["webhook_configs"] and receiver["email_configs"], receiver["name"]
    teams = {q for r in RULE_FILES for q in re.findall(r"team: ([\w-]+)", r.read_text())}
    routed = {m.split('"')[1] for r in config["route"]["routes"] for m in r["matchers"]}
    assert teams - routed == {"platform"}  # platform is the root route's receiver


# -- Metrics: what the dashboards and rules read is what the service exports --


def test_every_metric_and_label_a_dashboard_or_rule_reads_is_exported_by_the_service():
    exported = exported_series()
    for query in panel_queries() + rule_queries():
        metrics, labels = names_in(query.expr)
        assert metrics, query
        assert metrics <= exported.keys(), (query, metrics - exported.keys())
        known = {"le", "instance", "job"}.union(*(exported[m] for m in metrics))
        assert labels <= known, (query, labels - known)


def test_no_metric_label_can_hold_a_patient_id():
    labels = set().union(*exported_series().values())
    assert not {label for label in labels if "patient" in label}


def test_dashboards_read_the_provisioned_datasource_and_define_the_variables_they_use():
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert {p.stem for p in DASHBOARDS} == {"trial-overview", "safety-alerts", "pipeline-health"}
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
            for target in panel["targets"]:
                used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
                assert used <= variables, (path.name, panel["title"], used)


# -- docker-compose.yml --


def test_compose_uses_pinned_official_images_and_builds_the_worker_from_the_dockerfile():
    for name, service in SERVICES.items():
        repository, _, tag = service["image"].rpartition(":")
        assert tag and tag != "latest", name
        if name in WORKERS:
            assert service["image"] == BUILT_IMAGE
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        else:
            assert repository in OFFICIAL_IMAGES, name


def test_compose_variables_are_the_services_own_configuration_names(secrets: Path):
    for name, service in SERVICES.items():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        allowed = IMAGE_VARIABLES.get(_image(service), set())
        if name in WORKERS:
            allowed = SETTINGS
            (env_file,) = service["env_file"]
            env |= _env_file(secrets / Path(env_file).name)  # the secrets, from their file
            Settings(**{k.removeprefix("CARTWATCH_").lower(): v for k, v in env.items()})
        elif name == "topics":
            allowed = SETTINGS | TOPIC_SCRIPT_VARIABLES | KAFKA_TOOL_VARIABLES
        assert set(env) <= allowed, (name, set(env) - allowed)
    cluster_id = SERVICES["kafka"]["environment"]["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16  # a KRaft cluster id


def test_compose_addresses_and_ports_point_at_services_that_listen_there(secrets: Path):
    kafka = SERVICES["kafka"]["environment"]
    listeners = dict(re.findall(r"(\w+)://[\d.]*:(\d+)", kafka["KAFKA_LISTENERS"]))
    advertised = dict(re.findall(r"(\w+)://([\w.-]+:\d+)", kafka["KAFKA_ADVERTISED_LISTENERS"]))
    for name, worker in (*WORKERS.items(), ("topics", SERVICES["topics"])):
        bootstrap = worker["environment"]["CARTWATCH_KAFKA_BOOTSTRAP"]
        assert bootstrap in advertised.values(), name
        assert bootstrap.split(":")[1] in listeners.values(), name
    published = {
        name: {p.rsplit(":", 1)[1] for p in s.get("ports", [])} for name, s in SERVICES.items()
    }
    for name, worker in WORKERS.items():
        assert published[name] == {worker["environment"]["CARTWATCH_API_PORT"]}
    prometheus = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    scraped = {
        job["job_name"]: [t for s in job["static_configs"] for t in s["targets"]]
        for job in prometheus["scrape_configs"]
    }
    assert scraped["cartwatch"] == [
        f"{name}:{w['environment']['CARTWATCH_API_PORT']}" for name, w in WORKERS.items()
    ]
    alertmanagers = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == ["alertmanager:9093"] and "9093" in published["alertmanager"]
    grafana = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert grafana["datasources"][0]["url"] == "http://prometheus:9090"
    assert "9090" in published["prometheus"]
    database = _env_file(secrets / "worker.env")["CARTWATCH_DATABASE_URL"]
    user = SERVICES["postgres"]["environment"]
    password = (secrets / "postgres-password").read_text()
    assert database == (
        f"postgresql://{user['POSTGRES_USER']}:{password}@postgres:5432/{user['POSTGRES_DB']}"
        "?sslmode=verify-full&sslrootcert=/run/secrets/ca_crt"
    )


def test_compose_mounts_exist_and_grafana_finds_the_dashboards_where_provisioned():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in COMPOSE["volumes"], (name, source)
    provider = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/cartwatch.yml").read_text()
    )
    mounts = dict(v.split(":")[:2] for v in SERVICES["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]


# -- Dockerfile --


def test_the_dockerfile_is_multi_stage_non_root_and_checks_healthz_on_the_api_port():
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "COPY --from=build" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (.*)$", text, re.M | re.S)
    assert healthcheck and "/healthz" in healthcheck[1]
    port = re.search(r"CARTWATCH_API_PORT=(\d+)", text)[1]
    assert re.search(rf"^EXPOSE {port}$", text, re.M)
    assert set(re.findall(r"\b(CARTWATCH_\w+)=", text)) <= SETTINGS
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for copied in re.findall(r"^COPY (?!--)(.+) \S+$", text, re.M):
        for source in copied.split():
            assert (DEPLOY.parent / source).exists() and f"!{source}" in ignored, source


# -- Kubernetes --


def test_kubernetes_workers_are_probed_on_healthz_and_read_secrets_that_exist():
    deployment = _deployment()
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    env = _container_env(container)
    assert set(env) <= SETTINGS
    plain = {k.removeprefix("CARTWATCH_").lower(): v for k, v in env.items() if isinstance(v, str)}
    settings = Settings(**plain)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.api_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    # The Secret is generated from operator-made files (kustomization.yaml, secretGenerator).
    (secret,) = (g for g in KUSTOMIZATION["secretGenerator"] if g["name"] == "cartwatch")
    generated = {entry.split("=", 1)[0] for entry in secret["files"]}
    refs = [v["secretKeyRef"] for v in env.values() if isinstance(v, dict)]
    assert {r["key"] for r in refs} == generated
    assert {r["name"] for r in refs} == {secret["name"]}
    assert {"CARTWATCH_API_TOKEN", "CARTWATCH_DATABASE_URL"} <= {
        k for k, v in env.items() if isinstance(v, dict)
    }
    annotations = pod["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == settings.api_port
    image = KUSTOMIZATION["images"][0]
    assert container["image"] == f"{image['name']}:{image['newTag']}" == BUILT_IMAGE
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_kubernetes_service_and_budget_select_the_workers():
    labels = _deployment()["spec"]["template"]["metadata"]["labels"]
    service = next(d for d in MANIFESTS if d["kind"] == "Service")
    budget = next(d for d in MANIFESTS if d["kind"] == "PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


# -- Topics: the script creates exactly what the workers use --


def _created_topics(env: dict[str, str], tmp_path: Path) -> list[list[str]]:
    """Run create-topics.sh against a stand-in kafka-topics.sh that records its arguments."""
    calls = tmp_path / "calls.jsonl"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" >> "$CALLS"; printf \'\\n\' >> "$CALLS"\n')
    fake.chmod(0o755)
    script = DEPLOY / "kafka" / "create-topics.sh"
    env = env | {"KAFKA_BIN": str(tmp_path), "CALLS": str(calls), "PATH": "/usr/bin:/bin"}
    ran = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    lines = calls.read_bytes().split(b"\n")
    return [line.decode().split("\0")[:-1] for line in lines if line]


def _option(call: list[str], name: str) -> list[str]:
    return [call[i + 1] for i, arg in enumerate(call) if arg == name]


def _check_topics(env: dict[str, str], worker_env: dict, tmp_path: Path) -> list[list[str]]:
    calls = _created_topics(env, tmp_path)
    settings = Settings(
        **{
            k.removeprefix("CARTWATCH_").lower(): v
            for k, v in worker_env.items()
            if isinstance(v, str)
        }
    )
    # Only the tables' names are read: no broker, no TLS files needed.
    offline = {"kafka_bootstrap": "127.0.0.1:1", "kafka_security_protocol": "PLAINTEXT"}
    tables = Worker(settings.model_copy(update=offline)).app.tables
    changelogs = [t.changelog_topic.get_topic_name() for t in tables.values()]
    assert sorted(_option(c, "--topic")[0] for c in calls) == sorted(
        all_topics(settings) + changelogs
    )
    for call in calls:
        assert _option(call, "--bootstrap-server") == [env["CARTWATCH_KAFKA_BOOTSTRAP"]]
        assert _option(call, "--partitions") == [str(settings.topic_partitions)]
        assert "--if-not-exists" in call and "retention.ms=-1" in _option(call, "--config")
    return calls


def test_the_compose_topic_service_creates_every_topic_the_workers_use(tmp_path: Path):
    env = {k: str(v) for k, v in SERVICES["topics"]["environment"].items()}
    calls = _check_topics(env, WORKERS["worker-1"]["environment"], tmp_path)
    assert {_option(c, "--replication-factor")[0] for c in calls} == {"1"}  # one broker


@pytest.mark.parametrize("client_properties", [None, "/etc/kafka/client.properties"])
def test_the_topic_script_passes_client_properties_only_when_given(tmp_path, client_properties):
    env = {k: str(v) for k, v in SERVICES["topics"]["environment"].items()}
    if client_properties:
        env["CLIENT_PROPERTIES"] = client_properties
    for call in _created_topics(env, tmp_path):
        assert _option(call, "--command-config") == (
            [client_properties] if client_properties else []
        )


def test_the_kubernetes_job_creates_every_topic_replicated_three_times(tmp_path):
    job = next(d for d in MANIFESTS if d["kind"] == "Job")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = _container_env(container)
    assert set(env) <= SETTINGS | TOPIC_SCRIPT_VARIABLES | KAFKA_TOOL_VARIABLES
    worker_env = _container_env(_deployment()["spec"]["template"]["spec"]["containers"][0])
    assert env["CARTWATCH_KAFKA_BOOTSTRAP"] == worker_env["CARTWATCH_KAFKA_BOOTSTRAP"]
    calls = _check_topics(env, worker_env, tmp_path)
    for call in calls:
        assert _option(call, "--replication-factor") == ["3"]
        assert "min.insync.replicas=2" in _option(call, "--config")
        # SASL_SSL as the admin: the properties file comes from a generated Secret's volume.
        assert _option(call, "--command-config") == [env["CLIENT_PROPERTIES"]]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    client = next(n for n, path in mounts.items() if env["CLIENT_PROPERTIES"].startswith(path))
    admin = next(
        g for g in KUSTOMIZATION["secretGenerator"] if g["name"] == "cartwatch-kafka-admin"
    )
    assert volumes[client]["secret"]["secretName"] == admin["name"]
    assert admin["files"] == ["client.properties=secrets/kafka-admin-client.properties"]
    generated = KUSTOMIZATION["configMapGenerator"][0]
    volume = volumes["script"]["configMap"]["name"]
    assert volume == generated["name"] and generated["files"] == ["kafka/create-topics.sh"]
    assert container["command"][-1] == "/opt/cartwatch/create-topics.sh"
    assert _image(container) == "apache/kafka" == _image(SERVICES["topics"])
