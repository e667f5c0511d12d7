"""The deployment files agree with each other and with the package.

No Docker engine or cluster here: docker-compose.yml, the Dockerfile and the chart's values are
checked as data (the chart's templates are rendered and validated by scripts/check-deploy.sh).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
import yaml

import eventrules
from eventrules import native
from eventrules.ops.config import collect_definitions
from eventrules.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "eventrules"
COMPOSE = REPO_ROOT / "docker-compose.yml"
ALERTS = CHART / "prometheus" / "alerts.yml"
ALERT_TESTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.test.yml"
WORKERS = ("worker-1", "worker-2")
EVENTRULES_SERVICES = ("topics", *WORKERS)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)
    return loaded


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(CHART / "values.yaml")
    return loaded


def env_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping, so anchors can merge"
    return {key: str(value) for key, value in environment.items()}


def settings_variables() -> set[str]:
    return {f"EVENTRULES_{name.upper()}" for name in Settings.model_fields}


def test_compose_has_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "topics", *WORKERS, "console", "prometheus", "grafana"}
    # the console is opt-in (it needs tokens) and reachable from the host's loopback only
    assert services["console"]["profiles"] == ["console"]
    assert services["console"]["ports"] == ["127.0.0.1:6070:6070"]
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    kafka_env = env_of(services["kafka"])
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, one node
    assert "ZOOKEEPER" not in " ".join(kafka_env)
    assert "healthcheck" in services["kafka"]
    for name in EVENTRULES_SERVICES:
        assert services[name]["build"] == "."
        assert services[name]["image"] == "eventrules:local"


def test_compose_workers_reach_kafka_on_its_advertised_listener(compose: dict[str, Any]) -> None:
    services = compose["services"]
    advertised = env_of(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    in_network = {entry.split("://", 1)[1] for entry in advertised.split(",")}
    for name in EVENTRULES_SERVICES:
        assert env_of(services[name])["EVENTRULES_BOOTSTRAP_SERVERS"] in in_network
        # A container must bind all its interfaces to be reachable from the others.
        assert env_of(services[name])["EVENTRULES_WEB_HOST"] == "0.0.0.0"  # noqa: S104


def test_compose_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert services["topics"]["restart"] == "no"
    for name in WORKERS:
        assert services[name]["depends_on"] == {
            "topics": {"condition": "service_completed_successfully"}
        }
        assert services[name]["command"] == ["worker"]
    assert set(services["prometheus"]["depends_on"]) == set(WORKERS)
    assert services["grafana"]["depends_on"] == ["prometheus"]


def test_compose_topics_job_applies_topics_then_the_shipped_templates(
    compose: dict[str, Any],
) -> None:
    topics = compose["services"]["topics"]
    assert topics["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = topics["command"]
    first, second = (shlex.split(step) for step in script.split("&&"))
    assert first == ["eventrules", "topics", "apply"]
    # The image holds no checkout: the templates come from the package (no -f, no --dir).
    assert second[:3] == ["eventrules", "templates", "install"]
    assert {"--all", "--yes"} <= set(second)
    assert "--dir" not in second
    templates = REPO_ROOT / "config" / "templates"
    assert len(collect_definitions([templates / "workflows", templates / "rules"])) >= 1


def test_compose_workers_have_distinct_published_web_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ports = []
    for name in WORKERS:
        port = env_of(services[name])["EVENTRULES_WEB_PORT"]
        assert services[name]["ports"] == [f"127.0.0.1:{port}:{port}"]
        ports.append(port)
    assert len(set(ports)) == len(WORKERS)


def test_prometheus_scrapes_every_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {}
    for volume in services["prometheus"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    config_path = REPO_ROOT / mounts["/etc/prometheus/prometheus.yml"]
    config = load_yaml(config_path)
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    expected = {f"{name}:{env_of(services[name])['EVENTRULES_WEB_PORT']}" for name in WORKERS}
    assert targets == expected


def test_compose_publishes_every_port_on_loopback_only(compose: dict[str, Any]) -> None:
    # Nothing in the stack authenticates (Kafka is PLAINTEXT): no port on other interfaces.
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: short syntax, so the address is visible"
            host, _, _ = port.rpartition(":")
            assert host.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
            published += 1
    assert published == 6  # kafka, the two workers, the console, prometheus, grafana


def test_compose_grafana_admin_password_comes_from_the_environment(
    compose: dict[str, Any],
) -> None:
    grafana_env = env_of(compose["services"]["grafana"])
    password = grafana_env["GF_SECURITY_ADMIN_PASSWORD"]
    # ${VAR:?message}: compose refuses to start when it is unset or empty; no default value.
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    assert "admin/admin" not in COMPOSE.read_text()
    assert grafana_env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


def test_compose_prometheus_loads_the_charts_alert_rules(compose: dict[str, Any]) -> None:
    mounts = {}
    for volume in compose["services"]["prometheus"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = REPO_ROOT / source
    config = load_yaml(mounts["/etc/prometheus/prometheus.yml"])
    (pattern,) = config["rule_files"]
    rule_files = [target for target in mounts if Path(target).match(pattern)]
    # The one copy of the rules: the chart's, which its PrometheusRule embeds.
    assert [mounts[target] for target in rule_files] == [ALERTS]


def test_grafana_provisions_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        source, target = volume.split(":")[:2]
        assert (REPO_ROOT / source).is_dir(), source
        mounts[target] = REPO_ROOT / source
    provisioning = mounts["/etc/grafana/provisioning"]
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(provisioning / "dashboards" / "eventrules.yml")["providers"]
    dashboards_dir = mounts[provider["options"]["path"]]
    dashboard = json.loads((dashboards_dir / "eventrules.json").read_text())
    assert dashboard["uid"] == "eventrules"


def test_dockerfile_builds_the_worker_image() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    instructions = [
        line.split(None, 1)
        for line in dockerfile.replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    by_keyword: dict[str, list[str]] = {}
    for keyword, rest in instructions:
        by_keyword.setdefault(keyword, []).append(rest.strip())
    # a build stage compiles the event path into the wheel; the image installs that wheel
    assert by_keyword["FROM"] == ["python:3.11-slim AS wheel", "python:3.11-slim"]
    runs = " ".join(by_keyword["RUN"])
    assert "python scripts/compile.py && pip wheel --no-deps -w /wheel ." in runs
    assert "pip install --no-deps /wheel/eventrules-*.whl" in runs
    # mypyc type-checks what it compiles: the build stage installs the `compile` extra (stubs)
    assert "['optional-dependencies']['compile']" in runs
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert {"mypy>=1.11", "types-PyYAML"} <= set(extras["optional-dependencies"]["compile"])
    assert "eventrules[compile]" in extras["optional-dependencies"]["test"]
    assert {"hatch_build.py", "scripts/compile.py", "--from=wheel"} <= {
        path for rest in by_keyword["COPY"] for path in rest.split()
    }
    copied = {path for rest in by_keyword["COPY"] for path in rest.split()[:-1]}
    # Everything the wheel packs must be in the build context, or the build fails.
    wheel = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    packed = {path.split("/")[0] for path in wheel["targets"]["wheel"]["only-include"]}
    assert packed - {"kafka"} <= copied
    assert "kafka/pom.xml" in copied
    assert {"pyproject.toml", "README.md"} <= copied
    assert json.loads(by_keyword["ENTRYPOINT"][0]) == ["eventrules"]
    assert json.loads(by_keyword["CMD"][0]) == ["worker"]
    assert "EVENTRULES_WEB_HOST=0.0.0.0" in " ".join(by_keyword["ENV"])
    assert by_keyword["USER"] != ["root"]


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".git", ".tools"} <= ignored
    assert not {"src", "topics", "config", "kafka", "pyproject.toml", "README.md"} & ignored
    assert "kafka/target" in ignored  # the broker jars, never the pom
    # the image compiles its own event path: a local build stays out, the script goes in
    assert {"src/**/*.so", "src/eventrules/_native.json", "!scripts/compile.py"} <= ignored


def test_values_have_the_documented_structure(values: dict[str, Any]) -> None:
    assert set(values["kafka"]) == {"bootstrapServers", "securityProtocol", "sasl", "tls"}
    assert {"mechanism", "username", "password", "existingSecret"} <= set(values["kafka"]["sasl"])
    assert values["kafka"]["sasl"]["password"] == ""  # no default secret
    assert values["topicsJob"]["enabled"] is True
    assert values["topicsJob"]["replicationFactor"] >= 1
    assert values["serviceMonitor"]["enabled"] is False
    assert values["prometheusRule"]["enabled"] is False
    assert values["networkPolicy"]["enabled"] is False
    assert values["autoscaling"]["enabled"] is False
    assert values["podDisruptionBudget"]["enabled"] is True
    assert values["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert values["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert values["grafanaDashboard"]["labels"] == {"grafana_dashboard": "1"}
    assert values["securityContext"]["readOnlyRootFilesystem"] is True


def test_values_defaults_match_the_settings(values: dict[str, Any]) -> None:
    defaults = Settings.model_construct()
    config = values["config"]
    assert values["webPort"] == defaults.web_port
    assert config["topicPrefix"] == defaults.topic_prefix
    assert config["appId"] == defaults.app_id
    assert config["processingGuarantee"] == defaults.processing_guarantee
    assert config["autoOffsetReset"] == defaults.auto_offset_reset
    assert config["sessionTimeoutSeconds"] == defaults.session_timeout_seconds
    assert config["commitIntervalSeconds"] == defaults.commit_interval_seconds
    assert config["lagIntervalSeconds"] == defaults.lag_interval_seconds
    assert config["maxEventBytes"] == defaults.max_event_bytes
    assert config["timezone"] == defaults.timezone
    assert config["webhookAllowList"] == defaults.webhook_allow_list


def test_values_schema_accepts_the_defaults_and_the_settings_choices(
    values: dict[str, Any],
) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(values, schema)
    config_schema = schema["properties"]["config"]["properties"]
    guarantee = Settings.model_fields["processing_guarantee"].annotation
    assert set(config_schema["processingGuarantee"]["enum"]) == set(get_args(guarantee))
    reset = Settings.model_fields["auto_offset_reset"].annotation
    assert set(config_schema["autoOffsetReset"]["enum"]) == set(get_args(reset))
    misspelt = {**values, "kafka": {**values["kafka"], "boostrapServers": "x:9092"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelt, schema)


def test_chart_and_compose_set_only_real_settings() -> None:
    known = settings_variables()
    files = [*sorted((CHART / "templates").iterdir()), CHART / "values.yaml", COMPOSE]
    used = set()
    for path in files:
        used |= set(re.findall(r"\bEVENTRULES_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    assert {"EVENTRULES_BOOTSTRAP_SERVERS", "EVENTRULES_SASL_PASSWORD"} <= used
    assert "EVENTRULES_SSL_CA_LOCATION" in used
    assert used - known == set()


def test_chart_wires_every_kafka_security_setting() -> None:
    templates = "".join(path.read_text() for path in (CHART / "templates").iterdir())
    for field in ("security_protocol", "sasl_mechanism", "sasl_username", "ssl_ca_location"):
        assert f"EVENTRULES_{field.upper()}" in templates
    password = templates[templates.index("- name: EVENTRULES_SASL_PASSWORD") :]
    assert password.split("\n")[1].strip() == "valueFrom:"
    assert "secretKeyRef:" in password.split("\n")[2]


def test_chart_version_follows_the_package(values: dict[str, Any]) -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == eventrules.__version__
    assert values["image"]["tag"] == ""  # defaults to appVersion


def test_deploy_doc_lists_every_setting() -> None:
    doc = (REPO_ROOT / "docs" / "deploy.md").read_text()
    table = set(re.findall(r"^\| `(EVENTRULES_[A-Z0-9_]+)` \|", doc, flags=re.MULTILINE))
    # the settings, and the one variable read at import, before any settings (eventrules.native)
    assert table == settings_variables() | {native.PURE_ENV}


def test_gitignore_ignores_the_tools_folder() -> None:
    lines = (REPO_ROOT / ".gitignore").read_text().splitlines()
    assert ".tools/" in lines


def test_alert_rules_cover_the_promised_conditions() -> None:
    (group,) = load_yaml(ALERTS)["groups"]
    rules = {rule["alert"]: rule for rule in group["rules"]}
    assert set(rules) == {
        "EventrulesWorkerDown",
        "EventrulesWorkerNotReady",
        "EventrulesConsumerLagGrowing",
        "EventrulesDeadLettersGrowing",
        "EventrulesWebhookFailures",
        "EventrulesConfigRejected",
    }
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
    assert 'up{job="eventrules"}' in rules["EventrulesWorkerDown"]["expr"]


def test_every_alert_has_promtool_cases_that_fire_and_that_stay_quiet() -> None:
    tests = load_yaml(ALERT_TESTS)
    assert tests["rule_files"] == [os.path.relpath(ALERTS, ALERT_TESTS.parent)]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    (group,) = load_yaml(ALERTS)["groups"]
    alerts = {rule["alert"] for rule in group["rules"]}
    assert firing == alerts
    assert quiet == alerts


def test_compose_job_is_the_one_the_alert_rules_and_the_chart_use() -> None:
    (job,) = load_yaml(REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml")["scrape_configs"]
    assert job["job_name"] == "eventrules"
    monitor = (CHART / "templates" / "servicemonitor.yaml").read_text()
    # prometheus-operator takes the job name from this Service label, "eventrules" by the chart.
    assert "jobLabel: app.kubernetes.io/part-of" in monitor
    assert (
        "app.kubernetes.io/part-of: eventrules"
        in (CHART / "templates" / "_helpers.tpl").read_text()
    )
