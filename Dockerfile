# The eventrules image: the CLI and worker, with the declared topics and the config templates.
# Build: docker build -t eventrules:local .    Run: docker run eventrules:local (a worker)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies and package first, so editing topics/ or config/ does not reinstall them.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf src

# The CLI finds topics/ and config/ by walking up from the working directory (/app).
COPY topics ./topics
COPY config ./config

# The worker keeps no state on disk (Kafka holds it all), so the root filesystem can be read-only.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app eventrules
ENV EVENTRULES_WEB_HOST=0.0.0.0 \
    EVENTRULES_WEB_PORT=6066

USER 10001
EXPOSE 6066
ENTRYPOINT ["eventrules"]
CMD ["worker"]
