#!/usr/bin/env bash
# Builds the Muse image (root Dockerfile). Used by `make image` and tests/container.
#
#   scripts/build-image.sh            -> localhost/muse:dev and localhost/muse:<git sha>[-dirty]
#   IMAGE=name scripts/build-image.sh -> name:dev and name:<git sha>
#   IMAGE_ENGINE=docker               -> docker buildx build --load instead of podman
#
# Here (no registry reachable): podman is configured (scripts/podman-setup.sh), the base is the local
# debootstrap trixie image (scripts/build-base-image.sh), given with `podman build --from`, which replaces the
# Dockerfile's first FROM (podman-build(1), podman 4.3: "image name used to replace the value in the first
# FROM instruction"; the other stages start FROM that one), and the host CA bundle is mounted read-only into
# RUN steps so pip trusts this network's TLS egress proxy.
# On GitHub runners (GITHUB_ACTIONS=true) the Dockerfile's own first FROM, the digest-pinned official
# python:3.13-slim-trixie, is pulled; no local base, no CA mount, the runner's own podman config.
#
# Provenance: the release build's provenance is GitHub's artifact attestation, not BuildKit's. main.yml attests
# the pushed digest (SLSA build provenance signed for this repository's main.yml, and an SBOM) and deploy-prod
# verifies it before prod imports the digest. BuildKit's own provenance (an unsigned in-toto statement in an
# image index) stays off: it would make the pushed tag an index whose digest is not the image's, and
# `--load` into the classic docker store drops it anyway (docs.docker.com/build/metadata/attestations).
#
# Deterministic inputs: SOURCE_DATE_EPOCH (default: the commit time of HEAD) sets the created time and,
# with podman (--timestamp), every layer's file times; labels derive from git. See the Dockerfile header.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${IMAGE:-localhost/muse}"
engine="${IMAGE_ENGINE:-podman}"
on_github="${GITHUB_ACTIONS:-false}"

if ! command -v "$engine" >/dev/null 2>&1; then
  echo "build-image: $engine is not installed (run 'make system-deps')" >&2
  exit 3
fi

revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# A build from uncommitted image inputs must not carry the clean commit's tag.
if [ "$revision" != unknown ] \
  && [ -n "$(git status --porcelain -- Dockerfile .dockerignore requirements-service.txt muse docs/governance 2>/dev/null)" ]; then
  revision="${revision}-dirty"
fi
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' muse/__init__.py 2>/dev/null || true)"
version="${version:-0.0.0-dev}"
if [ -n "${GITHUB_REPOSITORY:-}" ]; then
  source_url="${GITHUB_SERVER_URL:-https://github.com}/${GITHUB_REPOSITORY}"
else
  source_url="$(git config --get remote.origin.url 2>/dev/null || echo unknown)"
fi

args=(
  --file Dockerfile
  --build-arg "VERSION=$version"
  --build-arg "REVISION=$revision"
  --build-arg "CREATED=$created"
  --build-arg "SOURCE=$source_url"
  --tag "$image:dev"
  --tag "$image:$revision"
)

# The base the build starts from: the Dockerfile's first FROM (name:tag@sha256:..., what Dependabot updates).
base="$(sed -n 's/^FROM \([^ ]*\) AS base$/\1/p' Dockerfile | head -n1)"
if [ -z "$base" ]; then
  echo "build-image: the Dockerfile's first stage must be 'FROM <image> AS base'" >&2
  exit 2
fi
from=()
if [ "$on_github" != true ]; then
  base="${MUSE_BASE_IMAGE:-localhost/muse-base:trixie}"
  if [ "$engine" = podman ]; then
    scripts/podman-setup.sh
    scripts/build-base-image.sh "$base"
    from=(--from "$base")
  else
    # docker build has no --from: a named build context replaces the stage `base`.
    from=(--build-context "base=docker-image://$base")
  fi
  ca=/etc/ssl/certs/ca-certificates.crt
  if [ -f "$ca" ]; then
    args+=(--volume "$ca:$ca:ro")
  fi
fi
args+=(--build-arg "BASE_IMAGE=$base")

start=$(date +%s)
echo "build-image: $engine build $image (revision $revision, base $base, SOURCE_DATE_EPOCH=$epoch)"
if [ "$engine" = podman ]; then
  pull=missing
  [ "$on_github" = true ] || pull=never
  # OCI format: it has no healthcheck field, so HEALTHCHECK NONE is dropped (podman warns) -- the same
  # meaning. Docker format would keep it, and podman 4.3 then tries to set up a systemd healthcheck timer.
  # podman 4.3 with --layers reuses a cached LABEL/ENV step even when the build arg it expands changed
  # (verified: ARG X; LABEL x=${X} keeps the first build's value), so an unchanged image would keep an older
  # commit's revision. The per-build identity is therefore also set on the command line, which applies it
  # to the final image every time (same values for the same commit: still reproducible).
  identity=(
    --label "org.opencontainers.image.version=$version"
    --label "org.opencontainers.image.revision=$revision"
    --label "org.opencontainers.image.created=$created"
    --label "org.opencontainers.image.source=$source_url"
    --label "org.opencontainers.image.base.name=$base"
    --env "MUSE_VERSION=$version"
    --env "MUSE_GIT_REVISION=$revision"
  )
  SOURCE_DATE_EPOCH="$epoch" podman build --format oci --pull="$pull" --layers \
    --timestamp "$epoch" "${from[@]}" "${identity[@]}" "${args[@]}" .
  podman image inspect --format '{{.Id}}' "$image:dev" >/dev/null
  # Earlier builds of this image that lost their tags (dangling) are removed; nothing else is touched.
  podman image prune --force --filter label=org.opencontainers.image.title=muse >/dev/null || true
else
  # BuildKit: SOURCE_DATE_EPOCH sets the image's created time and history. Not used: the exporter option
  # rewrite-timestamp=true (layer file times), which conflicts with loading into a containerd image store
  # ("conflicts with unpack", docker/buildx#2733); so docker-built layers carry build-time file mtimes.
  SOURCE_DATE_EPOCH="$epoch" docker buildx build --provenance=false \
    --build-arg "SOURCE_DATE_EPOCH=$epoch" --load "${from[@]}" "${args[@]}" .
fi
echo "build-image: built $image:dev and $image:$revision in $(($(date +%s) - start)) s"
