# syntax=docker/dockerfile:1
# One image per room, built from one file: `make images` runs `docker build --target <room>` for each of
# pusher, puller, monitor, cleaner, core, ws-delivery and controller.
# The runtime is non-root (10001), needs nothing writable but /tmp (read-only root filesystem) and serves
# /metrics, /healthz and /readyz on NOTIFIER_OPS_PORT (9100).
ARG BASE=python:3.11-slim

# --- builder: the locked dependencies and the notifier package, non-editable, in /opt/venv ---------------
FROM ${BASE} AS builder
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
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --no-editable --python "$(command -v python3)"
COPY workers ./workers
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python "$(command -v python3)"

# --- runtime: what every room shares -----------------------------------------------------------------------
FROM ${BASE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="notifier" \
      org.opencontainers.image.description="Aggregated review notifications, delivered reliably to every device over WebSocket." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.vendor="Notifier"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    NOTIFIER_HTTP_HOST=0.0.0.0 \
    NOTIFIER_OPS_HOST=0.0.0.0 \
    NOTIFIER_HTTP_PORT=8000 \
    NOTIFIER_OPS_PORT=9100 \
    NOTIFIER_LOG_FORMAT=json
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('NOTIFIER_OPS_PORT', '9100'), timeout=4)"]

# --- one target per room -----------------------------------------------------------------------------------
FROM runtime AS pusher
LABEL org.opencontainers.image.title="notifier-pusher"
ENTRYPOINT ["notifier", "pusher"]

FROM runtime AS puller
LABEL org.opencontainers.image.title="notifier-puller"
ENTRYPOINT ["notifier", "puller"]

FROM runtime AS monitor
LABEL org.opencontainers.image.title="notifier-monitor"
ENTRYPOINT ["notifier", "monitor"]

FROM runtime AS cleaner
LABEL org.opencontainers.image.title="notifier-cleaner"
ENTRYPOINT ["notifier", "cleaner"]

FROM runtime AS core
LABEL org.opencontainers.image.title="notifier-core"
EXPOSE 8000
ENTRYPOINT ["notifier", "core"]

FROM runtime AS ws-delivery
LABEL org.opencontainers.image.title="notifier-ws-delivery"
EXPOSE 8000
ENTRYPOINT ["notifier", "ws-delivery"]

FROM runtime AS controller
LABEL org.opencontainers.image.title="notifier-controller"
ENTRYPOINT ["notifier", "controller"]
