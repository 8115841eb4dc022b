# syntax=docker/dockerfile:1
# One image per room, built from one file: `make images` runs `docker build --target <room>` (or podman) for
# each room of workers/common/contract/rooms.py (docs/images.md); tests/common/test_rooms.py checks the stages.
# The runtime is non-root (10001), needs nothing writable but /tmp (read-only root filesystem) and serves
# /metrics, /healthz and /readyz on NOTIFIER_OPS_PORT (9100).
ARG BASE=python:3.11-slim

# --- uv and the lockfile, shared by both venvs -------------------------------------------------------------
FROM ${BASE} AS lock
ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1
# uv in a venv of its own (works on python:3.11-slim and on a Debian base with python3-venv).
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./

# --- the dependencies of the rooms that never talk to Kubernetes: the lockfile without kopf and the kubernetes
# client, with the versions and hashes of uv.lock --------------------------------------------------------------
FROM lock AS venv
RUN /opt/uv/bin/uv export --frozen --no-dev --no-emit-project --prune kopf --prune kubernetes -o /tmp/rooms.txt \
 && /opt/uv/bin/uv venv /opt/venv --python "$(command -v python3)" \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python --require-hashes --no-deps -r /tmp/rooms.txt

# --- the controller's dependencies: the whole lockfile ------------------------------------------------------
FROM lock AS venv-controller
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python "$(command -v python3)"

# --- the notifier package and its `notifier` command in /opt/notifier, a layer of its own: a code change
# rebuilds this small layer only, never the dependencies --------------------------------------------------------
FROM venv AS project
COPY workers ./workers
RUN /opt/uv/bin/uv pip install --python /opt/venv/bin/python --no-deps --target /opt/notifier . \
 && test -x /opt/notifier/bin/notifier

# --- runtime: what every room shares -----------------------------------------------------------------------
FROM ${BASE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="notifier" \
      org.opencontainers.image.description="Aggregated review notifications, delivered reliably to every device over WebSocket." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.vendor="Notifier" \
      org.opencontainers.image.documentation="docs/images.md"
ENV PATH=/opt/notifier/bin:/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/notifier \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    NOTIFIER_HTTP_HOST=0.0.0.0 \
    NOTIFIER_OPS_HOST=0.0.0.0 \
    NOTIFIER_HTTP_PORT=8000 \
    NOTIFIER_OPS_PORT=9100 \
    NOTIFIER_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
EXPOSE 9100
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('NOTIFIER_OPS_PORT', '9100'), timeout=4)"]

# --- one target per room: the six rooms that never talk to Kubernetes share `room` (one venv and package
# layer, stored once); the controller gets the venv with kopf and the kubernetes client -----------------------
FROM runtime AS room
COPY --from=venv /opt/venv /opt/venv
COPY --from=project /opt/notifier /opt/notifier

FROM room AS pusher
LABEL org.opencontainers.image.title="notifier-pusher"
ENTRYPOINT ["notifier", "pusher"]

FROM room AS puller
LABEL org.opencontainers.image.title="notifier-puller"
ENTRYPOINT ["notifier", "puller"]

FROM room AS monitor
LABEL org.opencontainers.image.title="notifier-monitor"
ENTRYPOINT ["notifier", "monitor"]

FROM room AS cleaner
LABEL org.opencontainers.image.title="notifier-cleaner"
ENTRYPOINT ["notifier", "cleaner"]

FROM room AS core
LABEL org.opencontainers.image.title="notifier-core"
EXPOSE 8000
ENTRYPOINT ["notifier", "core"]

FROM room AS ws-delivery
LABEL org.opencontainers.image.title="notifier-ws-delivery"
EXPOSE 8000
ENTRYPOINT ["notifier", "ws-delivery"]

FROM runtime AS controller
COPY --from=venv-controller /opt/venv /opt/venv
COPY --from=project /opt/notifier /opt/notifier
LABEL org.opencontainers.image.title="notifier-controller"
ENTRYPOINT ["notifier", "controller"]
