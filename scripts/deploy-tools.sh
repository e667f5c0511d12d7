#!/usr/bin/env bash
# Installs what scripts/check-deploy.sh needs into .tools/ (idempotent: a second run only checks):
#   .tools/bin/helm, .tools/bin/kubeconform, .tools/bin/promtool   built with Go from the Go
#       module proxy (promtool: `promtool test rules` of the alert rules)
#   .tools/bin/compose-config   deploy/tools/compose-config: validates docker-compose.yml
#   .tools/schemas/kubernetes/v<K8S>-local-strict/   Kubernetes JSON schemas, from the
#       kubernetes-validate wheel on PyPI (kubeconform's default source, GitHub, is not reachable)
#   .tools/schemas/crds/{servicemonitor,prometheusrule}-monitoring-v1.json   converted from the
#       ServiceMonitor and PrometheusRule CRDs that the prometheus-operator Go module ships
# Needs Go and a Python with pip (the project's .venv, or python3).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HELM_VERSION=v3.22.0
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VALIDATE_VERSION=1.37.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
# The Prometheus module's tag for Prometheus 3.16.0 (its Go module versions are v0.3XX.Y).
PROMETHEUS_MODULE_VERSION=v0.316.0
PROMETHEUS_VERSION=3.16.0
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest with schemas.
KUBE_VERSIONS=${KUBE_VERSIONS:-"1.25.0 1.37.0"}

TOOLS=$PWD/.tools
mkdir -p "$TOOLS/bin" "$TOOLS/schemas/kubernetes" "$TOOLS/schemas/crds"
if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=${PYTHON:-python3}; fi

# Static, stripped binaries: smaller and a little faster to link on a 2-core machine.
# A marker file per tool records the version built (go install stamps none).
go_install() {
  local name=$1 module=$2 version=$3 ldflags=${4:-}
  if [ -x "$TOOLS/bin/$name" ] && [ "$(cat "$TOOLS/bin/.$name-version" 2>/dev/null)" = "$version" ]; then
    return
  fi
  echo "== building $name $version (go install; a few minutes from a cold Go cache)"
  CGO_ENABLED=0 GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags="-s -w $ldflags" "$module@$version"
  echo "$version" >"$TOOLS/bin/.$name-version"
}

# What helm's Makefile stamps: its version, and the Kubernetes version of its client-go (v0.37 ->
# 1.37) as the default for --kube-version (unstamped, helm assumes 1.20).
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags="$helm_ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=37"
done
go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$helm_ldflags"
go_install kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
go_install promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_MODULE_VERSION" \
  "-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION}"

# compose-config: `docker compose config` without the compose plugin (deploy/tools/compose-config).
compose_src=deploy/tools/compose-config
if [ ! -x "$TOOLS/bin/compose-config" ] || [ -n "$(find "$compose_src" -newer "$TOOLS/bin/compose-config" -type f)" ]; then
  echo "== building compose-config (compose-go, pinned in $compose_src/go.mod)"
  (cd "$compose_src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags="-s -w" -o "$TOOLS/bin/compose-config" .)
fi

missing=()
for version in $KUBE_VERSIONS; do
  [ -f "$TOOLS/schemas/kubernetes/v${version}-local-strict/deployment-apps-v1.json" ] || missing+=("$version")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== Kubernetes JSON schemas for ${missing[*]} (kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} from PyPI)"
  wheel_dir=$(mktemp -d)
  trap 'rm -rf "$wheel_dir"' EXIT
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: \
    "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}" -d "$wheel_dir"
  "$PYTHON" - "$wheel_dir" "$TOOLS/schemas/kubernetes" "${missing[@]}" <<'PY'
import json
import sys
import zipfile
from pathlib import Path

wheel = next(Path(sys.argv[1]).glob("*.whl"))
target = Path(sys.argv[2])
with zipfile.ZipFile(wheel) as archive:
    for version in sys.argv[3:]:
        prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
        names = [n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".json")]
        if not names:
            sys.exit(f"kubernetes-validate has no schemas for Kubernetes {version}")
        folder = target / f"v{version}-local-strict"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            # These schemas resolve against a registry of their own ($id https://kubernetes.io/
            # api/..., refs to "/api/_definitions.json#/..."): without the $id and with relative
            # refs, kubeconform resolves them to the _definitions.json file beside each schema.
            text = archive.read(name).replace(b'"/api/_definitions.json#', b'"_definitions.json#')
            schema = json.loads(text)
            schema.pop("$id", None)
            (folder / name[len(prefix) :]).write_text(json.dumps(schema))
        print(f"   {len(names)} schemas in {folder}")
PY
fi

crd_schemas=()
for kind in servicemonitor prometheusrule; do
  [ -f "$TOOLS/schemas/crds/$kind-monitoring-v1.json" ] || crd_schemas+=("$kind")
done
if [ "${#crd_schemas[@]}" -gt 0 ]; then
  echo "== ${crd_schemas[*]} schemas (prometheus-operator ${PROMETHEUS_OPERATOR_VERSION} Go module)"
  module_dir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@${PROMETHEUS_OPERATOR_VERSION}" \
    | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  # What openapi2jsonschema does for kubeconform: take the CRD's openAPIV3Schema and, for the
  # strict check, forbid properties the schema does not declare.
  "$PYTHON" - "$module_dir/jsonnet/prometheus-operator" "$TOOLS/schemas/crds" "${crd_schemas[@]}" <<'PY'
import json
import sys
from pathlib import Path

source, target = Path(sys.argv[1]), Path(sys.argv[2])


def strict(node):
    if isinstance(node, dict):
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)


for kind in sys.argv[3:]:
    crd = json.loads((source / f"{kind}s-crd.json").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = version["schema"]["openAPIV3Schema"]
    strict(schema)
    # metadata is an ObjectMeta, which the CRD leaves open: do not close it.
    schema["properties"]["metadata"].pop("additionalProperties", None)
    out = target / f"{kind}-monitoring-v1.json"
    out.write_text(json.dumps(schema, indent=1))
    print(f"   {out}")
PY
fi

echo "deploy tools: $("$TOOLS/bin/helm" version --short), kubeconform $(cat "$TOOLS/bin/.kubeconform-version"), promtool $(cat "$TOOLS/bin/.promtool-version"), schemas for Kubernetes ${KUBE_VERSIONS}"
