#!/usr/bin/env bash
# The test command: sets up a fresh machine, checks style and types, runs every test against a
# real Kafka broker (tests/conftest.py starts one unless EVENTRULES_BOOTSTRAP_SERVERS is set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== import layers (import-linter)"
.venv/bin/lint-imports
echo "== deploy checks (helm lint, helm template | kubeconform, compose config)"
bash scripts/check-deploy.sh
echo "== the event path's build (scripts/compile.py)"
.venv/bin/python -c 'from eventrules import native; s = native.status(); print(s.describe()); raise SystemExit(not s.compiled)'
echo "== unit tests on the pure-Python modules (EVENTRULES_PURE_PYTHON=1)"
EVENTRULES_PURE_PYTHON=1 .venv/bin/pytest -p no:cacheprovider -q tests/unit
echo "== pytest (compiled event path)"
set +e
.venv/bin/pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here, the suite must not be empty" >&2
  exit 1
fi
exit "$status"
