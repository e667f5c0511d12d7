#!/usr/bin/env bash
# Static checks of the deployment files (no cluster, no Docker engine needed):
#   helm lint, and helm template rendered through kubeconform -strict against the Kubernetes
#   schemas of the oldest and newest supported versions, for the default values and for
#   variants that turn on every optional template (ServiceMonitor, PrometheusRule,
#   NetworkPolicy, HPA, dashboard, SASL/TLS); docker-compose.yml loaded and schema-checked as
#   `docker compose config` does; the alert rules checked and unit-tested with promtool.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deploy-tools.sh

TOOLS=$PWD/.tools
HELM=$TOOLS/bin/helm
CHART=helm/eventrules
KUBE_VERSIONS=${KUBE_VERSIONS:-"1.25.0 1.37.0"}
# Local schema folders only: kubeconform's default (GitHub) is not reachable from here.
SCHEMAS=(
  -schema-location "$TOOLS/schemas/kubernetes/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
  -schema-location "$TOOLS/schemas/crds/{{ .ResourceKind }}{{ .KindSuffix }}.json"
)

# Every optional template on, with inline secrets (so the chart's own Secrets render too).
FULL=(
  --set serviceMonitor.enabled=true
  --set prometheusRule.enabled=true
  --set prometheusRule.labels.release=kube-prometheus-stack
  --set networkPolicy.enabled=true
  --set-json 'networkPolicy.ingress.namespaces=["monitoring"]'
  --set-json 'networkPolicy.ingress.from=[{"podSelector":{"matchLabels":{"app":"checkout"}},"namespaceSelector":{"matchLabels":{"team":"orders"}}}]'
  --set-json 'networkPolicy.egress.kafka.to=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"kafka"}}}]'
  --set-json 'networkPolicy.egress.webhooks.to=[{"ipBlock":{"cidr":"203.0.113.0/24"}}]'
  --set-json 'networkPolicy.egress.extra=[{"to":[{"ipBlock":{"cidr":"10.9.0.0/16"}}],"ports":[{"port":4317,"protocol":"TCP"}]}]'
  --set autoscaling.enabled=true
  --set autoscaling.targetMemoryUtilizationPercentage=80
  --set grafanaDashboard.enabled=true
  --set topicsJob.fix=true
  --set kafka.securityProtocol=SASL_SSL
  --set kafka.sasl.mechanism=SCRAM-SHA-512
  --set kafka.sasl.username=eventrules
  --set kafka.sasl.password=not-a-real-password
  --set kafka.tls.caSecret=kafka-ca
  --set-json 'webhooks.secrets={"crm":"whsec_not_real"}'
  --set-json 'config.webhookAllowList=["10.0.0.0/8"]'
  --set kafka.tls.clientCertSecret=kafka-client
  --set kafka.tls.clientKeyPasswordSecret=kafka-client-key
  --set-json 'http.tokens=[{"name":"ops","sha256":"0000000000000000000000000000000000000000000000000000000000000000","scope":"admin"}]'
  --set-json 'security.trustedConfigKeys=["MCowBQYDK2VwAyEAnot-a-real-key-for-the-check-only"]'
  --set security.signingKey.existingSecret=config-signing-key
  --set-json 'security.rulesReplyTopics=["eventrules.rules.results","eventrules.rules.replies.*"]'
  --set console.enabled=true
  --set console.tokensSecret=console-tokens
)
# Existing Secrets instead of inline values, CA from a ConfigMap, PDB off, a NetworkPolicy
# with its defaults (no ingress peers: nothing may reach the web port; Kafka ports from the
# bootstrap servers) and without DNS or webhook egress.
EXISTING=(
  --set-json 'kafka.bootstrapServers="kafka-0.kafka:9094,kafka-1.kafka:9094,kafka-2.kafka:9095"'
  --set networkPolicy.enabled=true
  --set networkPolicy.egress.dns.enabled=false
  --set networkPolicy.egress.webhooks.enabled=false
  --set kafka.securityProtocol=SASL_PLAINTEXT
  --set kafka.sasl.mechanism=PLAIN
  --set kafka.sasl.username=eventrules
  --set kafka.sasl.existingSecret=kafka-credentials
  --set kafka.tls.caConfigMap=kafka-ca
  --set webhooks.existingSecret=webhook-secrets
  --set http.existingSecret=http-tokens
  --set security.schedulerSecret.existingSecret=scheduler
  --set serviceMonitor.enabled=true
  --set podDisruptionBudget.enabled=false
  --set topicsJob.enabled=false
)

echo "== docker-compose.yml"
# Grafana's admin password has no default: the file must refuse to load without one.
if env -u GRAFANA_ADMIN_PASSWORD "$TOOLS/bin/compose-config" docker-compose.yml >/dev/null 2>&1; then
  echo "docker-compose.yml loads without GRAFANA_ADMIN_PASSWORD: it must require it" >&2
  exit 1
fi
GRAFANA_ADMIN_PASSWORD=check-deploy "$TOOLS/bin/compose-config" docker-compose.yml
if docker compose version >/dev/null 2>&1; then
  GRAFANA_ADMIN_PASSWORD=check-deploy docker compose config --quiet
fi

