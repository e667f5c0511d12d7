#!/usr/bin/env bash
# The main job on a fresh machine: a local Kafka broker, the declared topics, the shipped
# workflow and rule templates, and a worker (web on 127.0.0.1:6066). Ctrl-C stops the worker;
# `.venv/bin/eventrules broker stop` stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

export EVENTRULES_BOOTSTRAP_SERVERS="${EVENTRULES_BOOTSTRAP_SERVERS:-127.0.0.1:${EVENTRULES_BROKER_PORT:-9092}}"
if [ "${EVENTRULES_BOOTSTRAP_SERVERS}" = "127.0.0.1:${EVENTRULES_BROKER_PORT:-9092}" ]; then
  .venv/bin/eventrules broker start
fi
.venv/bin/eventrules topics apply
.venv/bin/eventrules config apply -f config/templates/workflows -f config/templates/rules --yes --as run.sh
exec .venv/bin/eventrules worker "$@"
