"""The ingress certificate path: the Key Vault policy a stack's config implies (stack/certificate.py) and
scripts/tls-certificate.sh run for real against recording stand-ins for az and pulumi."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack.certificate import CertificateError, certificate_policy, summary
from stack.config import StackConfig, load_stack_config
from stack.files import REPO_ROOT, read_stack

SCRIPT = REPO_ROOT / "scripts" / "tls-certificate.sh"
RESERVED_HOST_CHECK = REPO_ROOT / "scripts" / "ci" / "reserved_host.py"
# A host outside the reserved example names (RFC 2606), as a real prod config has; Pulumi.prod.yaml's
# placeholder muse.example.com is refused by the script (test below).
REAL_HOST = "muse.contoso.com"
REAL_GROUP = (
    "3f2b6c1e-9a4d-4e8f-b7c2-1d5e6f7a8b9c"  # an operators' group object id (any GUID but the Nil UUID)
)


def _config(stack: str, **overrides: Any) -> StackConfig:
    values = {**read_stack(stack).config, **{f"muse:{k}": v for k, v in overrides.items()}}
    return load_stack_config(stack, values)


def test_an_issued_certificate_is_for_the_host_with_an_exportable_key() -> None:
    config = _config("prod", ingressTlsCertificateIssuer="digicert-muse")
    policy = certificate_policy(config)
    x509 = policy["x509CertificateProperties"]
    assert x509["subject"] == f"CN={config.ingress_host}"
    assert x509["subjectAlternativeNames"] == {"dnsNames": [config.ingress_host]}
    assert x509["ekus"] == ["1.3.6.1.5.5.7.3.1"]  # TLS server authentication
    # The Gateway needs the private key: it is in the certificate's secret only when exportable.
    assert policy["keyProperties"]["exportable"] is True
    assert policy["secretProperties"] == {"contentType": "application/x-pkcs12"}
    # Publicly trusted TLS certificates are capped at 200 days from March 2026 (CA/Browser Forum SC-081).
    assert x509["validityInMonths"] * 31 <= 200


def test_an_imported_certificate_emails_before_expiry_and_an_issued_one_renews_itself() -> None:
    imported = certificate_policy(_config("prod", ingressTlsCertificateIssuer="Unknown"))
    assert imported["issuerParameters"] == {"name": "Unknown"}
    assert imported["lifetimeActions"] == [
        {"trigger": {"daysBeforeExpiry": 30}, "action": {"actionType": "EmailContacts"}}
    ]
    issued = certificate_policy(_config("prod", ingressTlsCertificateIssuer="digicert-muse"))
    assert issued["issuerParameters"] == {"name": "digicert-muse"}
    assert issued["lifetimeActions"][0]["action"] == {"actionType": "AutoRenew"}


def test_only_a_key_vault_made_key_has_a_fixed_type_and_size() -> None:
    # An imported PFX brings its own key (RSA 3072 or EC from a CA are common): its policy names no key type
    # or size; a Key Vault issuer makes the key, RSA 2048. Negative control: the issued policy does fix them.
    imported = certificate_policy(_config("prod", ingressTlsCertificateIssuer="Unknown"))["keyProperties"]
    assert imported == {"exportable": True, "reuseKey": False}
    issued = certificate_policy(_config("prod", ingressTlsCertificateIssuer="digicert-muse"))["keyProperties"]
    assert (issued["keyType"], issued["keySize"], issued["exportable"]) == ("RSA", 2048, True)


def test_an_imported_certificates_policy_names_none_of_the_cas_x509_properties() -> None:
    # Prod's committed config imports (issuer Unknown): the PFX brings subject, names, validity and key usage.
    # A key usage of keyEncipherment in the policy would make Key Vault refuse an EC certificate's import.
    # Negative control: the issued policy does name them (test above).
    imported = certificate_policy(_config("prod"))
    assert imported["issuerParameters"] == {"name": "Unknown"}
    assert "x509CertificateProperties" not in imported
    assert imported["keyProperties"]["exportable"] is True
    assert imported["secretProperties"] == {"contentType": "application/x-pkcs12"}


def test_a_stack_without_a_host_has_no_certificate() -> None:
    with pytest.raises(CertificateError, match="no muse:ingressHost"):
        certificate_policy(_config("dev"))


STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $*" in
  "pulumi stack ls --json") echo '[{"name": "prod", "current": false, "updateInProgress": false}]' ;;
  "pulumi stack output"*) echo kv-muse-prod-m7k2 ;;
  "az keyvault certificate issuer show"*) [ "$ISSUER_EXISTS" = yes ] || exit 3 ;;
  "az keyvault certificate import"*|"az keyvault certificate create"*)
    for a in "$@"; do case "$a" in @*) cp "${a#@}" "$POLICY_COPY";; esac; done ;;
esac
exit 0
"""


