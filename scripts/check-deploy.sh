#!/usr/bin/env bash
# Static checks of the deployment files (no cluster, no Docker engine needed):
#   helm lint, and helm template rendered through kubeconform -strict against the Kubernetes
#   schemas of the oldest and newest supported versions, for the default values and for
#   variants that turn on every optional template (ServiceMonitor, HPA, dashboard, SASL/TLS);
#   docker-compose.yml loaded and schema-checked as `docker compose config` does.
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
)
# Existing Secrets instead of inline values, CA from a ConfigMap, PDB off.
EXISTING=(
  --set kafka.securityProtocol=SASL_PLAINTEXT
  --set kafka.sasl.mechanism=PLAIN
  --set kafka.sasl.username=eventrules
  --set kafka.sasl.existingSecret=kafka-credentials
  --set kafka.tls.caConfigMap=kafka-ca
  --set webhooks.existingSecret=webhook-secrets
  --set podDisruptionBudget.enabled=false
  --set topicsJob.enabled=false
)

echo "== docker-compose.yml"
"$TOOLS/bin/compose-config" docker-compose.yml
if docker compose version >/dev/null 2>&1; then
  docker compose config --quiet
fi

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
