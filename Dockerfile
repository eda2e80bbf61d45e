# ld-store-monitor container image.
#
#   docker build -t ld-store-monitor .
#   docker run --rm -p 9725:9725 -e LD_API_TOKEN \
#     -v "$PWD/config.yaml:/etc/ld-store-monitor/config.yaml:ro" ld-store-monitor
#
# The configuration is not baked in: mount it at
# /etc/ld-store-monitor/config.yaml (a ConfigMap in Kubernetes, see
# deploy/kubernetes/). Runs as uid/gid 10001, writes nothing outside /tmp, so
# it works with a read-only root filesystem.

# ---- builder: a venv with the pinned dependencies and the package ------------
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1

RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, in their own layer: they change far less often than the
# code. requirements/constraints.txt pins the whole runtime closure.
COPY requirements/constraints.txt requirements/constraints.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r requirements/constraints.txt

COPY pyproject.toml README.md ./
COPY monitor/ monitor/
# The constraints keep pip from resolving anything the previous layer did not pin.
RUN /opt/venv/bin/pip install --no-cache-dir -c requirements/constraints.txt .

# ---- runtime ----------------------------------------------------------------
FROM python:3.11-slim-bookworm

# What the OCI labels say of this build; set them from CI:
#   docker build --build-arg VERSION=1.2.3 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t ld-store-monitor .
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z

LABEL org.opencontainers.image.title="ld-store-monitor" \
      org.opencontainers.image.description="Watches LaunchDarkly big segment stores (Redis, DynamoDB) and exports Prometheus metrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/ld-store-monitor/ld-store-monitor" \
      org.opencontainers.image.documentation="https://github.com/ld-store-monitor/ld-store-monitor/blob/main/README.md" \
      org.opencontainers.image.licenses="Apache-2.0"

# Bytecode was compiled at install time in the builder; never try to write
# more at run time (the root filesystem may be read-only).
# LD_STORE_MONITOR_REVISION: the revision label of ld_store_build_info.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LD_STORE_MONITOR_REVISION="${REVISION}"

RUN groupadd --system --gid 10001 ldmon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin ldmon \
    && mkdir -p /etc/ld-store-monitor

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /tmp
EXPOSE 9725

# The daemon's own liveness (its loops tick), never the stores' health.
# python, because the slim image has no curl or wget. Assumes the default
# listen port 9725; orchestrators use their own probes (Kubernetes: /-/healthy
# and /-/ready, see deploy/kubernetes/deployment.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9725/-/healthy', timeout=4).status != 200)"]

ENTRYPOINT ["ld-store-monitor"]
CMD ["run", "--config", "/etc/ld-store-monitor/config.yaml"]