def _run(
    tmp_path: Path, *args: str, issuer_exists: bool = True, **overrides: Any
) -> tuple[int, str, list[str]]:
    """Run the script for a copy of the repository's stack files with `overrides` in Pulumi.prod.yaml."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("az", "pulumi"):
        stub = bin_dir / tool
        stub.write_text(STUB)
        stub.chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    root = tmp_path / "repo"
    if not root.exists():
        root.mkdir()
        for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
            shutil.copy(REPO_ROOT / name, root / name)
        (root / "scripts" / "ci").mkdir(parents=True)
        shutil.copy(SCRIPT, root / "scripts" / SCRIPT.name)
        shutil.copy(RESERVED_HOST_CHECK, root / "scripts" / "ci" / RESERVED_HOST_CHECK.name)
        shutil.copy(
            RESERVED_HOST_CHECK.with_name("placeholders.py"), root / "scripts" / "ci" / "placeholders.py"
        )
        for name in ("stack", "stack_command.py"):
            shutil.copy(REPO_ROOT / "scripts" / name, root / "scripts" / name)
        (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    stack_file = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())
    real = {
        "ingressHost": REAL_HOST,
        "operatorsGroupObjectId": REAL_GROUP,
        "alertEmails": '["ops@contoso.com"]',
    }
    overrides = {**real, **overrides}
    stack_file["config"].update({f"muse:{key}": yaml.safe_load(value) for key, value in overrides.items()})
    (root / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack_file))
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CALLS": str(calls),
        "POLICY_COPY": str(tmp_path / "policy.json"),
        "ISSUER_EXISTS": "yes" if issuer_exists else "no",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        ["bash", str(root / "scripts" / SCRIPT.name), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr, calls.read_text().splitlines()


@pytest.mark.slow  # runs the certificate script with az stand-ins
def test_prod_imports_the_cas_certificate_with_its_policy_and_sets_the_contacts(tmp_path: Path) -> None:
    pfx = tmp_path / "muse.pfx"
    pfx.write_bytes(b"not really a pfx")
    code, output, calls = _run(tmp_path, "prod", "--import", str(pfx), alertEmails='["ops@contoso.com"]')
    assert code == 0, output
    # Through scripts/stack, so against prod's own state container.
    assert "pulumi stack output keyVaultName --stack prod" in calls
    assert (
        "az keyvault certificate contact add --vault-name kv-muse-prod-m7k2 --email ops@contoso.com" in calls
    )
    [imported] = [c for c in calls if c.startswith("az keyvault certificate import")]
    assert f"--vault-name kv-muse-prod-m7k2 --name muse-tls --file {pfx}" in imported
    policy = (tmp_path / "policy.json").read_text()
    assert '"actionType": "EmailContacts"' in policy and "x509CertificateProperties" not in policy
    assert not [c for c in calls if c.startswith("az keyvault certificate create")]


@pytest.mark.slow  # runs the certificate script with az stand-ins
@pytest.mark.parametrize(
    ("args", "overrides", "message"),
    [
        ((), {"alertEmails": '["ops@contoso.com"]'}, "import the CA's certificate"),
        (("--import", "x.pfx"), {"alertEmails": "[]"}, "prod's alerts must reach someone"),
        # The committed placeholder contact: Key Vault would remind nobody (scripts/ci/placeholders.py).
        (
            ("--import", "x.pfx"),
            {"alertEmails": '["oncall@example.com"]'},
            "muse:alertEmails: oncall@example.com is a placeholder",
        ),
        (
            ("--import", "x.pfx"),
            {"ingressTlsCertificateIssuer": "digicert-muse"},
            "--import is for issuer Unknown",
        ),
        (("--bogus",), {}, "usage:"),
        # The committed placeholder: no certificate for a reserved example name (RFC 2606).
        (
            ("--import", "x.pfx"),
            {"ingressHost": "muse.example.com", "alertEmails": '["ops@contoso.com"]'},
            "muse.example.com is under example.com, reserved for examples",
        ),
        ((), {"ingressHost": "muse.test", "ingressTlsCertificateIssuer": "digicert-muse"}, "reserved for"),
    ],
    ids=[
        "import-without-a-file",
        "no-one-to-remind",
        "placeholder-contact",
        "import-for-an-issuer",
        "bad-argument",
        "placeholder-host",
        "test-tld",
    ],
)
def test_the_script_refuses_what_cannot_work_before_touching_azure(
    tmp_path: Path, args: tuple[str, ...], overrides: dict[str, str], message: str
) -> None:
    code, output, calls = _run(tmp_path, "prod", *args, **overrides)
    assert code == 2 and message in output, output
    assert not [c for c in calls if c.startswith("az ")]


@pytest.mark.slow  # runs the certificate script with az stand-ins
def test_a_key_vault_issuer_issues_and_renews_it(tmp_path: Path) -> None:
    code, output, calls = _run(tmp_path, "prod", ingressTlsCertificateIssuer="digicert-muse")
    assert code == 0, output
    assert (
        "az keyvault certificate issuer show --vault-name kv-muse-prod-m7k2 --issuer-name digicert-muse"
        in calls
    )
    [created] = [c for c in calls if c.startswith("az keyvault certificate create")]
    assert "--name muse-tls" in created
    assert '"actionType": "AutoRenew"' in (tmp_path / "policy.json").read_text()
    assert any(c.startswith("az keyvault certificate pending show") for c in calls)


def test_a_missing_key_vault_issuer_is_named_with_the_command_that_creates_it(tmp_path: Path) -> None:
    code, output, calls = _run(
        tmp_path, "prod", issuer_exists=False, ingressTlsCertificateIssuer="digicert-muse"
    )
    assert code == 3 and "az keyvault certificate issuer create" in output, output
    assert not [c for c in calls if c.startswith("az keyvault certificate create")]


def test_summary_feeds_the_script() -> None:
    config = _config("prod", alertEmails=["a@example.org", "b@example.org"])
    assert summary(config) == {
        "host": "muse.example.com",
        "name": "muse-tls",
        "issuer": "Unknown",
        "self_signed": "no",
        "imported": "yes",
        "contacts": "a@example.org b@example.org",
    }


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is installed by make system-deps")
def test_script_is_shellcheck_clean() -> None:
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
