# syntax=docker/dockerfile:1
#
# mockstatus as a container (a CI sidecar):
#   docker build -t mockstatus:local .
#   docker run --rm -p 8080:8080 -p 8443:8443 mockstatus:local
#
# The base is pinned to an exact Python patch release on Debian bookworm; bump
# it on purpose (docker-compose.yml's example service uses the same tag, so one
# pull serves both).  To pin it immutably, append the digest that
# `docker buildx imagetools inspect <tag>` prints: python:3.11.17-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

# --- builder: build the wheel from this checkout ------------------------------
FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
# Only what pyproject.toml needs to build the wheel (README.md is its readme, LICENSE its license file,
# config/ is the package mockstatus.data); tests and tools stay out.
COPY pyproject.toml README.md LICENSE ./
COPY mockstatus ./mockstatus
COPY config ./config
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --no-deps --wheel-dir /dist .

# --- final: the installed wheel and its runtime dependencies, nothing else ----
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mockstatus" \
      org.opencontainers.image.description="A mock HTTP status server that gets the wire right" \
      org.opencontainers.image.licenses="MIT"
# Every dependency (the redis extra included: the image has everything) from
# requirements/image.lock, pinned with the hash of every file PyPI has for
# it, so a build on any architecture installs exactly these bytes or fails.
# Regenerate it with the command at its top when pyproject.toml changes.
RUN --mount=type=bind,source=requirements/image.lock,target=/tmp/image.lock \
    python -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
        --require-hashes -r /tmp/image.lock
# The wheel is bind-mounted from the builder, so it never becomes a layer here;
# its dependencies are the locked ones above.
# A numeric, non-root user: Kubernetes' runAsNonRoot can verify it, and
# OpenShift's arbitrary UIDs work too (nothing here writes to disk).
RUN --mount=type=bind,from=builder,source=/dist,target=/dist \
    python -m pip install --no-cache-dir --disable-pip-version-check --root-user-action=ignore --no-deps /dist/*.whl \
 && groupadd --gid 10001 mockstatus \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mockstatus
USER 10001:10001
# 0.0.0.0: reachable from the host and from other containers (the default,
# 127.0.0.1, would only answer inside the container).
# HTTPS on 8443 with a CA generated at start (fetch it from
# /__mockstatus/ca.pem), or mount one: MOCKSTATUS_TLS_CA_CERT/MOCKSTATUS_TLS_CA_KEY.
ENV MOCKSTATUS_HOST=0.0.0.0 \
    MOCKSTATUS_PORT=8080 \
    MOCKSTATUS_HTTPS_PORT=8443 \
    PYTHONUNBUFFERED=1
EXPOSE 8080 8443
# Standard library only (no curl in the image).  Start interval: probe every
# 0.25s until the first success, so the container is healthy well within a
# second of the server listening (Docker Engine 25+; older engines fall back to
# --interval).  The probe's own timeout (2s) stays below --timeout.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --start-interval=0.25s --retries=3 \
    CMD ["mockstatus", "health", "--timeout", "2"]
# Exec form: mockstatus is PID 1 and receives SIGTERM itself (no shell in
# between); it stops accepting, lets in-flight replies finish within
# MOCKSTATUS_SHUTDOWN_GRACE (5s, below docker stop's 10s) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["mockstatus"]
CMD ["serve"]
