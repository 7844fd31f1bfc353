"""Dependabot's configuration (.github/dependabot.yml): every kind of pinned dependency is kept fresh - the
Python lock, the npm lock, the SHA-pinned actions and the image base - each grouped and with a cooldown, with
only the options docs.github.com "Dependabot options reference" documents (github/docs content/code-security/
reference/supply-chain-security/dependabot-options-reference.md; semver-*-days not for docker or
github-actions, whose versions are not SemVer there)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from stack.files import REPO_ROOT
from stack.runtime_support import read_base

CONFIG = yaml.safe_load((REPO_ROOT / ".github" / "dependabot.yml").read_text())
# What each ecosystem reads in its directory (Dependabot's manifest files for it).
MANIFESTS = {
    "uv": "uv.lock",
    "npm": "package-lock.json",
    "docker": "Dockerfile",
    "github-actions": ".github/workflows",
}
COOLDOWN_KEYS = {
    "default-days",
    "semver-major-days",
    "semver-minor-days",
    "semver-patch-days",
    "include",
    "exclude",
}
NO_SEMVER = {"docker", "github-actions"}


def problems(config: dict[str, Any], root: Path = REPO_ROOT) -> list[str]:
    found = []
    entries = {u["package-ecosystem"]: u for u in config.get("updates", [])}
    for ecosystem, manifest in MANIFESTS.items():
        entry = entries.get(ecosystem)
        if entry is None:
            found.append(f"{ecosystem}: no entry")
            continue
        if not (root / entry.get("directory", "/").lstrip("/") / manifest).exists():
            found.append(f"{ecosystem}: {manifest} is not in {entry.get('directory')}")
        cooldown = entry.get("cooldown") or {}
        if not isinstance(cooldown.get("default-days"), int) or not 1 <= cooldown["default-days"] <= 90:
            found.append(f"{ecosystem}: no cooldown default-days (1-90)")
        if set(cooldown) - COOLDOWN_KEYS:
            found.append(f"{ecosystem}: undocumented cooldown keys {sorted(set(cooldown) - COOLDOWN_KEYS)}")
        if ecosystem in NO_SEMVER and any(k.startswith("semver-") for k in cooldown):
            found.append(f"{ecosystem}: semver cooldowns do not apply")
        if not entry.get("groups"):
            found.append(f"{ecosystem}: not grouped")
    if "pip" in entries:
        found.append("pip: the requirements files are exports of uv.lock; a pip update would be undone")
    return found


def test_every_pinned_kind_is_kept_fresh_grouped_with_a_cooldown() -> None:
    assert CONFIG["version"] == 2
    assert problems(CONFIG) == []


def test_the_docker_entry_can_update_the_base() -> None:
    """Dependabot updates `FROM name:tag@sha256:...`, not an ARG base (dependabot-core #2057)."""
    base = read_base((REPO_ROOT / "Dockerfile").read_text())
    assert "@sha256:" in base.image and ":" in base.image.split("@")[0]


def test_negative_control_a_missing_cooldown_group_or_ecosystem_is_caught() -> None:
    for mutate, expected in (
        (lambda c: c["updates"][0].pop("cooldown"), "no cooldown"),
        (lambda c: c["updates"][1].pop("groups"), "not grouped"),
        (lambda c: c["updates"].pop(1), "docker: no entry"),
        (lambda c: c["updates"][1]["cooldown"].update({"semver-major-days": 9}), "semver cooldowns"),
        (lambda c: c["updates"].append({"package-ecosystem": "pip", "directory": "/"}), "pip:"),
    ):
        config = copy.deepcopy(CONFIG)
        mutate(config)
        assert any(expected in p for p in problems(config)), expected
