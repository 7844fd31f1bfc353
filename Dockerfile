# The Muse service image, configured by environment variables only. Built by `make image` (scripts/build-image.sh).
#
# Base image: the official python:3.13-slim-trixie (Debian 13, Python 3.13), pinned by its multi-architecture
# OCI index digest. Written on the first FROM line as `name:tag@sha256:...` because that is the form
# Dependabot's docker ecosystem updates (.github/dependabot.yml); it does not follow a base given through an ARG
# (dependabot-core issues #2057 and #10190). The digest was NOT pulled on the machine that wrote this line (no
# registry is reachable there): it is the index digest docker-library/repo-info records for the tag in
# repos/python/remote/3.13-slim-trixie.md at commit 3effc3eac4f65a99767fd721667a1bf157496ba4 (Python 3.13.14,
# Debian trixie snapshot of 2026-08-03). The first real build on GitHub confirms it (the pull fails on a wrong
# digest); Dependabot then keeps tag and digest current. End of support of both: stack/runtime_lifecycle.json
# The other stages start FROM this one, so `podman build --from <image>` (which replaces the FIRST FROM only)
# swaps the base of the whole build: offline machines build FROM a local debootstrap trixie image
# (scripts/build-base-image.sh, Debian's python3 is 3.13 too) without editing this file.
#
# Reproducibility: `podman build --timestamp $SOURCE_DATE_EPOCH` (scripts/build-image.sh) sets every file
# time in the new layers and the created time to the commit time, and the .pyc files are hash-based
# (checked-hash), so two builds of one commit on one base are byte-identical (verified here: two
# --no-cache builds of a `git archive` export gave the same image id and layer digests). docker buildx gets SOURCE_DATE_EPOCH for the created time only
# (rewrite-timestamp conflicts with --load on a containerd store), so its layers are not byte-identical.
# A new base digest changes everything, as it should; wheels cannot change (--require-hashes).
FROM docker.io/library/python:3.13-slim-trixie@sha256:bf503bb2243c5aad0aa951544dd60d165f992646441d35dea90893703fc26251 AS base

# ---- builder: a virtualenv with exactly the hash-locked dependencies, byte-compiled deterministically
FROM base AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
COPY requirements-service.txt ./
# Binary wheels only and no dependency resolution: every distribution and its hash is in the lock file.
# pip/setuptools are removed from the final virtualenv: the running service never installs anything.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: --no-compile \
      -r requirements-service.txt \
 && /opt/venv/bin/pip uninstall --yes pip setuptools \
 && rm -f /opt/venv/bin/activate* /opt/venv/bin/Activate.ps1 /opt/venv/bin/pip*
COPY muse/ /app/muse/
# The committed governance reports (make export: docs/governance/<stack>.md and .inventory.json), served by
# GET /api/v1/governance for MUSE_ENV; .dockerignore lets in only these two kinds of file.
COPY docs/governance/ /app/docs/governance/
# checked-hash .pyc files do not embed source mtimes (deterministic) and are still validated on import.
RUN find /opt/venv /app -type d -name __pycache__ -prune -exec rm -rf {} + \
 && python3 -m compileall -q --invalidation-mode checked-hash /opt/venv/lib /app/muse \
 && chmod -R a+rX,go-w /opt/venv /app

# ---- runtime: the virtualenv and the code, nothing else (no compilers, no pip, no config, no secrets)
FROM base AS runtime
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
# Numeric, non-root, no login entry needed; Kubernetes runAsUser/runAsGroup use the same ids and the
# root filesystem can be mounted read-only (the image itself needs no writable path).
USER 10001:10001
EXPOSE 8080
# The service drains on SIGTERM (readiness 503, in-flight requests finish) and exits 0.
STOPSIGNAL SIGTERM
# Liveness/readiness are Kubernetes probes on /healthz and /readyz (the Deployment owns them); a Docker
# HEALTHCHECK would be ignored by Kubernetes and would need an HTTP client in the image.
HEALTHCHECK NONE
CMD ["python", "-m", "muse", "serve"]

# Labels last: they change on every commit and must not invalidate the layers above. BASE_IMAGE names the base
# the build really started from (scripts/build-image.sh: the FROM line above, or the image given to --from).
ARG BASE_IMAGE=unknown
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="muse" \
      org.opencontainers.image.description="Muse governance service: evaluates resource inventories against policies" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# Build information the service reports (GET /, build_info metric); not configuration, and overridable.
ENV MUSE_VERSION="${VERSION}" \
    MUSE_GIT_REVISION="${REVISION}"
