"""scripts/record-pulumi-checksums.sh run for real, with a stub `curl` serving release assets from a
folder (get.pulumi.com and GitHub are not reachable here) and a stub `make` (the venv exists). It records
an archive's SHA-256 only when the release's own checksums file confirms it: the CLI's
`pulumi-<version>-checksums.txt` (pulumi/pulumi .goreleaser.yml checksum.name_template, commit 01c4ec37f501)
and a provider's `pulumi-<name>_<version>_checksums.txt` (GoReleaser's default name_template). A release
without one stops the script unless --force: the hash of what was just downloaded is trust on first use."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest

from stack.files import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "record-pulumi-checksums.sh"
HEADER = "# header kept\n"

CURL = """#!/usr/bin/env bash
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift 2 ;; -*) shift ;; *) url="$1"; shift ;; esac
done
echo "$url" >> "$ASSETS/requested"
file="$ASSETS/$(basename "$url")"
[ -f "$file" ] || exit 22  # curl -f: an HTTP 404 fails with 22
if [ -n "$out" ]; then cp "$file" "$out"; else cat "$file"; fi
"""


def _archives() -> list[str]:
    version = re.search(
        r'^  PULUMI_VERSION: "([0-9.]+)"', (REPO_ROOT / ".github/workflows/main.yml").read_text(), re.M
    )
    assert version
    listed = subprocess.run(
        [
            str(REPO_ROOT / ".venv/bin/python"),
            "scripts/ci/install_pulumi.py",
            "list",
            "--version",
            version[1],
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()


def _release(assets: Path, *, publish: set[str], wrong: str | None = None) -> dict[str, str]:
    """Writes each archive and, for the archives in `publish`, its release's checksums file line."""
    digests = {}
    for archive in _archives():
        content = f"bytes of {archive}".encode()
        (assets / archive).write_bytes(content)
        digests[archive] = hashlib.sha256(content).hexdigest()
        if archive not in publish:
            continue
        if m := re.fullmatch(r"pulumi-v([0-9.]+)-linux-x64\.tar\.gz", archive):
            sums = f"pulumi-{m[1]}-checksums.txt"
        else:
            m = re.fullmatch(r"pulumi-resource-([a-z0-9-]+)-v([0-9.]+)-linux-amd64\.tar\.gz", archive)
            assert m, archive
            sums = f"pulumi-{m[1]}_{m[2]}_checksums.txt"
        claimed = "f" * 64 if archive == wrong else digests[archive]
        with (assets / sums).open("a") as f:
            f.write(f"{'0' * 64}  other-platform.tar.gz\n{claimed}  {archive}\n")
    return digests


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "curl").write_text(CURL)
    (bin_dir / "make").write_text("#!/bin/sh\nexit 0\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    out = tmp_path / "pulumi-binaries.sha256"
    if not out.exists():
        out.write_text(HEADER)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "ASSETS": str(tmp_path / "assets"),
        "PULUMI_CHECKSUMS_FILE": str(out),
    }
    result = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )
    return result, out


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    folder.mkdir()
    return folder


def test_records_every_archive_its_release_confirms(tmp_path: Path, assets: Path) -> None:
    digests = _release(assets, publish=set(_archives()))
    result, out = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == HEADER + "".join(f"{d}  {a}\n" for a, d in sorted(digests.items()))


def test_negative_control_a_release_without_checksums_stops_unless_forced(
    tmp_path: Path, assets: Path
) -> None:
    archives = _archives()
    unconfirmed = archives[-1]  # a provider plugin whose release publishes no checksums file
    digests = _release(assets, publish=set(archives) - {unconfirmed})
    result, out = _run(tmp_path)
    assert result.returncode == 1
    assert f"publishes no checksum for {unconfirmed}" in result.stderr and "--force" in result.stderr
    assert out.read_text() == HEADER  # nothing recorded, not even the confirmed archives
    result, out = _run(tmp_path, "--force")
    assert result.returncode == 0, result.stderr
    assert f"{digests[unconfirmed]}  {unconfirmed}\n" in out.read_text()
    assert "without a published checksum" in result.stderr


def test_a_download_that_differs_from_the_published_checksum_stops_even_forced(
    tmp_path: Path, assets: Path
) -> None:
    archives = _archives()
    _release(assets, publish=set(archives), wrong=archives[0])
    result, out = _run(tmp_path, "--force")
    assert result.returncode == 1
    assert "its release's checksums file says" in result.stderr
    assert out.read_text() == HEADER