echo "== compose Prometheus config and alert rules (promtool check, promtool test rules)"
"$TOOLS/bin/promtool" check config --syntax-only deploy/prometheus/prometheus.yml
"$TOOLS/bin/promtool" check rules helm/eventrules/prometheus/alerts.yml
"$TOOLS/bin/promtool" test rules deploy/prometheus/alerts.test.yml

echo "== helm lint"
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" "${FULL[@]}"
"$HELM" lint --strict "$CHART" "${EXISTING[@]}"

render_dir=$(mktemp -d)
trap 'rm -rf "$render_dir"' EXIT
for version in $KUBE_VERSIONS; do
  for variant in default full existing; do
    case $variant in
      default) args=() ;;
      full) args=("${FULL[@]}") ;;
      existing) args=("${EXISTING[@]}") ;;
    esac
    echo "== helm template ($variant values) | kubeconform, Kubernetes $version"
    out="$render_dir/$variant-$version.yaml"
    "$HELM" template eventrules "$CHART" --namespace eventrules --kube-version "$version" \
      ${args[@]+"${args[@]}"} >"$out"
    "$TOOLS/bin/kubeconform" -strict -summary -kubernetes-version "$version" "${SCHEMAS[@]}" "$out"
  done
done

# What the optional templates say, beyond their schema: the PrometheusRule carries the alert
# rules file unchanged (the compose Prometheus loads it too); the NetworkPolicy admits exactly
# the configured peers on the web port and the Kafka ports of kafka.bootstrapServers.
if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=${PYTHON:-python3}; fi
last=${KUBE_VERSIONS##* }
"$PYTHON" - "$render_dir/full-$last.yaml" "$render_dir/existing-$last.yaml" \
  helm/eventrules/prometheus/alerts.yml <<'PY'
import sys

import yaml


def kinds(path):
    found = {}
    for doc in yaml.safe_load_all(open(path)):
        if doc:
            found.setdefault(doc["kind"], []).append(doc)
    return found


full, existing = kinds(sys.argv[1]), kinds(sys.argv[2])
(rule,) = full["PrometheusRule"]
if rule["spec"] != yaml.safe_load(open(sys.argv[3])):
    sys.exit(f"the chart's PrometheusRule differs from {sys.argv[3]}")
print(f"   PrometheusRule {rule['metadata']['name']}: {sys.argv[3]} as is")

(policy,) = full["NetworkPolicy"]
spec = policy["spec"]
assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker", spec
assert spec["policyTypes"] == ["Ingress", "Egress"], spec
(ingress,) = spec["ingress"]
assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}], ingress
assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in ingress["from"]
assert len(ingress["from"]) == 2, ingress
kafka, dns, webhooks, extra = spec["egress"]
assert kafka["ports"] == [{"port": 9092, "protocol": "TCP"}] and kafka["to"], kafka
assert {p["port"] for p in dns["ports"]} == {53} and len(dns["ports"]) == 2, dns
assert webhooks == {"ports": [{"port": 443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}, webhooks
assert extra["ports"] == [{"port": 4317, "protocol": "TCP"}], extra

(policy,) = existing["NetworkPolicy"]
spec = policy["spec"]
assert spec["ingress"] == [], spec  # no peers configured: nobody
(kafka,) = spec["egress"]  # no DNS, no webhooks
assert kafka == {"ports": [{"port": 9094, "protocol": "TCP"}, {"port": 9095, "protocol": "TCP"}]}, kafka
print("   NetworkPolicy: configured peers on the web port; Kafka ports from the bootstrap servers")

# HTTP tokens and the scheduler secret: the generated scrape token is one of the configured
# digests (read scope) and the ServiceMonitor presents it; existing Secrets are referenced as is.
import base64
import hashlib
import json

(secret,) = [s for s in full["Secret"] if "http-tokens" in s["data"]]
token = base64.b64decode(secret["data"]["scrape-token"]).decode()
entries = json.loads(base64.b64decode(secret["data"]["http-tokens"]))
assert {"name": "prometheus", "scope": "read", "sha256": hashlib.sha256(token.encode()).hexdigest()} in entries
assert any(e["name"] == "ops" and e["scope"] == "admin" for e in entries), entries
assert len(base64.b64decode(secret["data"]["scheduler-secret"])) >= 32
(monitor,) = full["ServiceMonitor"]
assert monitor["spec"]["endpoints"][0]["authorization"]["credentials"]["key"] == "scrape-token"
def worker_of(found):
    # the worker's Deployment (the full values also turn the console's on)
    (worker,) = [
        d for d in found["Deployment"]
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]
    return worker


worker = worker_of(full)
container = worker["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}) for e in container["env"]}
assert env["EVENTRULES_SSL_KEY_PASSWORD"] == {"name": "kafka-client-key", "key": "password"}, env
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
assert mounts["kafka-client"] == "/etc/eventrules/kafka-client" and "signing-key" in mounts, mounts
worker = worker_of(existing)
env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {}) for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
assert env["EVENTRULES_HTTP_TOKENS"] == {"name": "http-tokens", "key": "http-tokens"}, env
assert env["EVENTRULES_SCHEDULER_SECRET"] == {"name": "scheduler", "key": "scheduler-secret"}, env
assert "Secret" not in existing, "nothing generated when every secret is an existing one"
(monitor,) = existing["ServiceMonitor"]
assert "authorization" not in monitor["spec"]["endpoints"][0]
print("   HTTP tokens: the generated scrape token is configured (read) and used by the ServiceMonitor")
PY
