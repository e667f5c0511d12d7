#!/usr/bin/env bash
# Screenshots of every console page, taken by the browser tests on a real broker and worker,
# written to docs/console/ (the README links them). Run after changing a page; commit the PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
EVENTRULES_CONSOLE_SCREENSHOTS="$PWD/docs/console" \
  .venv/bin/pytest -p no:cacheprovider -q tests/integration/test_console_browser.py "$@"
ls docs/console
