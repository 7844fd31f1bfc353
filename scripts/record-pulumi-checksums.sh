#!/usr/bin/env bash
# Records in scripts/ci/pulumi-binaries.sha256 the SHA-256 of the Pulumi CLI archive (the workflows'
# PULUMI_VERSION) and of each provider plugin archive the locked provider packages declare
# (scripts/ci/install_pulumi.py list). `make pulumi-checksums`; needs get.pulumi.com and GitHub (not reachable
# on the offline workplace). Each archive is downloaded and hashed here, and cross-checked with the checksums
# file its release publishes when that file is there (a mismatch stops). Lines for other versions stay: the
# drift job installs the plugins of the commit last deployed, which may be older. Review the diff, commit it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=scripts/ci/pulumi-binaries.sha256
version="$(sed -n 's/^  PULUMI_VERSION: "\([0-9.]*\)".*/\1/p' .github/workflows/main.yml)"
[[ -n "$version" ]] || { echo "record-pulumi-checksums: no PULUMI_VERSION in main.yml" >&2; exit 2; }
make ci-venv >/dev/null
mapfile -t archives < <(.venv/bin/python scripts/ci/install_pulumi.py list --version "$version")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

published() { # published <checksums-url> <archive>: the hash a release's checksums file gives, or nothing
  curl -fsSL "$1" 2>/dev/null | awk -v a="$2" '$2 == a || $2 == "*"a {print $1}' || true
}
: > "$work/new"
for archive in "${archives[@]}"; do
  if [[ "$archive" =~ ^pulumi-v([0-9.]+)-linux-x64\.tar\.gz$ ]]; then
    url="https://get.pulumi.com/releases/sdk/$archive"
    sums="https://github.com/pulumi/pulumi/releases/download/v${BASH_REMATCH[1]}/pulumi-${BASH_REMATCH[1]}-checksums.txt"
  elif [[ "$archive" =~ ^pulumi-resource-([a-z0-9-]+)-v([0-9.]+)-linux-amd64\.tar\.gz$ ]]; then
    repo="pulumi/pulumi-${BASH_REMATCH[1]}"
    url="https://github.com/$repo/releases/download/v${BASH_REMATCH[2]}/$archive"
    sums="https://github.com/$repo/releases/download/v${BASH_REMATCH[2]}/pulumi-${BASH_REMATCH[1]}_${BASH_REMATCH[2]}_checksums.txt"
  else
    echo "record-pulumi-checksums: unexpected archive name $archive" >&2
    exit 2
  fi
  curl -fsSL --retry 3 -o "$work/$archive" "$url"
  digest="$(sha256sum "$work/$archive" | cut -d' ' -f1)"
  claimed="$(published "$sums" "$archive")"
  if [[ -n "$claimed" && "$claimed" != "$digest" ]]; then
    echo "record-pulumi-checksums: $archive hashes to $digest, its release's checksums file says $claimed" >&2
    exit 1
  fi
  [[ -n "$claimed" ]] || echo "record-pulumi-checksums: note: no published checksum found for $archive ($sums)" >&2
  echo "$digest  $archive" >> "$work/new"
done
# Keep the lines of archives not recorded now (older versions), then the new ones; sorted by archive name.
{
  sed -n '/^#/p' "$out"
  { grep -v '^#' "$out" | grep -v -F -f <(awk '{print "  " $2}' "$work/new") || true; cat "$work/new"; } |
    grep -v '^$' | sort -k2,2 -u
} > "$work/file"
mv "$work/file" "$out"
echo "record-pulumi-checksums: wrote $out (${#archives[@]} archives for Pulumi $version); review and commit it"
