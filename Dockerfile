# The eventrules image: the CLI and worker. The declared topics, the trigger catalog and the
# templates ship inside the package (package data), so any working directory will do.
# Build: docker build -t eventrules:local .    Run: docker run eventrules:local (a worker)

# Stage 1: the wheel, with the event path compiled by mypyc (scripts/compile.py; README,
# "Performance"). The compiler and mypy stay in this stage.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY pyproject.toml README.md hatch_build.py ./
# mypyc type-checks what it compiles: the dependencies, and the `compile` extra (mypy, the
# stubs, setuptools)
RUN python -c "import subprocess, sys, tomllib; \
project = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
deps = project['dependencies'] + project['optional-dependencies']['compile']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', *deps])"
COPY src ./src
COPY topics ./topics
COPY config ./config
COPY kafka/pom.xml ./kafka/pom.xml
COPY scripts/compile.py ./scripts/compile.py
RUN python scripts/compile.py && pip wheel --no-deps -w /wheel .

# Stage 2: the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, in their own layer: editing src/, topics/ or config/ does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', *deps])"

# The wheel of stage 1 (what pyproject.toml's [tool.hatch.build.targets.wheel] packs).
COPY --from=wheel /wheel /wheel
RUN pip install --no-deps /wheel/eventrules-*.whl && rm -rf /wheel

# The worker keeps no state on disk (Kafka holds it all), so the root filesystem can be read-only.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app eventrules
# /tmp is the one writable folder (an emptyDir in the chart): state stores kept there survive a
# container restart, so a restarted worker reads only the tail of the state changelog.
ENV EVENTRULES_WEB_HOST=0.0.0.0 \
    EVENTRULES_WEB_PORT=6066 \
    EVENTRULES_STATE_DIR=/tmp/eventrules-state

USER 10001
EXPOSE 6066
ENTRYPOINT ["eventrules"]
CMD ["worker"]
