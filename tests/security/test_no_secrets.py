"""No secret in git: detect-secrets over every tracked file; secret-like stack config only as `secure:`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.files import REPO_ROOT


@dataclass(frozen=True)
class Allowed:
    path: str  # regex on the repository path
    line: str  # regex on the flagged line
    reason: str


# Every detect-secrets finding that is not a secret, with the reason. A finding not listed fails the test;
# an entry that no longer matches anything fails too, so the list cannot rot. Lines of this file that quote
# such findings, and the canary's deliberate fake, carry detect-secrets' own inline allowlist pragma.
NAME_SUFFIX_IN_TEST = r"a1b2c3d4e5f"  # pragma: allowlist secret
BICEP_SECURE_PLACEHOLDER = r'SECRET_VALUE = "deployer-supplied-secret"'  # pragma: allowlist secret
CANARY = 'AZURE_CLIENT_SECRET = "Xq8~4nVb.Rk2pLz7Tw9yHs3Jd6Fm1Gc5Ea0Ui"\n'  # pragma: allowlist secret
ALLOWED = [
    Allowed(r".*", r"enableSecretRotation", "a Key Vault CSI add-on flag, not a secret"),
    Allowed(r"docs/service\.md", r'"\[secret\]"', "documents the mask that replaces secret values"),
    Allowed(r"tests/.*", r"secretsProvider|SECRET_TYPE|secret_name=", "names of secrets, not values"),
    Allowed(r"tests/.*", r'TOKEN = "test-token-', "a test fixture token for the service's auth tests"),
    Allowed(
        r"tests/.*", r"hunter2-plaintext|from-pulumi-config-secret", "test input proving secrets are caught"
    ),
    Allowed(r"tests/stack/test_naming\.py", NAME_SUFFIX_IN_TEST, "a name suffix test value"),
    Allowed(r"tests/workflows/.*", r'"[0-9a-f]{40}"', "a git commit SHA in a test"),
    Allowed(
        r"stack/aks_kubernetes_versions\.json",
        r'"(snapshot_commit|last_changed_in_commit|blob)": "[0-9a-f]{40}"',
        "git commit and blob ids naming the vendored AKS documentation snapshot (its attribution)",
    ),
    Allowed(
        r"tests/stack/test_kubernetes_support\.py",
        r'\["snapshot_commit"\] == "[0-9a-f]{40}"',
        "the vendored AKS documentation snapshot's git commit",
    ),
    Allowed(
        r"verify/access/builtin-roles\.json",
        r'"commit": "[0-9a-f]{40}"',
        "git commit SHAs of the role definition pages the vendored roles come from",
    ),
    Allowed(r"tests/export/test_arm_types\.py", r'"[0-9a-f]{40}"', "the bicep-types commit the data is from"),
    Allowed(
        r"muse/resource_types\.py|rbac/arm\.py",
        r"^(KEY_VAULT_SECRETS?|GET_SECRET) = "
        r'"(azure-native:keyvault:Secret|Microsoft\.KeyVault/vaults/secrets(/getSecret/action)?)"',
        "the Key Vault secret's Pulumi type token, Azure resource type and read operation, not values",
    ),
    Allowed(
        r"tests/deploy/upstream/ama-metrics-collectors\.json",
        r'"commit": "[0-9a-f]{40}"',
        "the Azure/prometheus-collector commits the recorded pod labels come from",
    ),
    Allowed(
        r"tests/governance/.*", r'"key": "MUSE_API_TOKEN"', "the name of a key inside a Kubernetes Secret"
    ),
    Allowed(r"tests/export/.*", BICEP_SECURE_PLACEHOLDER, "stands for a @secure() Bicep value"),
    Allowed(
        r"components/muse_workload/manifests\.py",
        r'^(SECRET_PROVIDER_CLASS(_GROUP)?|SYNCED_SECRET|SYNCED_SECRET_KEY) = "[a-z0-9.-]+"',
        "names of the SecretProviderClass (and its API group), the synced Secret and its key, not values",
    ),
    Allowed(
        r"deploy/base/[a-z]+\.yaml",
        r"(secretProviderClass|secretName): muse-",
        "names of the SecretProviderClass and the synced Secret, not values",
    ),
    Allowed(r"docs/architecture/workload\.md", r"Secret `muse-api-token`", "the synced Secret's name"),
    Allowed(
        r"docs/governance/[a-z]+\.(md|inventory\.json)",
        r"(secretName|secretProviderClass)\"?: [`\"]muse-",
        "generated governance docs: names of the Key Vault secret and the SecretProviderClass, not values",
    ),
]
SECRET_LIKE_KEY = re.compile(
    r"(token|password|secret|credential|connectionstring|apikey|privatekey)", re.IGNORECASE
)


def _tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [path for path in listed.stdout.splitlines() if (REPO_ROOT / path).is_file()]


@pytest.fixture(scope="module")
def findings() -> list[tuple[str, int, str, str]]:
    files = _tracked_files()
    assert len(files) > 50
    scan = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", *files],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = []
    for path, items in json.loads(scan.stdout)["results"].items():
        lines = (REPO_ROOT / path).read_text(errors="replace").splitlines()
        found += [(path, item["line_number"], item["type"], lines[item["line_number"] - 1]) for item in items]
    return found


def _allowed(path: str, line: str) -> Allowed | None:
    return next((a for a in ALLOWED if re.fullmatch(a.path, path) and re.search(a.line, line)), None)


@pytest.mark.slow  # detect-secrets over the repository
def test_detect_secrets_finds_nothing_that_is_not_allow_listed(
    findings: list[tuple[str, int, str, str]],
) -> None:
    unexplained = [
        f"{path}:{number} {kind}: {line.strip()}"
        for path, number, kind, line in findings
        if not _allowed(path, line)
    ]
    assert unexplained == [], "possible secrets in git:\n" + "\n".join(unexplained)


@pytest.mark.slow  # detect-secrets over the repository
def test_every_allow_list_entry_is_still_needed(findings: list[tuple[str, int, str, str]]) -> None:
    used = {_allowed(path, line) for path, _, _, line in findings}
    assert [a.reason for a in ALLOWED if a not in used] == []


def test_the_scan_would_catch_a_real_looking_secret(tmp_path: Path) -> None:
    # Outside the repository: inside a git work tree detect-secrets scans tracked files only.
    (tmp_path / "leak.py").write_text(CANARY)
    scan = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "leak.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(scan.stdout)["results"], "detect-secrets missed an obvious client secret"


def plaintext_secret_keys(stack_file: dict[str, Any]) -> list[str]:
    """Config keys that look secret-like but are not `secure:` values."""
    return [
        key
        for key, value in (stack_file.get("config") or {}).items()
        if SECRET_LIKE_KEY.search(key.split(":", 1)[-1])
        and not (isinstance(value, dict) and "secure" in value)
    ]


@pytest.mark.parametrize(
    "path", sorted(REPO_ROOT.glob("Pulumi.*.yaml")) + sorted(REPO_ROOT.glob("bootstrap/Pulumi.*.yaml"))
)
def test_secret_like_stack_config_is_encrypted(path: Path) -> None:
    assert plaintext_secret_keys(yaml.safe_load(path.read_text())) == []


def test_the_stack_file_check_catches_plaintext_and_accepts_secure() -> None:
    stack = {
        "config": {
            "muse:apiToken": "plain-text-token",
            "muse:dbPassword": {"secure": "v1:AAAABBBB"},
            "muse:keyVaultRetentionDays": 7,  # "key" alone is not secret-like
        }
    }
    assert plaintext_secret_keys(stack) == ["muse:apiToken"]
