#!/usr/bin/env bash
# The quick loop: style, types, import layers and the unit tests (no broker). The full test
# command is scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/pytest -p no:cacheprovider -q tests/unit "$@"
