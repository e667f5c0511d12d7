"""The Grafana dashboard queries only metrics the worker exports, with labels they carry.

The metric names are the contract between ``eventrules.metrics`` and the dashboard shipped at
``deploy/grafana/dashboards/eventrules.json`` (and in the chart). Labelled metrics appear in the
exposition only once a label set is used, so every metric is touched once with dummy labels.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from eventrules.metrics import Metrics
from integration.harness import Deployment, cloudevent, ids_of, wait_until

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "eventrules.json"
CHART_DASHBOARD = REPO_ROOT / "helm" / "eventrules" / "dashboards" / "eventrules.json"
# The alert rules (chart and compose share the file): the same contract as the dashboard.
ALERTS = REPO_ROOT / "helm" / "eventrules" / "prometheus" / "alerts.yml"
# Series Prometheus itself records for every target.
PROMETHEUS_SERIES = frozenset({"up"})

# Labels Prometheus attaches at scrape time (and `le` on histogram buckets), never by the worker.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service", "container", "le"})

# PromQL words that look like identifiers but are not metric names.
PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "atan2", "inf", "nan"}
)

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
# by (...), without (...), on (...), ignoring (...), group_left (...): lists of label names.
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, keywords and labels excluded)."""
    text = _STRING.sub('""', expr)  # label values and Grafana variables inside them
    text = _RANGE.sub("", text)  # [5m], [$__rate_interval]
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = _LABEL_LIST.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        if name.lower() in PROMQL_KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function: rate(, sum(, histogram_quantile(
        before = text[match.start() - 1] if match.start() > 0 else " "
        if before == "$":
            continue  # a Grafana variable outside a string, e.g. $__interval
        if before.isdigit() or before == ".":
            continue  # the unit of a duration or number: offset 5m, 1e3
        names.add(name)
    return names


def selector_labels(expr: str) -> dict[str, set[str]]:
    """Label names each metric selector matches on: {'metric': {'job', 'status'}}."""
    labels: dict[str, set[str]] = {}
    for match in _SELECTOR.finditer(_STRING.sub('""', expr)):
        found = set(_MATCHER_LABEL.findall(match.group(2)))
        labels.setdefault(match.group(1), set()).update(found)
    return labels


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel, rows' nested panels included."""
    exprs = []
    panels = list(dashboard["panels"])
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        exprs.extend((panel["title"], target["expr"]) for target in panel.get("targets", []))
    return exprs


def alert_exprs() -> list[tuple[str, str]]:
    """(alert name, expr) of every alert rule."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def collectors(metrics: Metrics) -> list[object]:
    """The bundle's fields (a compiled class has no ``__dict__`` for ``vars``)."""
    return [getattr(metrics, field.name) for field in dataclasses.fields(metrics)]


def touch_every_metric(metrics: Metrics) -> None:
    """Use each metric once, with a dummy value for every label, so it shows in the exposition."""
    for collector in collectors(metrics):
        if not isinstance(collector, Counter | Gauge | Histogram):
            continue
        # prometheus_client has no public accessor for a metric's label names.
        label_names: tuple[str, ...] = collector._labelnames
        child = (
            collector.labels(*(f"dummy-{name}" for name in label_names))
            if label_names
            else collector
        )
        if isinstance(child, Counter):
            child.inc()
        elif isinstance(child, Gauge):
            child.set(1)
        else:
            child.observe(0.01)


def exported() -> dict[str, set[str]]:
    """Sample name -> label names, as a scrape of a worker's /metrics would show them."""
    metrics = Metrics.create()
    touch_every_metric(metrics)
    text = generate_latest(metrics.registry).decode()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_metric_names_are_extracted_from_promql() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, type) (rate(eventrules_action_duration_seconds_bucket"
        '{job=~"$job", type!="noop"}[$__rate_interval]))) / ignoring(type) group_left '
        "sum without (instance) (eventrules_ready) or on (job) vector(0) + up offset 5m"
    )
    assert metric_names(expr) == {
        "eventrules_action_duration_seconds_bucket",
        "eventrules_ready",
        "up",
    }
    assert selector_labels(expr) == {"eventrules_action_duration_seconds_bucket": {"job", "type"}}


def test_every_metric_the_worker_defines_is_exported_after_touching() -> None:
    samples = exported()
    families = {name.removesuffix("_total").removesuffix("_bucket") for name in samples}
    for collector in collectors(Metrics.create()):
        if isinstance(collector, Counter | Gauge | Histogram):
            assert collector._name in families, collector._name
    assert "eventrules_executions_total" in samples
    assert {"workflow", "status"} <= samples["eventrules_executions_total"]
    assert "eventrules_action_duration_seconds_bucket" in samples


def test_every_dashboard_query_reads_exported_metrics(dashboard: dict[str, Any]) -> None:
    samples = exported()
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 8
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, f"{title}: no metric found in {expr!r}"
        unknown = names - samples.keys()
        assert not unknown, f"{title}: {sorted(unknown)} not exported by the worker"


def test_dashboard_label_matchers_use_the_metrics_labels(dashboard: dict[str, Any]) -> None:
    samples = exported()
    for title, expr in dashboard_exprs(dashboard):
        for name, labels in selector_labels(expr).items():
            unknown = labels - samples.get(name, set()) - TARGET_LABELS
            assert not unknown, f"{title}: {name} has no label {sorted(unknown)}"


def test_template_variables_query_exported_metrics(dashboard: dict[str, Any]) -> None:
    samples = exported()
    queries = [
        variable["definition"]
        for variable in dashboard["templating"]["list"]
        if variable["type"] == "query"
    ]
    assert queries
    for query in queries:
        metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
        assert metric, query
        assert metric.group(1) in samples


def test_dashboard_has_the_promised_panels(dashboard: dict[str, Any]) -> None:
    titles = {title.lower() for title, _ in dashboard_exprs(dashboard)}
    for wanted in (
        "events/s by topic",
        "executions by status",
        "failure rate per workflow",
        "action latency",
        "webhook retries",
        "dlq rate",
        "consumer lag by topic",
        "ready workers",
    ):
        assert wanted in titles, wanted


def test_panels_use_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    # One dashboard serves compose (provisioned datasource) and the chart (sidecar): no fixed uid.
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_alert_reads_exported_metrics_with_their_labels() -> None:
    samples = exported()
    exprs = alert_exprs()
    assert len(exprs) >= 6
    for alert, expr in exprs:
        names = metric_names(expr) - PROMETHEUS_SERIES
        assert names or alert == "EventrulesWorkerDown", f"{alert}: no metric in {expr!r}"
        unknown = names - samples.keys()
        assert not unknown, f"{alert}: {sorted(unknown)} not exported by the worker"
        for name, labels in selector_labels(expr).items():
            if name not in PROMETHEUS_SERIES:
                missing = labels - samples[name] - TARGET_LABELS
                assert not missing, f"{alert}: {name} has no label {sorted(missing)}"
        known = set(TARGET_LABELS).union(*(samples[name] for name in names))
        for listed in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            grouped = {label.strip() for label in listed.split(",")}
            assert grouped <= known, f"{alert}: groups by unknown {sorted(grouped - known)}"


def test_chart_ships_the_same_dashboard() -> None:
    assert CHART_DASHBOARD.read_bytes() == DASHBOARD.read_bytes()


def test_a_live_worker_exports_every_metric_the_dashboard_queries(
    dashboard: dict[str, Any], deployment: Deployment
) -> None:
    """Drive a real worker through every path the dashboard shows, then scrape it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx
    import orjson

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        deployment.publish_definition(
            {
                "kind": "workflow",
                "id": "dash",
                "version": 1,
                "name": "dash",
                "trigger": "order.created",
                "created_by": "tests",
                "actions": [
                    {"type": "send_email", "to": "a@example.com", "subject": "s", "body": "b"},
                    {
                        "type": "call_webhook",
                        "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                    },
                ],
            }
        )
        deployment.publish_definition(
            {
                "kind": "rule",
                "id": "ten-off",
                "version": 1,
                "name": "ten off",
                "rule_type": "pricing",
                "conditions": "total > 1",
                "created_by": "tests",
                "actions": [{"type": "percentage_discount", "percent": 10}],
            }
        )
        deployment.produce("config", b"{not json", key=b"workflow:broken")
        worker = deployment.start_worker(EVENTRULES_WEBHOOK_ALLOW_LIST='["127.0.0.1/32"]')
        worker.wait_ready()
        event = cloudevent("order.created", {"total": 5}, event_id="dash-1")
        deployment.produce("events.orders", orjson.dumps(event))
        deployment.produce("events.orders", b"poison")
        decision = httpx.post(
            worker.url + "/rules/evaluate",
            trust_env=False,
            json={"rule_type": "pricing", "facts": {"total": 10}},
        )
        assert decision.status_code == 200, decision.text
        deployment.executions(until=lambda found: "dash-1" in ids_of(found))

        def scraped() -> set[str]:
            names: set[str] = set()
            for family in text_string_to_metric_families(worker.metrics()):
                names.update(sample.name for sample in family.samples)
            return names

        wanted = {name for _, expr in dashboard_exprs(dashboard) for name in metric_names(expr)}
        wanted |= {name for _, expr in alert_exprs() for name in metric_names(expr)}
        wanted -= PROMETHEUS_SERIES
        # Lag is reported by a timer (1 s in tests) after the first batch.
        wait_until(
            lambda: wanted <= scraped(),
            timeout=30,
            what=f"the worker to export {sorted(wanted - scraped())}",
        )
        # The webhook alert counts every outcome but this one as a failure.
        outcomes = {
            sample.labels["outcome"]
            for family in text_string_to_metric_families(worker.metrics())
            for sample in family.samples
            if sample.name == "eventrules_webhook_latency_seconds_count"
        }
        assert outcomes == {"success"}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
