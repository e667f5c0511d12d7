#!/usr/bin/env bash
# Installs what eventrules needs on a fresh machine: Java + Maven (for the local broker), chromium
# (for the console's browser tests), a virtualenv with the package and its test extras, and the
# Kafka broker jars from Maven Central.
# Idempotent: a second run only checks. Sourced by scripts/test.sh and scripts/run.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  echo "== installing Java 17 and Maven (apt)"
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
fi

# Debian's chromium for the console's browser tests (Playwright drives it; it never downloads
# a browser of its own).
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (apt)"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

# valgrind counts the runner's instructions per event (bench/bench_instructions.py): a speed
# figure a shared machine does not move
if ! command -v valgrind >/dev/null 2>&1; then
  echo "== installing valgrind (apt)"
  apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi

# a C compiler for the mypyc build of the event path (scripts/compile.py, below)
if ! command -v cc >/dev/null 2>&1; then
  echo "== installing a C compiler (apt)"
  apt-get update -qq && apt-get install -y -qq gcc >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.eventrules-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "== installing eventrules and its test dependencies"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test,bench]'
  touch "$stamp"
fi

# Python's headers, for the same build (Debian's python3 keeps them in python3-dev)
if ! .venv/bin/python -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  echo "== installing the Python headers (apt)"
  apt-get update -qq && apt-get install -y -qq python3-dev >/dev/null
fi
# The event path compiled with mypyc, in place; a no-op while the build matches the sources.
# EVENTRULES_PURE_PYTHON=1 runs the same code from source (eventrules/native.py).
.venv/bin/python scripts/compile.py

if ! ls kafka/target/dependency/kafka_2.13-*.jar >/dev/null 2>&1; then
  echo "== resolving the Apache Kafka broker jars from Maven Central"
  mvn -q -B -f kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime
fi
