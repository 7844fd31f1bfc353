#!/usr/bin/env python3
"""Installs the Pulumi CLI and the provider plugins in the credentialed jobs, each archive checked against the
SHA-256 committed in scripts/ci/pulumi-binaries.sha256. A missing or different checksum stops the job.

    python3 scripts/ci/install_pulumi.py cli --version 3.272.0
    .venv/bin/python scripts/ci/install_pulumi.py plugins [--venv DIR]
    python3 scripts/ci/install_pulumi.py list [--venv DIR] [--version V]

Standard library only. What each command does: docs/architecture/ci-cd.md#installing-pulumi."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKSUMS = ROOT / "scripts" / "ci" / "pulumi-binaries.sha256"
CLI_URL = "https://get.pulumi.com/releases/sdk/{archive}"
PLATFORM = ("linux", "x64", "amd64")  # GitHub's ubuntu-24.04 runners; the CLI says x64, plugins amd64
RECORD = "make pulumi-checksums (where get.pulumi.com and GitHub are reachable), review the diff, commit it"


class ChecksumError(Exception):
    pass


def cli_archive(version: str) -> str:
    return f"pulumi-v{version}-{PLATFORM[0]}-{PLATFORM[1]}.tar.gz"


def plugin_archive(name: str, version: str) -> str:
    return f"pulumi-resource-{name}-v{version}-{PLATFORM[0]}-{PLATFORM[2]}.tar.gz"


def read_checksums(path: Path = CHECKSUMS) -> dict[str, str]:
    """archive name -> sha256 (lower-case hex); a malformed line or a name listed twice is an error."""
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](\S+)", line)
        if match is None:
            raise ChecksumError(f"{path.name}:{number}: not '<sha256>  <archive>': {line!r}")
        digest, name = match.groups()
        if name in found and found[name] != digest:
            raise ChecksumError(f"{path.name}:{number}: {name} is listed twice with different checksums")
        found[name] = digest
    return found


def expected(archive: str, checksums: dict[str, str]) -> str:
    digest = checksums.get(archive)
    if digest is None:
        raise ChecksumError(f"no committed SHA-256 for {archive} in {CHECKSUMS.relative_to(ROOT)}: {RECORD}")
    return digest


def plugins_of(venv: Path) -> list[tuple[str, str]]:
    """(name, version) of every resource plugin the virtualenv's Pulumi provider packages declare."""
    found = set()
    for meta in sorted(venv.glob("lib/python3*/site-packages/pulumi_*/pulumi-plugin.json")):
        data = json.loads(meta.read_text())
        if data.get("resource"):
            found.add((str(data["name"]), str(data["version"]).removeprefix("v")))
    if not found:
        raise ChecksumError(
            f"no Pulumi provider package (pulumi-plugin.json) in {venv}: run make ci-venv first"
        )
    return sorted(found)


def _append(variable: str, line: str) -> None:
    target = os.environ.get(variable)
    if not target:
        raise ChecksumError(f"{variable} is not set (this runs in a GitHub Actions job)")
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def verify_file(path: Path, digest: str, archive: str) -> None:
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != digest:
        raise ChecksumError(
            f"{archive}: SHA-256 {actual}, the committed checksum is {digest}: not installing it"
        )


def install_cli(version: str, checksums: dict[str, str], url: str = CLI_URL) -> Path:
    archive = cli_archive(version)
    digest = expected(archive, checksums)  # before any download
    destination = Path(os.environ.get("RUNNER_TEMP", tempfile.gettempdir())) / "pulumi-cli"
    with tempfile.TemporaryDirectory() as scratch:
        downloaded = Path(scratch) / archive
        with urllib.request.urlopen(url.format(archive=archive), timeout=300) as response:  # noqa: S310
            downloaded.write_bytes(response.read())
        verify_file(downloaded, digest, archive)
        shutil.rmtree(destination, ignore_errors=True)
        with tarfile.open(downloaded) as tar:
            tar.extractall(destination, filter="data")
    binaries = destination / "pulumi"
    if not (binaries / "pulumi").is_file():
        raise ChecksumError(f"{archive} has no pulumi/pulumi")
    _append("GITHUB_PATH", str(binaries))
    print(f"install_pulumi: {archive} sha256 {digest} OK -> {binaries}")
    return binaries


def install_plugins(venv: Path, checksums: dict[str, str]) -> None:
    plugins = plugins_of(venv)
    digests = [
        (name, version, expected(plugin_archive(name, version), checksums)) for name, version in plugins
    ]
    for name, version, digest in digests:
        subprocess.run(
            ["pulumi", "plugin", "install", "resource", name, version, "--checksum", digest],
            check=True,
            timeout=600,
        )
        print(f"install_pulumi: plugin {name} {version} sha256 {digest} OK")
    _append("GITHUB_ENV", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/ci/install_pulumi.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cli = sub.add_parser("cli")
    cli.add_argument("--version", required=True)
    plugins = sub.add_parser("plugins")
    plugins.add_argument("--venv", type=Path, default=Path(".venv"))
    listing = sub.add_parser("list")
    listing.add_argument("--venv", type=Path, default=Path(".venv"))
    listing.add_argument("--version", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(cli_archive(args.version))
            for name, version in plugins_of(args.venv):
                print(plugin_archive(name, version))
            return 0
        checksums = read_checksums()
        if args.command == "cli":
            install_cli(args.version, checksums)
        else:
            install_plugins(args.venv, checksums)
    except (ChecksumError, subprocess.CalledProcessError) as error:
        print(f"::error title=Pulumi binaries::{error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
