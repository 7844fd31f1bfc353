#!/usr/bin/env bash
# Builds the local stand-in for the official Python base image, because no container registry is
# reachable on these machines (../shared/reference/offline-toolbox.md). Debian trixie (13) minbase with
# python3 (Debian trixie ships Python 3.13, like python:3.13-slim-trixie), python3-venv (brings ensurepip/pip)
# and ca-certificates, from the mirror apt already uses, imported with `podman import`. The suite is the
# Dockerfile's base release; stack/runtime_lifecycle.json records when its security support ends.
#
# Idempotent and cached: does nothing when the image already exists (FORCE=1 rebuilds).
# Usage: scripts/build-base-image.sh [IMAGE]   (default localhost/muse-base:trixie)
# Not byte-reproducible (debootstrap writes timestamps, logs and machine-specific files); it is a
# local test base only: the image shipped from GitHub is built on the digest-pinned official image.
set -euo pipefail

image="${1:-localhost/muse-base:trixie}"
suite=trixie

if [ "${FORCE:-0}" != 1 ] && podman image exists "$image"; then
  echo "build-base-image: $image exists (FORCE=1 to rebuild)"
  exit 0
fi

for tool in debootstrap podman tar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-base-image: $tool is missing (make system-deps)" >&2; exit 3; }
done

# The Debian mirror apt already uses: first URI serving Debian's main archive (not -security),
# from deb822 .sources files or one-line .list files. Comments are ignored.
mirror=""
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  mirror="$(sed -e 's/#.*//' "$f" | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' \
    | grep -v -e '-security' -e '-ports' | grep -E '/debian/?$' | head -n1 || true)"
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ]; then
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    mirror="$(sed -e 's/#.*//' "$f" | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' \
      | grep -v -e '-security' | grep -E '/debian/?$' | head -n1 || true)"
    [ -n "$mirror" ] && break
  done
fi
mirror="${MUSE_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}"
echo "build-base-image: debootstrap $suite from $mirror -> $image"

if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
workdir="$(mktemp -d "${TMPDIR:-/tmp}/muse-base.XXXXXX")"
cleanup() { "${sudo_cmd[@]}" rm -rf --one-file-system "$workdir"; }
trap cleanup EXIT
rootfs="$workdir/rootfs"

"${sudo_cmd[@]}" debootstrap --variant=minbase \
  --include=python3,python3-venv,ca-certificates \
  "$suite" "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 \
  || { tail -n 30 "$workdir/debootstrap.log" >&2; exit 1; }

# Slim it the way the official slim images are: no apt lists, caches or logs.
"${sudo_cmd[@]}" rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/* "$rootfs"/debootstrap
# Same default locale and encoding as the official image.
"${sudo_cmd[@]}" tar --numeric-owner -C "$rootfs" -c . \
  | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    --message "debootstrap $suite minbase + python3 from $mirror" \
    - "$image"
podman image inspect --format 'build-base-image: {{.Id}} {{.Size}} bytes' "$image"
